"""Reading what a learner handed in (`intake.take`): once, never through a link, never past the size limit,
every name and reason representable as UTF-8, and never an exception for anything a learner can hand in."""
import hashlib
import json
import os
import shutil

import nbformat
import pytest

from autograder.instructor import classroom, intake, nbgrader_bridge, notebooks
from autograder.instructor.errors import CourseError
from autograder.instructor.results import ExerciseGrade, Status, SubmissionGrade
from autograder.learner import registry

CHAPTER = "ch02"
COURSE_NOTEBOOK = notebooks.chapter_notebook(CHAPTER)
NOTEBOOK = COURSE_NOTEBOOK.name
LATIN1 = b"r\xe9sum\xe9"  # what an old zip tool keeps of "résumé": not UTF-8
LINKED = "is a symbolic link, not a {}: links are not graded"


def representable(submission: intake.Submission) -> bool:
    texts = [submission.name, *submission.notes, *(submission.refusal or ())]
    for text in texts:
        str(text).encode("utf-8")  # raises on a lone surrogate
    return True


@pytest.fixture
def submitted(tmp_path):
    """submitted/, with alice's notebook (a copy of the course's) in alice/ch02/."""
    alice = tmp_path / "submitted" / "alice" / CHAPTER
    alice.mkdir(parents=True)
    shutil.copy(COURSE_NOTEBOOK, alice / NOTEBOOK)
    return tmp_path / "submitted"


def folder_of(submitted, student):
    folder = submitted / student / CHAPTER
    folder.mkdir(parents=True)
    return folder


def test_a_notebook_is_read_once_with_its_bytes_and_their_sha(submitted):
    taken = intake.take(submitted / "alice" / CHAPTER, CHAPTER)
    data = COURSE_NOTEBOOK.read_bytes()
    assert taken == intake.Submission(NOTEBOOK, data, (), None)
    assert taken.sha256 == hashlib.sha256(data).hexdigest() and representable(taken)
    assert intake.read_cells(taken.data)  # the bytes it holds are what is parsed, not the path again


def test_a_file_name_that_is_not_utf8_is_noted_readably(submitted):
    folder = submitted / "alice" / CHAPTER
    with open(os.path.join(os.fsencode(folder), LATIN1 + b".txt"), "wb") as file:
        file.write(b"my notes")
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal is None and taken.notes == ("extra files ignored: r\\xe9sum\\xe9.txt",)
    assert representable(taken)


def test_the_files_nbgraders_exchange_adds_are_not_extra_files(submitted):
    folder = submitted / "alice" / CHAPTER
    (folder / "timestamp.txt").write_text("2026-12-01 11:59:00.000000 UTC")
    (folder / "submission_secret.txt").write_text("secret")
    assert intake.take(folder, CHAPTER).notes == ()
    (folder / "notes.txt").write_text("mine")
    assert intake.take(folder, CHAPTER).notes == ("extra files ignored: notes.txt",)


def test_a_renamed_notebook_whose_name_is_not_utf8_is_graded_and_named_readably(submitted):
    folder = folder_of(submitted, "bob")
    shutil.copy(COURSE_NOTEBOOK, os.path.join(os.fsencode(folder), LATIN1 + b".ipynb"))
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal is None and taken.name == "r\\xe9sum\\xe9.ipynb"
    assert taken.notes == ("the notebook was renamed to r\\xe9sum\\xe9.ipynb; graded it anyway",)
    assert taken.data == COURSE_NOTEBOOK.read_bytes() and representable(taken)


def targets(submitted, level):
    """What a link at `level` may point to: the course's (which holds the references), another learner's,
    nothing, and something of the other kind (a folder for a file, a file for a folder)."""
    alice = submitted / "alice"
    if level == "notebook":
        return {"the course's": COURSE_NOTEBOOK, "another learner's": alice / CHAPTER / NOTEBOOK,
                "dangling": submitted / "nowhere.ipynb", "a folder": alice / CHAPTER}
    if level == "chapter":
        return {"the course's": COURSE_NOTEBOOK.parent, "another learner's": alice / CHAPTER,
                "dangling": submitted / "nowhere", "a file": COURSE_NOTEBOOK}
    return {"the course's": notebooks.COURSE, "another learner's": alice, "dangling": submitted / "nowhere",
            "a file": COURSE_NOTEBOOK}


def linked_at(submitted, level, target):
    """Mallory's submission with a link at `level` (the student's folder, the chapter folder or the notebook)."""
    student = submitted / "mallory"
    if level == "student":
        student.symlink_to(target)
    elif level == "chapter":
        student.mkdir()
        (student / CHAPTER).symlink_to(target)
    else:
        folder_of(submitted, "mallory")
        (student / CHAPTER / NOTEBOOK).symlink_to(target)
    return student / CHAPTER


