"""Every export of a graded class holds whatever odd strings its learners handed in, as valid UTF-8.

One small class of chapter 02 is released with nbgrader and graded with `nncourse grade` (in this process,
the sandbox replaced by a stand-in whose case records carry lone surrogates in every text field): a file name
that is not UTF-8 beside a notebook, a student folder whose name is not UTF-8, a notebook that is a link to the
course's, a student folder that is a link to another learner's, a lone surrogate in a cell's source and in a key
nbformat rejects. Every file written (the grades and mistakes CSV, the feedback pages, the class page, the
report, the stored results, nbgrader's gradebook and autograded notebooks) must be valid UTF-8, and every
learner must have a row. Then a notebook of 56 MB (over the 50 MiB a Dask task once carried) gets the same
grade on the local pool and on a Dask cluster, as does a notebook over the size limit and a link.
"""
import csv
import json
import os
import shutil
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path

import nbformat
import pytest

from autograder.instructor import classroom, cli, intake, nbgrader_bridge, notebooks, reports, results, sandbox
from autograder.instructor.results import SubmissionGrade, graded_exercises
from tests.test_grading import answers, edited, lean, local_cluster

pytestmark = pytest.mark.slow

CHAPTER = "ch02"
NOTEBOOK = notebooks.chapter_notebook(CHAPTER).name
FULL = sum(e.points for e in graded_exercises(CHAPTER))
EXERCISES = [e.id for e in graded_exercises(CHAPTER)]
LATIN1_STUDENT = b"b_r\xe9sum\xe9"  # a student folder named by an old tool, in Latin-1
SHOWN_STUDENT = "b_r\\xe9sum\\xe9"
LIMITS = sandbox.Limits(seconds=30, memory_bytes=4 * 2**30)

# What a learner's code can make the sandbox write: lone surrogates in every text of a case's record.
RAISED = {"trace": ["line 2 of your cell, in f\udc80:", "    raise ValueError('\udc80')"], "exception": "ValueError",
          "message": ["ValueError: bad \udc80 value"], "warnings": ["UserWarning: odd \udc80 warning"]}
UNSUPPORTED = {"unsupported": "a generator \udc80 object", "warnings": ["RuntimeWarning: \udc81"]}
NOT_WRITTEN = {"not_written": True, "warnings": ["UserWarning: \udcff"]}


def records_for(exercise_id, case):
    return [{EXERCISES[0]: RAISED, EXERCISES[1]: UNSUPPORTED}.get(exercise_id, NOT_WRITTEN)]


def fake_run(job, bundle, limits, hide, submission=None):
    """A stand-in for sandbox.run: every case the job sends gets `records_for`'s record, and the run finishes."""
    if "cases" in job:
        keys = [(case["exercise"], case["case"]) for case in job["cases"]]
    else:  # the job as it was before cases were sent one at a time
        keys = [(exercise["id"], case["name"]) for exercise in job["exercises"] for case in exercise["cases"]]
    events, case_ends = [{"event": "cell_start", "index": 0}, {"event": "cell_end", "index": 0, "error": None}], {}
    for exercise_id, case in keys:
        ends = [{"event": "case_end", "exercise": exercise_id, "case": case, **record}
                for record in records_for(exercise_id, case)]
        events += [{"event": "case_start", "exercise": exercise_id, "case": case}, *ends]
        case_ends[(exercise_id, case)] = ends
    events.append({"event": "done", "output": ""})
    known = {f.name for f in fields(sandbox.Run)}
    extra = {name: value for name, value in (("sent", keys), ("case_ends", case_ends)) if name in known}
    return sandbox.Run(events, 0, False, 0.1, True, **extra)


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """A course directory with chapter 02 released (and so in nbgrader's gradebook), and the lean released
    notebook filled with the reference answers."""
    course_dir = tmp_path_factory.mktemp("exports")
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course")
    nbgrader_bridge.release(course_dir, [CHAPTER])
    release = lean(nbformat.read(course_dir / "release" / CHAPTER / NOTEBOOK, as_version=4))
    return course_dir, edited(release, answers())


def folder_of(course_dir, student: str | bytes):
    folder = os.path.join(os.fsencode(course_dir / "submitted"), os.fsencode(student), CHAPTER.encode())
    os.makedirs(folder)
    return folder


