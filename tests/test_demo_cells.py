"""Demonstration cells (tag `demo`): grading leaves them out, and that never changes a grade.

Per chapter: every tagged cell is one grading can skip (it binds nothing that a cell which runs, or a
graded exercise, needs), the tag survives into learner/, and the reference-filled release graded with
its demonstrations skipped gets full marks. Then the rule itself: only the course's own text is skipped,
a learner's tag counts for nothing, and a demonstration whose names a learner's code reads runs.
"""
import nbformat
import pytest

from autograder.instructor import bundle, classroom, demos, grading, intake, nbgrader_bridge, notebooks, sandbox
from autograder.learner import registry
from autograder.instructor.learner_copy import learner_path

CHAPTERS = [path.parent.name for path in notebooks.all_notebooks()]
GRADED = sorted({e.chapter for e in registry.all_exercises() if e.points > 0})


def course(chapter):
    return notebooks.read(notebooks.chapter_notebook(chapter))


def learner(chapter):
    return notebooks.read(learner_path(notebooks.chapter_notebook(chapter), notebooks.COURSE, notebooks.LEARNER))


def filled(chapter):
    """The learner form (what nbgrader releases) with every solution cell holding the reference."""
    answers = {gid: cell.source for gid, cell in notebooks.cells_by_grade_id(course(chapter)).items()
               if cell.metadata.nbgrader.get("solution")}
    notebook = learner(chapter)
    for cell in notebook.cells:
        if notebooks.grade_id(cell) in answers:
            cell.source = answers[notebooks.grade_id(cell)]
    return notebook


def run_cells(notebook, chapter):
    cells, _ = intake.learner_cells([dict(cell) for cell in notebook.cells], chapter)
    return cells


def demo_indices(notebook):
    return {index for index, cell in enumerate(notebook.cells) if demos.is_demo(cell)}


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_demonstration_cell_is_one_grading_can_skip(chapter):
    """A demonstration that bound a name a later cell or an exercise needs would break grading when
    skipped; the rule would then run it, and this test names it instead."""
    notebook = course(chapter)
    tagged = demo_indices(notebook)
    for index in tagged:
        cell = notebook.cells[index]
        assert "nbgrader" not in cell.metadata and "BEGIN SOLUTION" not in cell.source, cell.id
    skipped = demos.cells_to_skip(run_cells(notebook, chapter), chapter, grading.exercise_names(chapter))
    kept = {notebook.cells[index].id: sorted(demos.cell_names(notebook.cells[index].source).binds)
            for index in tagged - skipped}
    assert not kept, f"demonstration cells whose names later cells or exercises need: {kept}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_tag_reaches_the_learner_form(chapter):
    ids = lambda notebook: [notebook.cells[index].id for index in sorted(demo_indices(notebook))]  # noqa: E731
    assert ids(learner(chapter)) == ids(course(chapter))


@pytest.fixture(scope="module")
def warm_bundle(tmp_path_factory):
    """One bundle of every chapter, and warm sandboxes on it for the whole module."""
    course_dir = tmp_path_factory.mktemp("demos")
    learner_bundle = bundle.build(course_dir / "bundle")
    hide = classroom.hidden_paths(course_dir)
    modules = list(dict.fromkeys(name for chapter in GRADED if chapter in CHAPTERS
                                 for name in grading.warm_modules(chapter)))
    with sandbox.prewarmed(learner_bundle, hide, modules):
        yield learner_bundle, hide


@pytest.mark.slow
@pytest.mark.parametrize("chapter", GRADED)
def test_the_reference_filled_release_gets_full_marks_with_its_demonstrations_skipped(chapter, warm_bundle,
                                                                                      tmp_path, monkeypatch):
    learner_bundle, hide = warm_bundle
    notebook = filled(chapter)
    folder = tmp_path / chapter
    folder.mkdir()
    nbformat.write(notebook, folder / notebooks.chapter_notebook(chapter).name)
    ran = []
    real_run = sandbox.run
    monkeypatch.setattr(sandbox, "run", lambda job, *args, **kwargs: ran.append(job) or real_run(job, *args, **kwargs))
    grade = grading.grade_submission(intake.take(folder, chapter), "reference", chapter, learner_bundle, hide)
    assert grade.status == "graded" and grade.score == grade.max_score > 0, \
        [(e.id, e.reason, e.feedback[:500]) for e in grade.exercises if e.score < e.points]
    indices = {cell["index"] for job in ran for cell in job["cells"]}
    assert not indices & demo_indices(notebook)  # every demonstration was left out, in every stage


# --- the rule ---------------------------------------------------------------------------------------

CHAPTER = "ch02"


def cells_of(notebook):
    return run_cells(notebook, CHAPTER)