REASONS = {"student": f"the student's folder mallory {LINKED.format('folder')}",
           "chapter": f"the chapter folder {CHAPTER} {LINKED.format('folder')}",
           "notebook": f"{NOTEBOOK} in the submission folder {LINKED.format('notebook')}"}


@pytest.mark.parametrize("level", ["student", "chapter", "notebook"])
@pytest.mark.parametrize("kind", ["the course's", "another learner's", "dangling", "the other kind"])
def test_a_link_at_any_level_is_refused_whatever_it_points_to(submitted, level, kind):
    options = targets(submitted, level)
    target = options[kind] if kind in options else options["a folder" if level == "notebook" else "a file"]
    taken = intake.take(linked_at(submitted, level, target), CHAPTER)
    assert taken.refusal == (Status.NO_NOTEBOOK, REASONS[level])
    assert taken.data == b"" and taken.sha256 == "" and representable(taken)
    assert [student for student, _ in classroom.submissions(submitted.parent, CHAPTER)] == ["alice", "mallory"]


def test_a_renamed_notebook_that_is_a_link_is_refused(submitted):
    folder = folder_of(submitted, "mallory")
    (folder / "mine.ipynb").symlink_to(COURSE_NOTEBOOK)
    assert intake.take(folder, CHAPTER).refusal == (Status.NO_NOTEBOOK,
                                                    f"mine.ipynb in the submission folder {LINKED.format('notebook')}")


def test_a_notebook_over_the_limit_is_refused_with_its_size_and_one_at_it_is_read(submitted, monkeypatch):
    folder = submitted / "alice" / CHAPTER
    size = (folder / NOTEBOOK).stat().st_size
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", size - 1)
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal == (Status.UNREADABLE, f"the notebook is {size} bytes, over the {size - 1} bytes the grader "
                             "reads: it was not graded (its outputs are likely what made it so big)")
    assert taken.data == b"" and taken.name == NOTEBOOK and representable(taken)
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", size)
    assert intake.take(folder, CHAPTER).refusal is None


def test_the_limit_is_generous_and_its_reason_is_in_mib(submitted):
    assert intake.MAX_NOTEBOOK_BYTES >= 200 * 2**20
    folder = folder_of(submitted, "bob")
    with open(folder / NOTEBOOK, "wb") as file:  # sparse: nothing of it is read
        file.truncate(intake.MAX_NOTEBOOK_BYTES + 2**20)
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal == (Status.UNREADABLE, "the notebook is 257.0 MiB, over the 256.0 MiB the grader reads: it "
                             "was not graded (its outputs are likely what made it so big)")


def test_a_folder_named_like_the_notebook_a_fifo_or_nothing_is_no_notebook(submitted):
    folder = folder_of(submitted, "bob")
    (folder / NOTEBOOK).mkdir()
    assert intake.take(folder, CHAPTER).refusal == (Status.NO_NOTEBOOK,
                                                    f"{NOTEBOOK} in the submission folder is a folder, not a notebook")
    fifo = folder_of(submitted, "carl")
    os.mkfifo(fifo / NOTEBOOK)  # opening it for reading must not wait for a writer
    assert intake.take(fifo, CHAPTER).refusal == (Status.NO_NOTEBOOK,
                                                  f"{NOTEBOOK} in the submission folder is not a regular file")
    for empty in (folder_of(submitted, "dan"), submitted / "nobody" / CHAPTER):
        assert intake.take(empty, CHAPTER).refusal == (Status.NO_NOTEBOOK, f"no {NOTEBOOK} in the submission folder")


def notebook_json(edit) -> bytes:
    """The course notebook, edited as a dict, written as JSON (lone surrogates as their \\u escapes)."""
    data = json.loads(COURSE_NOTEBOOK.read_text())
    edit(data)
    return json.dumps(data).encode()


def test_a_lone_surrogate_in_a_cell_source_is_read_and_the_notebook_graded(submitted):
    folder = folder_of(submitted, "bob")

    def edit(data):
        data["cells"].append(nbformat.v4.new_code_cell("text = '\udc80'"))
    (folder / NOTEBOOK).write_bytes(notebook_json(edit))
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal is None and representable(taken)
    cells = intake.read_cells(taken.data)
    assert intake.cell_source(cells[-1]) == "text = '\udc80'"  # sent to the sandbox as JSON, as it is


