"""`nncourse sync`: notebooks and solutions/ agree, and a disagreement is named."""
import shutil
import subprocess
import sys

import pytest

from autograder.instructor import notebooks
from autograder.learner import registry
from nbval.plugin import comment_markers as NBVAL_MARKERS
from autograder.instructor.sync import INDEX, index_source, solution_sources, sync, sync_index


def nncourse(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "autograder.instructor.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_repository_notebooks_are_in_sync():
    result = nncourse("sync", "--check")
    assert result.returncode == 0, result.stderr


def test_the_exercise_index_says_what_the_registry_does():
    """`nncourse list` prints the index, not the registry: it must hold every registered exercise's points, cases
    and known mistakes, and `nncourse sync` writes it again when an exercise changes."""
    assert sync_index(write=False) == [], f"{INDEX.relative_to(notebooks.ROOT)} is stale: run `nncourse sync`"


@pytest.mark.parametrize("index", ["stale", "missing"])
def test_a_stale_or_missing_exercise_index_is_named_and_written(index, tmp_path):
    path = tmp_path / "exercise_index.py"
    if index == "stale":
        path.write_text(index_source(registry.all_exercises()).replace('"points": 2', '"points": 3', 1))
    [difference] = sync_index(write=False, path=path)
    assert (difference.notebook, difference.what) == (path, "differs from the registry's exercises (stale or "
                                                            "missing); sync rewrites it")
    assert sync_index(write=True, path=path) != [] and sync_index(write=False, path=path) == []
    assert path.read_text() == index_source(registry.all_exercises())


@pytest.fixture
def copy_of_course(tmp_path):
    shutil.copytree(notebooks.COURSE, tmp_path / "course")
    shutil.copytree(notebooks.SOLUTIONS, tmp_path / "solutions", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(notebooks.LEARNER, tmp_path / "learner")
    return tmp_path / "course", tmp_path / "solutions", tmp_path / "learner"


def edit_cell(course, chapter, grade_id, edit):
    path = notebooks.chapter_notebook(chapter, course)
    notebook = notebooks.read(path)
    cell = notebooks.cells_by_grade_id(notebook)[grade_id]
    edit(notebook, cell)
    notebooks.write(notebook, path)


def test_an_edited_solution_cell_is_named_and_rewritten(copy_of_course):
    course, solutions, learner = copy_of_course
    edit_cell(course, "ch02", "ch02-mse_loss", lambda nb, cell: setattr(cell, "source", cell.source + "\n# edited"))
    found = sync(write=False, course_dir=course, solutions_dir=solutions, learner_dir=learner)
    assert [d.cell for d in found] == ["ch02-mse_loss"]  # the learner form has no solution: it did not change
    sync(write=True, course_dir=course, solutions_dir=solutions, learner_dir=learner)
    assert sync(write=False, course_dir=course, solutions_dir=solutions, learner_dir=learner) == []


def test_points_come_from_the_registry(copy_of_course):
    course, solutions, learner = copy_of_course
    edit_cell(course, "ch02", "ch02-mse_gradient-test",
              lambda nb, cell: cell.metadata.nbgrader.__setitem__("points", 7))
    found = sync(write=False, course_dir=course, solutions_dir=solutions, learner_dir=learner)
    assert any(d.cell == "ch02-mse_gradient-test" and "points 7 -> 2" in d.what for d in found)


def test_a_missing_cell_is_reported_not_invented(copy_of_course):
    course, solutions, learner = copy_of_course
    edit_cell(course, "ch02", "ch02-least_squares", lambda nb, cell: nb.cells.remove(cell))
    found = sync(write=True, course_dir=course, solutions_dir=solutions, learner_dir=learner)
    assert any(d.cell == "ch02-least_squares" and d.what.startswith("missing") for d in found)


def test_the_colab_cell_uses_the_url_in_pyproject():
    url = notebooks.repository_url()
    for path in notebooks.all_notebooks():
        colab = [c for c in notebooks.read(path).cells if "colab-setup" in c.metadata.get("tags", [])]
        assert len(colab) == 1 and f"git+{url}" in colab[0].source and "--no-deps" not in colab[0].source


def test_every_nbval_marker_is_one_that_nbval_recognises():
    """nbval acts on a marker comment only when the line holds the marker alone: a reason written on
    the same line (`# NBVAL_IGNORE_OUTPUT: why`) silently turns the marker off."""
    for path in notebooks.all_notebooks():
        for cell in notebooks.read(path).cells:
            for line in cell.source.splitlines():
                if "NBVAL_" in line:
                    assert line.strip().lstrip("#").strip() in NBVAL_MARKERS, f"{path.name}: {line!r}"


def test_every_ignored_output_says_why_on_the_next_line():
    """An output nbval does not compare is a result nobody checks: the line after the marker says why (a timing,
    the machine's own devices or threads, a progress bar), since the marker's own line cannot hold a reason."""
    for path in notebooks.all_notebooks():
        for cell in notebooks.read(path).cells:
            lines = [line.strip() for line in cell.source.splitlines()]
            for k, line in enumerate(lines):
                if line == "# NBVAL_IGNORE_OUTPUT":
                    reason = lines[k + 1] if k + 1 < len(lines) else ""
                    assert reason.startswith("#") and len(reason.split()) >= 4, \
                        f"{path.name}: an NBVAL_IGNORE_OUTPUT without a reason on the next line: {cell.source[:120]!r}"


def test_solution_cells_hold_the_whole_function_with_markers():
    sources = solution_sources(notebooks.SOLUTIONS / "ch02_gradient_descent.py")
    assert set(sources) == {e.name for e in registry.all_exercises() if e.chapter == "ch02"}
    for source in sources.values():
        assert source.startswith("def ") and source.rstrip().endswith("### END SOLUTION")


def test_execution_times_left_by_a_run_are_named_and_removed(copy_of_course):
    course, solutions, learner = copy_of_course
    edit_cell(course, "ch02", "ch02-mse_loss",
              lambda nb, cell: cell.metadata.__setitem__("execution", {"iopub.status.idle": "2026-11-24T08:00:00Z"}))
    found = sync(write=True, course_dir=course, solutions_dir=solutions, learner_dir=learner)
    assert [d.cell for d in found] == ["(cell metadata)"]
    assert sync(write=False, course_dir=course, solutions_dir=solutions, learner_dir=learner) == []


@pytest.mark.parametrize("path", notebooks.all_notebooks(), ids=lambda path: path.parent.name)
def test_every_course_notebook_is_stored_executed_top_to_bottom(path):
    """nbval compares each cell's output with the stored one; a notebook stored without outputs is only
    executed, and nothing it prints is checked. Every code cell has run, in order, in one kernel."""
    counts = [cell.execution_count for cell in notebooks.read(path).cells if cell.cell_type == "code"]
    assert None not in counts, f"{path.name}: cells stored unexecuted; run it with nbconvert --execute --inplace"
    assert counts == list(range(1, len(counts) + 1)), f"{path.name}: not run top to bottom in one kernel"