def write_notebook(folder, notebook) -> None:
    with open(os.path.join(folder, NOTEBOOK.encode()), "wb") as file:
        file.write(json.dumps(notebook).encode())  # a lone surrogate as its JSON escape, as a learner's file has it


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings_in(key)
            yield from strings_in(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_in(item)


@pytest.fixture(scope="module")
def graded(released, tmp_path_factory):
    """The odd class, graded with `nncourse grade` in this process with the stand-in sandbox: (course dir,
    exit code, stdout, stderr)."""
    course_dir, reference = released
    latin1_file = folder_of(course_dir, "a_latin1_file")
    write_notebook(latin1_file, reference)
    with open(os.path.join(latin1_file, b"r\xe9sum\xe9.txt"), "wb") as file:
        file.write(b"my notes")
    write_notebook(folder_of(course_dir, LATIN1_STUDENT), reference)
    os.symlink(notebooks.chapter_notebook(CHAPTER), os.path.join(folder_of(course_dir, "c_link"), NOTEBOOK.encode()))
    odd_source = nbformat.from_dict(json.loads(json.dumps(reference)))
    odd_source.cells.append(nbformat.v4.new_code_cell("text = 'caf\udc80'"))
    write_notebook(folder_of(course_dir, "d_surrogate_source"), odd_source)
    rejected = json.loads(json.dumps(reference))
    rejected["cells"][0]["\udc80key"] = 1
    write_notebook(folder_of(course_dir, "e_rejected_key"), rejected)
    os.symlink(course_dir / "submitted" / "a_latin1_file", course_dir / "submitted" / "f_student_link")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sandbox, "run", fake_run)
        patch.setattr(sandbox, "prewarmed", lambda *args, **kwargs: nullcontext())
        capture = tmp_path_factory.mktemp("output")
        with open(capture / "out", "w", encoding="utf-8") as out, open(capture / "err", "w", encoding="utf-8") as err:
            patch.setattr("sys.stdout", out)
            patch.setattr("sys.stderr", err)
            code = cli.main(["grade", CHAPTER, "--course-dir", str(course_dir), "--workers", "2"])
    return course_dir, code, (capture / "out").read_text(), (capture / "err").read_text()


STUDENTS = ["a_latin1_file", SHOWN_STUDENT, "c_link", "d_surrogate_source", "e_rejected_key", "f_student_link"]


def test_the_class_is_graded_and_every_learner_has_a_total_row(graded):
    course_dir, code, out, err = graded
    assert code == 0, err
    with open(classroom.work_dir(course_dir) / f"{CHAPTER}_grades.csv", encoding="utf-8") as file:
        totals = {row["student_id"]: row for row in csv.DictReader(file) if row["exercise"] == "TOTAL"}
    assert sorted(totals) == STUDENTS
    assert {student: row["status"] for student, row in totals.items()} == {
        "a_latin1_file": "graded", SHOWN_STUDENT: "graded", "c_link": "no notebook", "d_surrogate_source": "graded",
        "e_rejected_key": "unreadable notebook", "f_student_link": "no notebook"}
    assert totals["c_link"]["reason"] == (f"{NOTEBOOK} in the submission folder is a symbolic link, not a notebook: "
                                          "links are not graded")
    assert totals["f_student_link"]["reason"] == ("the student's folder f_student_link is a symbolic link, not a "
                                                  "folder: links are not graded")
    assert totals["e_rejected_key"]["reason"].startswith("nbformat rejects the notebook (")
    assert "\\udc80key" in totals["e_rejected_key"]["reason"]
    assert "6 submissions" in out


def every_file(course_dir):
    for root in ("nncourse", "autograded"):
        for path in (course_dir / root).rglob("*"):
            if path.is_file() and path.suffix != ".png":
                yield path


def test_every_file_written_is_utf8_and_says_what_the_learner_handed_in_readably(graded):
    course_dir, _, out, err = graded
    written = {path: path.read_bytes().decode("utf-8") for path in every_file(course_dir)}  # strict: raises if not
    work = classroom.work_dir(course_dir)
    assert {work / f"{CHAPTER}_grades.csv", work / f"{CHAPTER}_mistakes.csv", work / f"{CHAPTER}_report.html",
            reports.class_page_path(course_dir, CHAPTER)} <= set(written)
    pages = {path.stem: text for path, text in written.items() if path.parent == reports.feedback_folder(course_dir, CHAPTER)}
    assert sorted(pages) == STUDENTS
    assert "extra files ignored: r\\xe9sum\\xe9.txt" in pages["a_latin1_file"]
    visible = pages["a_latin1_file"]
    for shown in ("in f\\udc80:", "bad \\udc80 value", "a generator \\udc80 object"):  # (warnings show with outputs only)
        assert shown in visible, shown
    report = written[work / f"{CHAPTER}_report.html"]
    assert all(student in report for student in STUDENTS) and "links are not graded" in report
    for path in (work / "grades" / CHAPTER).glob("*.json"):  # the stored results: every string representable
        for text in strings_in(json.loads(written[path])):
            text.encode("utf-8")
    out.encode("utf-8")
    assert "not recorded in the gradebook" not in err, err


def test_the_gradebook_has_every_learner_and_the_graded_ones_autograded_notebooks(graded):
    from nbgrader.api import Gradebook

    course_dir = graded[0]
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        recorded = {submission.student.id: submission for submission in gradebook.assignment_submissions(CHAPTER)}
        assert sorted(recorded) == STUDENTS
        scores = {student: submission.score for student, submission in recorded.items()}
    assert scores["a_latin1_file"] == scores[SHOWN_STUDENT] == 0  # the stand-in's records score nothing
    for student in ("a_latin1_file", SHOWN_STUDENT, "d_surrogate_source"):
        autograded = nbformat.read(course_dir / "autograded" / student / CHAPTER / NOTEBOOK, as_version=4)
        assert any("not graded" not in json.dumps(cell.get("outputs", [])) for cell in autograded.cells)
    odd = nbformat.read(course_dir / "autograded" / "d_surrogate_source" / CHAPTER / NOTEBOOK, as_version=4)
    assert odd.cells[-1].source == "text = 'caf\udc80'"  # the learner's text, kept as it was