@pytest.mark.parametrize("edit, quoted", [
    (lambda data: data["cells"][0].update({"\udc80key": 1}), "\\udc80key"),
    (lambda data: data.update({"nbformat": "\udc80"}), "\\udc80"),
    (lambda data: data["cells"][0].update({"cell_type": "\udc80"}), "\\udc80"),
])
def test_nbformats_reason_quoting_a_lone_surrogate_is_representable(submitted, edit, quoted):
    folder = folder_of(submitted, "bob")
    (folder / NOTEBOOK).write_bytes(notebook_json(edit))
    taken = intake.take(folder, CHAPTER)
    assert taken.refusal is None  # read; it is grading that finds it is not a notebook
    with pytest.raises(ValueError) as rejected:
        intake.read_cells(taken.data)
    reason = str(rejected.value)
    assert reason.startswith("nbformat rejects the notebook (") and quoted in reason
    reason.encode("utf-8")


@pytest.mark.parametrize("data", [b"\xff\xfe not UTF-8", b'{"cells": "\\udc80"}', b'"\\udc80"', b"{" * 100_000])
def test_bytes_that_are_not_a_notebook_give_a_representable_reason(data):
    with pytest.raises(ValueError) as rejected:
        intake.read_cells(data)
    str(rejected.value).encode("utf-8")


def test_a_student_folder_that_is_not_utf8_is_listed_by_its_shown_name_and_found_by_it(submitted):
    folder = os.path.join(os.fsencode(submitted), LATIN1, CHAPTER.encode())
    os.makedirs(folder)
    shutil.copy(COURSE_NOTEBOOK, os.path.join(folder, NOTEBOOK.encode()))
    found = classroom.submissions(submitted.parent, CHAPTER)
    assert [student for student, _ in found] == ["alice", "r\\xe9sum\\xe9"]
    taken = intake.take(found[1][1], CHAPTER)
    assert taken.refusal is None and taken.data == COURSE_NOTEBOOK.read_bytes()
    again = intake.take(intake.submission_folder(submitted / "r\\xe9sum\\xe9" / CHAPTER), CHAPTER)  # as the gradebook
    assert again == taken  # names the student, by the name results show


def graded(student, data):
    exercises = [ExerciseGrade(exercise.id, exercise.points, exercise.points, 3, 3, "all 3 cases passed")
                 for exercise in registry.all_exercises() if exercise.chapter == CHAPTER]
    return SubmissionGrade(student, CHAPTER, Status.GRADED, "", exercises, [], True, 1.0,
                           hashlib.sha256(data).hexdigest())


def test_the_autograded_notebook_is_the_graded_one_with_each_exercises_feedback(submitted):
    course_dir = submitted.parent
    written = nbgrader_bridge.write_autograded(course_dir, CHAPTER, graded("alice", COURSE_NOTEBOOK.read_bytes()))
    assert written == course_dir / "autograded" / "alice" / CHAPTER / NOTEBOOK
    tests = [cell for cell in nbformat.read(written, as_version=4).cells
             if notebooks.grade_id(cell) and notebooks.grade_id(cell).endswith("-test")]
    assert len(tests) == len([exercise for exercise in registry.all_exercises() if exercise.chapter == CHAPTER]) > 0
    assert all(cell.outputs[0]["text"] == "all 3 cases passed" for cell in tests)


@pytest.mark.parametrize("change", ["edited", "linked", "removed"])
def test_a_notebook_that_is_no_longer_the_graded_one_gets_no_autograded_copy(submitted, tmp_path, change):
    """Feedback never sits beside another notebook: one edited after grading, one swapped for a link to the
    same bytes (which grading would have refused), or one gone."""
    course_dir, data = submitted.parent, COURSE_NOTEBOOK.read_bytes()
    notebook = submitted / "alice" / CHAPTER / NOTEBOOK
    if change == "edited":
        notebook.write_bytes(data.replace(b'"cells"', b'"cells" ', 1))
    else:
        notebook.unlink()
        if change == "linked":
            (tmp_path / "elsewhere.ipynb").write_bytes(data)
            notebook.symlink_to(tmp_path / "elsewhere.ipynb")
    with pytest.raises(CourseError, match=r"alice's ch02 notebook is no longer the one that was graded \(.+\): "
                                          r"grade again with `nncourse grade ch02 --regrade`"):
        nbgrader_bridge.write_autograded(course_dir, CHAPTER, graded("alice", data))
    assert not (course_dir / "autograded").exists()


def test_a_submission_is_small_to_print_and_travels_whole(submitted):
    import pickle

    taken = intake.take(submitted / "alice" / CHAPTER, CHAPTER)
    assert "data" not in repr(taken) and len(repr(taken)) < 200
    assert pickle.loads(pickle.dumps(taken)) == taken