def skipped_ids(notebook):
    skipped = demos.cells_to_skip(cells_of(notebook), CHAPTER, grading.exercise_names(CHAPTER))
    return {notebook.cells[index].id for index in skipped}


def all_demo_ids(notebook):
    return {notebook.cells[index].id for index in demo_indices(notebook)}


def replace_solution(notebook, exercise_id, source):
    for cell in notebook.cells:
        if notebooks.grade_id(cell) == registry.grade_id_of(exercise_id):
            cell.source = source
    return notebook


def edit_cell(notebook, cell_id, line):
    cell = next(cell for cell in notebook.cells if cell.id == cell_id)
    cell.source += line
    return notebook


def test_an_edited_demonstration_runs_and_so_does_what_it_reads():
    notebook = edit_cell(filled(CHAPTER), "cell-036", "\nprint('my own line')")
    assert skipped_ids(notebook) == all_demo_ids(notebook) - {"cell-036"}
    notebook = edit_cell(filled(CHAPTER), "cell-031", "\nprint('my own line')")  # it reads cell-025's w_exact
    assert skipped_ids(notebook) == all_demo_ids(notebook) - {"cell-031", "cell-025"}


def test_a_tag_in_the_submission_counts_for_nothing():
    notebook = filled(CHAPTER)
    for cell in notebook.cells:
        cell.metadata["tags"] = ["demo"]  # the learner tags every cell, solutions included
    extra = nbformat.v4.new_code_cell("print('not the course text')")
    extra.metadata["tags"] = ["demo"]
    notebook.cells.append(extra)
    assert skipped_ids(notebook) == all_demo_ids(filled(CHAPTER))
    untagged = filled(CHAPTER)
    for cell in untagged.cells:
        cell.metadata.pop("tags", None)  # ... or removes the course's tags: the course's text decides
    assert skipped_ids(untagged) == all_demo_ids(filled(CHAPTER))


def test_a_demonstration_whose_names_a_learners_code_reads_runs_with_what_it_reads():
    """cell-025 binds w_exact (reading least_squares, defined by a solution); a learner's mse_loss that
    looks it up at call time needs it, so it runs, and so does nothing else that only it needs."""
    notebook = replace_solution(filled(CHAPTER), "ch02.mse_loss",
                                "def mse_loss(X, y, w, b):\n    _ = w_exact\n    return float(((X @ w + b - y) ** 2).mean())")
    assert skipped_ids(notebook) == all_demo_ids(notebook) - {"cell-025"}
    chained = replace_solution(filled(CHAPTER), "ch02.mse_loss",  # lr_limit comes from cell-021, read by 021-paths
                               "def mse_loss(X, y, w, b):\n    return float(((X @ w + b - y) ** 2).mean()) + 0 * lr_limit")
    assert skipped_ids(chained) == all_demo_ids(chained) - {"cell-021"}


def test_code_that_reads_names_out_of_sight_keeps_every_demonstration():
    for source in ("g = globals()", "x = eval('w_exact')", "%who", "import __main__"):
        notebook = filled(CHAPTER)
        notebook.cells.append(nbformat.v4.new_code_cell(source))
        assert skipped_ids(notebook) == set(), source


def test_the_analysis_sees_reads_inside_functions_and_binds_before_reads():
    names = demos.cell_names("import numpy as np\nx = 1\ny = x + z\n\ndef f(a):\n    return a + w + np.pi\n"
                             "class C:\n    k = q\n[v for v in u]\nglobal_thing = lambda t: t + s\n"
                             "for i in range(3):\n    total = i + total\n    last = i\nwith open(p) as handle:\n"
                             "    text = handle.read()\ntry:\n    pass\nexcept E as error:\n    print(error)")
    assert names.binds == {"np", "x", "y", "f", "C", "global_thing", "i", "total", "last", "handle", "text", "error"}
    assert names.reads == {"z", "w", "q", "u", "s", "range", "total", "open", "p", "E", "print"}
    assert not names.unknown
    assert demos.cell_names("def f(:\n").binds == set()  # never runs
    assert demos.cell_names("from numpy import *").unknown


def test_the_tag_survives_nbgrader_release(tmp_path):
    """nbgrader generate_assignment keeps a cell's tags: the release a class gets carries them too."""
    import shutil

    shutil.copy(notebooks.ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(notebooks.COURSE / CHAPTER, tmp_path / "course" / CHAPTER)
    nbgrader_bridge.nbgrader(tmp_path, "generate_assignment", CHAPTER, "--force")
    released = nbformat.read(tmp_path / "release" / CHAPTER / notebooks.chapter_notebook(CHAPTER).name, as_version=4)
    assert all_demo_ids(released) == all_demo_ids(course(CHAPTER)) != set()