def big_notebook(reference, megabytes: int):
    """The reference answers with an output of `megabytes` MB: an honest notebook that printed a long log."""
    notebook = nbformat.from_dict(json.loads(json.dumps(reference)))
    cell = next(cell for cell in notebook.cells if cell.cell_type == "code")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="loss 0.5, " * (megabytes * 10**5))]
    return notebook


def test_a_big_notebook_gets_the_same_grade_on_a_dask_cluster_as_on_the_local_pool(released, tmp_path, monkeypatch):
    """56 MB (over the 50 MiB a task once carried) is graded alike on both paths; a notebook over the size limit
    (made low here: `take` applies it where the class is read, before any task leaves) and a link are refused
    alike."""
    course_dir, reference = released
    monkeypatch.setattr(intake, "MAX_NOTEBOOK_BYTES", 80 * 2**20)
    grades = {}
    for engine in ("local", "dask"):
        small = tmp_path / engine
        nbformat.write(big_notebook(reference, 56), os.fsdecode(folder_of(small, "a_big")) + f"/{NOTEBOOK}")
        with open(os.path.join(folder_of(small, "b_over_the_limit"), NOTEBOOK.encode()), "wb") as file:
            file.truncate(81 * 2**20)  # sparse: never read
        os.symlink(notebooks.chapter_notebook(CHAPTER), os.path.join(folder_of(small, "c_link"), NOTEBOOK.encode()))
        assert 50 * 2**20 < (small / "submitted" / "a_big" / CHAPTER / NOTEBOOK).stat().st_size < 80 * 2**20
        if engine == "local":
            graded = classroom.grade_class(small, CHAPTER, workers=2, limits=LIMITS, progress=False)
        else:
            with local_cluster(tmp_path, workers=1, threads=2) as cluster:
                graded = classroom.grade_class(small, CHAPTER, limits=LIMITS, progress=False,
                                               scheduler=cluster.scheduler_address)
        grades[engine] = {grade.student: grade for grade in graded}

    def comparable(grade: SubmissionGrade) -> dict:
        return {**grade.to_json(), "seconds": None}

    assert {s: comparable(g) for s, g in grades["dask"].items()} == {s: comparable(g) for s, g in grades["local"].items()}
    big, over, link = (grades["dask"][student] for student in ("a_big", "b_over_the_limit", "c_link"))
    assert big.status == "graded" and big.score == FULL, [(e.id, e.reason) for e in big.exercises]
    assert over.status == "unreadable notebook" and over.reason.startswith("the notebook is 81.0 MiB, over the 80.0 MiB")
    assert link.status == "no notebook" and "links are not graded" in link.reason


def test_a_late_submission_is_late_in_the_gradebook_and_the_export(released, tmp_path):
    """nbgrader's `collect` writes each submission's time into timestamp.txt; the gradebook gets it as
    `nbgrader autograde` would, so that due dates and late penalties work: an on-time and a late learner, and
    a timestamp that is not a time or is a link (the learner's side of the exchange writes it) are none."""
    from datetime import datetime

    from nbgrader.api import Gradebook

    course_dir = tmp_path / "course"
    shutil.copytree(released[0], course_dir, ignore=shutil.ignore_patterns("submitted", "nncourse", "autograded"))
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_assignment(CHAPTER, duedate=datetime(2026, 12, 1, 12, 0))
    times = {"on_time": "2026-12-01 11:59:00.000000 UTC", "late": "2026-12-01 13:00:00.000000 UTC",
             "not_a_time": "yesterday at noon", "linked": None}
    for student, text in times.items():
        folder = Path(folder_of(course_dir, student).decode())
        if text is None:
            (folder / "timestamp.txt").symlink_to(course_dir / "nbgrader_config.py")
        else:
            (folder / "timestamp.txt").write_text(text)
    grades = [results.ungraded(student, CHAPTER, results.Status.NO_NOTEBOOK, "no notebook") for student in times]
    assert nbgrader_bridge.record_in_gradebook(course_dir, CHAPTER, grades) == len(times)
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        submitted = {student: gradebook.find_submission(CHAPTER, student) for student in times}
        late = {student: (s.timestamp, s.total_seconds_late) for student, s in submitted.items()}
    assert late["on_time"] == (datetime(2026, 12, 1, 11, 59), 0)
    assert late["late"] == (datetime(2026, 12, 1, 13, 0), 3600)
    assert late["not_a_time"][0] is None and late["linked"][0] is None
    export = nbgrader_bridge.nbgrader(course_dir, "export", "--to", str(tmp_path / "grades.csv"))
    assert export.returncode == 0
    rows = {row["student_id"]: row for row in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert rows["late"]["timestamp"].startswith("2026-12-01 13:00:00") and rows["late"]["late_submission_penalty"]
