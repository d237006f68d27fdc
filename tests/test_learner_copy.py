"""The learner form of the course (learner/), and a learner's working copy made from it (work/)."""
import contextlib
import io
import json
import shutil
import sys

import nbformat
import pytest

from autograder import check
from autograder.instructor import notebooks
from autograder.learner import registry
from autograder.instructor.learner_copy import (MANIFEST, NEW_VERSION_SUFFIX, MarkerError, learner_form, learner_path,
                                     update_workspace)
from autograder.instructor.sync import sync

CHAPTERS = list(notebooks.chapter_modules())


def learner_notebook(chapter):
    source = notebooks.chapter_notebook(chapter)
    return nbformat.read(learner_path(source, notebooks.COURSE, notebooks.LEARNER), as_version=4)


def run_cell_then_check(source, exercise):
    """Run a solution cell's source the way a notebook does (the chapter's names in scope), then its check."""
    namespace = dict(vars(sys.modules[exercise.reference.__module__]))
    exec(compile(source, f"<{exercise.grade_id}>", "exec"), namespace)
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise.id, namespace[exercise.name])
    return passed, output.getvalue()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_learner_notebook_holds_no_answer_no_hidden_test_and_no_output(chapter):
    notebook = learner_notebook(chapter)
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text and "hidden=True" not in text
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert "widgets" not in notebook.metadata  # progress bars' state, with new random ids at every run


@pytest.mark.parametrize("exercise", registry.all_exercises(), ids=lambda exercise: exercise.id)
def test_every_exercise_starts_blank_and_its_check_says_not_written(exercise):
    learner_cell = notebooks.cells_by_grade_id(learner_notebook(exercise.chapter))[exercise.grade_id]
    assert "raise NotImplementedError()" in learner_cell.source
    passed, output = run_cell_then_check(learner_cell.source, exercise)
    assert not passed and "not written yet" in output


@pytest.mark.parametrize("exercise", registry.all_exercises(), ids=lambda exercise: exercise.id)
def test_filling_in_the_reference_passes(exercise):
    source_cell = notebooks.cells_by_grade_id(notebooks.read(notebooks.chapter_notebook(exercise.chapter)))[
        exercise.grade_id]
    passed, output = run_cell_then_check(source_cell.source, exercise)
    assert passed, output


def test_the_stub_keeps_the_markers_indentation_and_the_code_around_it():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "def f(x):\n    \"\"\"Doc.\"\"\"\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n"
        "print(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 1\n### END HIDDEN TESTS",
        outputs=[nbformat.v4.new_output("stream", text="old")], execution_count=3,
        metadata={"execution": {"iopub.status.idle": "2026-11-24T08:03:13Z"}})])
    blank = learner_form(notebook)
    assert blank.cells[0].source == ("def f(x):\n    \"\"\"Doc.\"\"\"\n    # YOUR CODE HERE\n"
                                     "    raise NotImplementedError()\n\nprint(f)")
    assert blank.cells[0].outputs == [] and blank.cells[0].execution_count is None
    assert "execution" not in blank.cells[0].metadata  # timestamps from the last run would churn learner/
    assert "return x" in notebook.cells[0].source  # the source notebook is left as it was


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION",
                                    "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION"])
def test_unpaired_markers_are_an_error_that_shows_the_cell(source):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])
    with pytest.raises(MarkerError, match="SOLUTION"):
        learner_form(notebook)


def test_sync_writes_a_stale_learner_notebook_and_check_names_it(tmp_path):
    shutil.copytree(notebooks.COURSE, tmp_path / "course")
    shutil.copytree(notebooks.LEARNER, tmp_path / "learner")
    stale = learner_path(notebooks.chapter_notebook("ch02", tmp_path / "course"), tmp_path / "course",
                         tmp_path / "learner")
    stale.write_text(stale.read_text().replace("NotImplementedError", "NotImplementedErr"))
    shutil.rmtree(tmp_path / "learner" / "ch01")
    found = sync(write=False, course_dir=tmp_path / "course", learner_dir=tmp_path / "learner")
    missing = learner_path(notebooks.chapter_notebook("ch01", tmp_path / "course"), tmp_path / "course",
                           tmp_path / "learner")
    assert {d.notebook for d in found if d.notebook.is_relative_to(tmp_path / "learner")} == {stale, missing}
    sync(write=True, course_dir=tmp_path / "course", learner_dir=tmp_path / "learner")
    assert sync(write=False, course_dir=tmp_path / "course", learner_dir=tmp_path / "learner") == []


# -- the working copy ----------------------------------------------------------------------------

@pytest.fixture
def upstream(tmp_path):
    learner = tmp_path / "learner"
    for chapter in ("ch00", "ch02"):
        (learner / chapter).mkdir(parents=True)
        (learner / chapter / f"{chapter}_topic.ipynb").write_text(f'{{"chapter": "{chapter}", "version": 1}}')
    return learner


