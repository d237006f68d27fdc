"""The nbgrader round trip, for real: release, submit, autograde, feedback, export.

Three learners hand in chapter 02: one with the reference answers (full marks), one with the
release untouched (zero on every graded cell, and no crash), one with a single known mistake (it
loses exactly that exercise's points; that learner deleted the demonstrations, as learners may, which
spares nbgrader a third run of them). Every other chapter is released too, and each chapter's learner
form in the repository is what nbgrader releases.
"""
import csv
import shutil

import nbformat
import pytest

from autograder.instructor import notebooks
from autograder.learner import registry
from autograder.instructor.nbgrader_bridge import nbgrader
from tests.test_grading import lean

pytestmark = pytest.mark.slow

CHAPTER = "ch02"
MUTANT_EXERCISE = "ch02.mse_gradient"
MUTANT_SOURCE = '''def mse_gradient(X, y, w, b):
    residual = y - (X @ w + b)
    return 2 / len(y) * (X.T @ residual), 2 / len(y) * residual.sum()
'''


def submit(course_dir, student, notebook):
    folder = course_dir / "submitted" / student / CHAPTER
    folder.mkdir(parents=True)
    nbformat.write(notebook, folder / notebooks.chapter_notebook(CHAPTER).name)


def with_cells(release, replacements):
    """A copy of the released notebook with the sources of some graded cells replaced."""
    notebook = nbformat.from_dict(release)
    for cell in notebook.cells:
        if notebooks.grade_id(cell) in replacements:
            cell.source = replacements[notebooks.grade_id(cell)]
    return notebook


def release_in_this_process(course_dir, chapters):
    """nbgrader's generate_assignment for `chapters` through its Python API (what the Formgrader calls), in this
    process: the same converter as the command line, without starting nbgrader anew (5 s) for each chapter."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    api = NbGraderAPI(coursedir=CourseDirectory(config=config, root=str(course_dir)), config=config)
    for chapter in chapters:
        result = api.generate_assignment(chapter, force=True)
        assert result["success"], f"nbgrader could not release {chapter}: {result.get('error')}\n{result.get('log')}"


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("class")
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    nbgrader(course_dir, "generate_assignment", CHAPTER, "--force")  # the command an instructor runs
    release_in_this_process(course_dir, [chapter for chapter in notebooks.chapter_modules() if chapter != CHAPTER])

    name = notebooks.chapter_notebook(CHAPTER).name
    release = nbformat.read(course_dir / "release" / CHAPTER / name, as_version=4)
    source = nbformat.read(course_dir / "course" / CHAPTER / name, as_version=4)
    answers = {gid: cell.source for gid, cell in notebooks.cells_by_grade_id(source).items()
               if cell.metadata.nbgrader.get("solution")}
    submit(course_dir, "reference", with_cells(release, answers))
    submit(course_dir, "untouched", release)
    submit(course_dir, "mutant",
           with_cells(lean(release), {**answers, registry.grade_id_of(MUTANT_EXERCISE): MUTANT_SOURCE}))

    nbgrader(course_dir, "autograde", CHAPTER, "--create")
    nbgrader(course_dir, "generate_feedback", CHAPTER)
    nbgrader(course_dir, "export", "--to", "grades.csv")
    with open(course_dir / "grades.csv") as file:
        grades = {row["student_id"]: row for row in csv.DictReader(file) if row["assignment"] == CHAPTER}
    return course_dir, release, grades


def chapter_points():
    return sum(e.points for e in registry.all_exercises() if e.chapter == CHAPTER)


def cell_scores(course_dir, student):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(
            notebooks.chapter_notebook(CHAPTER).stem, CHAPTER, student)
        return {grade.name: grade.score for grade in submission.grades}


def test_release_strips_solutions_and_hidden_tests(graded_class):
    _, release, _ = graded_class
    text = "\n".join(cell.source for cell in release.cells)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text
    assert text.count("raise NotImplementedError()") == len(
        [e for e in registry.all_exercises() if e.chapter == CHAPTER])
    assert all(not cell.get("outputs") for cell in release.cells if cell.cell_type == "code")


def test_reference_submission_gets_full_marks(graded_class):
    _, _, grades = graded_class
    assert float(grades["reference"]["max_score"]) == chapter_points()
    assert float(grades["reference"]["score"]) == chapter_points()


def test_untouched_release_gets_zero_on_every_graded_cell(graded_class):
    course_dir, _, grades = graded_class
    assert float(grades["untouched"]["score"]) == 0
    scores = cell_scores(course_dir, "untouched")
    test_cells = {f"{e.grade_id}-test" for e in registry.all_exercises() if e.chapter == CHAPTER and e.points}
    assert test_cells <= scores.keys()
    assert all(scores[cell] == 0 for cell in test_cells)


def test_one_mistake_loses_exactly_that_exercises_points(graded_class):
    course_dir, _, grades = graded_class
    lost = registry.get(MUTANT_EXERCISE).points
    assert float(grades["mutant"]["score"]) == chapter_points() - lost
    scores = cell_scores(course_dir, "mutant")
    assert scores[f"{registry.grade_id_of(MUTANT_EXERCISE)}-test"] == 0


def test_feedback_is_generated_for_every_learner(graded_class):
    course_dir, _, _ = graded_class
    for student in ("reference", "untouched", "mutant"):
        html = (course_dir / "feedback" / student / CHAPTER /
                notebooks.chapter_notebook(CHAPTER).with_suffix(".html").name).read_text()
        assert "ch02.mse_loss" in html
    mutant_html = (course_dir / "feedback" / "mutant" / CHAPTER /
                   notebooks.chapter_notebook(CHAPTER).with_suffix(".html").name).read_text()
    assert "gradient sign flipped" in mutant_html


@pytest.mark.parametrize("chapter", notebooks.chapter_modules())
def test_the_learner_form_in_the_repository_is_what_nbgrader_releases(graded_class, chapter):
    course_dir, _, _ = graded_class
    name = notebooks.chapter_notebook(chapter).name
    learner = nbformat.read(notebooks.LEARNER / chapter / name, as_version=4)
    release = nbformat.read(course_dir / "release" / chapter / name, as_version=4)
    assert [(cell.cell_type, cell.source) for cell in learner.cells] == \
        [(cell.cell_type, cell.source) for cell in release.cells]