def test_first_run_copies_every_chapter_and_a_second_run_changes_nothing(upstream, tmp_path):
    work = tmp_path / "work"
    first = update_workspace(work, upstream)
    assert [change.path.name for change in first] == ["ch00_topic.ipynb", "ch02_topic.ipynb"]
    assert all("new" in change.what for change in first)
    assert (work / "ch02" / "ch02_topic.ipynb").read_text() == (upstream / "ch02" / "ch02_topic.ipynb").read_text()
    assert update_workspace(work, upstream) == []


def test_an_edited_copy_is_never_overwritten_and_the_new_version_arrives_beside_it(upstream, tmp_path):
    work = tmp_path / "work"
    update_workspace(work, upstream)
    mine = work / "ch02" / "ch02_topic.ipynb"
    mine.write_text('{"my": "answers"}')
    (upstream / "ch02" / "ch02_topic.ipynb").write_text('{"chapter": "ch02", "version": 2}')
    changes = update_workspace(work, upstream)
    assert mine.read_text() == '{"my": "answers"}'
    beside = work / "ch02" / f"ch02_topic{NEW_VERSION_SUFFIX}"
    assert beside.read_text() == '{"chapter": "ch02", "version": 2}'
    assert len(changes) == 1 and "your copy is untouched" in changes[0].what and beside.name in changes[0].what
    assert update_workspace(work, upstream) == []  # said once, not at every start
    assert mine.read_text() == '{"my": "answers"}'


def test_an_untouched_copy_follows_the_course_and_a_new_chapter_arrives(upstream, tmp_path):
    work = tmp_path / "work"
    update_workspace(work, upstream)
    (upstream / "ch00" / "ch00_topic.ipynb").write_text('{"chapter": "ch00", "version": 2}')
    (upstream / "ch03").mkdir()
    (upstream / "ch03" / "ch03_topic.ipynb").write_text('{"chapter": "ch03", "version": 1}')
    changes = {change.path.name: change.what for change in update_workspace(work, upstream)}
    assert changes.keys() == {"ch00_topic.ipynb", "ch03_topic.ipynb"}
    assert "you had not changed it" in changes["ch00_topic.ipynb"] and "new" in changes["ch03_topic.ipynb"]
    assert json.loads((work / "ch00" / "ch00_topic.ipynb").read_text())["version"] == 2


def test_a_deleted_copy_is_restored_and_an_unknown_copy_is_kept(upstream, tmp_path):
    work = tmp_path / "work"
    update_workspace(work, upstream)
    (work / "ch00" / "ch00_topic.ipynb").unlink()
    manifest = json.loads((work / MANIFEST).read_text())
    del manifest["ch02/ch02_topic.ipynb"]
    (work / MANIFEST).write_text(json.dumps(manifest))
    (work / "ch02" / "ch02_topic.ipynb").write_text('{"mine": true}')
    changes = update_workspace(work, upstream)
    assert [(c.path.name, c.what) for c in changes] == [("ch00_topic.ipynb", "restored (it was missing)")]
    assert (work / "ch02" / "ch02_topic.ipynb").read_text() == '{"mine": true}'


SOLUTION_WITHOUT_NBFORMAT = '''
import sys
sys.modules["nbformat"] = None  # Colab's base install of the course has no nbformat
from autograder.instructor.cli import main
sys.exit(main(["solution", {exercise!r}]))
'''


def run_solution_command(exercise_id):
    import subprocess

    return subprocess.run([sys.executable, "-c", SOLUTION_WITHOUT_NBFORMAT.format(exercise=exercise_id)],
                          capture_output=True, text=True, cwd=notebooks.ROOT)


def test_the_reference_is_one_command_away_without_markers_even_on_the_base_install():
    result = run_solution_command("ch02.mse_loss")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("def mse_loss(") and "SOLUTION" not in result.stdout
    assert "return" in result.stdout


def test_a_mistyped_exercise_id_gets_suggestions():
    result = run_solution_command("ch02.mse_los")
    assert result.returncode == 2 and "Did you mean ch02.mse_loss" in result.stderr


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_readme_opens_each_learner_notebook_on_colab(chapter):
    learner = learner_path(notebooks.chapter_notebook(chapter), notebooks.COURSE, notebooks.LEARNER)
    assert f"({notebooks.colab_url(learner)})" in (notebooks.ROOT / "README.md").read_text()


@pytest.mark.parametrize("chapter", sorted(notebooks.chapter_modules()))
def test_each_chapter_says_at_its_top_that_run_all_stops_at_the_first_unwritten_exercise(chapter):
    """A learner who presses Run All meets the first unwritten exercise's stop; the chapter says so before they do,
    and chapter 00 says why."""
    cells = nbformat.read(notebooks.chapter_notebook(chapter), as_version=4).cells
    first = next(cell for cell in cells if cell.cell_type == "markdown").source
    if chapter == "ch00":
        assert any("**Run All stops at the first exercise not written yet.**" in cell.source for cell in cells)
    else:
        assert "**Run All** stops at the first exercise not written yet" in first, chapter
