"""Grading a class for real: every kind of broken or cheating submission gets its row, and the run goes on.

One class of chapter 02 is released with `nncourse release`, filled with real notebook files, and
graded once with `classroom.grade_class` (sandboxes in parallel); each test then reads its
learner's result.
"""
import csv
import json
import shutil
from contextlib import contextmanager

import nbformat
import pytest

from autograder.instructor import classroom, nbgrader_bridge, notebooks, reports, sandbox
from autograder.learner import registry
from autograder.instructor.results import graded_exercises
from tests.isolation_required import host_can_isolate, needs_isolation

pytestmark = pytest.mark.slow

CHAPTER = "ch02"
NOTEBOOK = notebooks.chapter_notebook(CHAPTER).name
FULL = sum(e.points for e in graded_exercises(CHAPTER))
LIMITS = sandbox.Limits(seconds=12, memory_bytes=4 * 2**30)


def points(exercise_id):
    return registry.get(exercise_id).points


def answers():
    source = nbformat.read(notebooks.chapter_notebook(CHAPTER), as_version=4)
    return {gid: cell.source for gid, cell in notebooks.cells_by_grade_id(source).items()
            if cell.metadata.nbgrader.get("solution")}


def edited(release, sources=None, edit=None):
    """The released notebook with some solution cells' sources replaced, then `edit(notebook)` applied."""
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    for cell in notebook.cells:
        gid = notebooks.grade_id(cell)
        if sources and gid in sources:
            cell.source = sources[gid]
    if edit:
        edit(notebook)
    return notebook


def add_code_cell(source, at=None):
    def edit(notebook):
        cell = nbformat.v4.new_code_cell(source)
        notebook.cells.insert(len(notebook.cells) if at is None else at, cell)
    return edit


def with_answer(exercise_id, source):
    return {**answers(), registry.grade_id_of(exercise_id): source}


def cells_with(notebook, grade_id):
    return [i for i, cell in enumerate(notebook.cells) if notebooks.grade_id(cell) == grade_id]


def lean(release):
    """The release without its demonstrations: the imports cell, then the solution and test cells.

    Grading runs every code cell of a notebook; the demonstrations only cost time here, so all
    learners but `full_notebook` hand in this shorter notebook."""
    notebook = nbformat.from_dict(json.loads(json.dumps(release)))
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    imports = next(cell for cell in code if "from autograder import check" in cell.source)
    notebook.cells = [imports] + [cell for cell in code if notebooks.grade_id(cell)]
    return notebook


def submissions(full_release):
    reference = answers()
    release = lean(full_release)

    def delete_cell(notebook):
        del notebook.cells[cells_with(notebook, "ch02-mse_loss")[0]]

    def duplicate_and_move(notebook):
        index = cells_with(notebook, "ch02-gradient_step")[0]
        copy = nbformat.from_dict(json.loads(json.dumps(notebook.cells[index])))
        copy["id"] = "a-copy"
        notebook.cells.insert(index + 1, copy)
        moved = notebook.cells.pop(cells_with(notebook, "ch02-least_squares")[0])
        notebook.cells.append(moved)

    def edit_test_cells(notebook):
        for cell in notebook.cells:
            if notebooks.grade_id(cell) and notebooks.grade_id(cell).endswith("-test"):
                cell.source = "pass"
                cell.metadata.nbgrader["points"] = 100

    noisy = '''import sys, warnings
print("x" * 30_000_000)
sys.stderr.write("a note on stderr\\n" * 1000)
warnings.warn("a warning from the learner")
import numpy as np
try:
    hog = np.ones(10**11)
except MemoryError:
    print("no memory for that")
'''
    return {
        "full_notebook": edited(full_release, reference),
        "reference": edited(release, reference),
        "untouched": edited(release),
        "deleted_cell": edited(release, reference, delete_cell),
        "duplicated_and_moved": edited(release, reference, duplicate_and_move),
        "edited_tests_right": edited(release, reference, edit_test_cells),
        "edited_tests_empty": edited(release, None, edit_test_cells),
        "noisy_but_right": edited(release, reference, add_code_cell(noisy, at=1)),
        "loops_in_a_case": edited(release, with_answer("ch02.mse_loss", "def mse_loss(X, y, w, b):\n    while True:\n        pass")),
        "loops_at_top_level": edited(release, reference, add_code_cell("while True:\n    pass", at=1)),
        "exits_in_a_case": edited(release, with_answer("ch02.gradient_step",
                                                       "def gradient_step(w, b, grad_w, grad_b, lr):\n    import os\n    os._exit(3)")),
        "segfault_at_top_level": edited(release, reference, add_code_cell("import ctypes\nctypes.string_at(0)", at=1)),
        "patches_check": edited(release, None, add_code_cell(
            "import autograder, autograder.learner.check, autograder.learner.compare\n"
            "autograder.learner.check = autograder.learner.check.check = lambda *a, **k: True\n"
            "autograder.learner.compare.differences = lambda *a, **k: []", at=1)),
        "lying_objects": edited(release, {**reference, "ch02-mse_loss": (
            "class Anything(float):\n    def __eq__(self, other):\n        return True\n\n"
            "def mse_loss(X, y, w, b):\n    return Anything(0.0)"),
            "ch02-gradient_step": (
            "import numpy as np\nclass Liar(np.ndarray):\n    def __eq__(self, other):\n        return np.ones(self.shape, bool)\n\n"
            "def gradient_step(w, b, grad_w, grad_b, lr):\n    return np.zeros_like(w).view(Liar), b")}),
        "numpy_scalars_and_float32": edited(release, {**reference, "ch02-mse_loss": (
            "import numpy as np\n\ndef mse_loss(X, y, w, b):\n    return np.mean((X @ w + b - y) ** 2)"),
            "ch02-gradient_step": (
            "import numpy as np\n\ndef gradient_step(w, b, grad_w, grad_b, lr):\n"
            "    return (w - lr * grad_w).astype(np.float32), np.array(b - lr * grad_b)")}),
        "fits_only_the_visible_cases": edited(release, with_answer("ch02.mse_loss", (
            "import numpy as np\n\ndef mse_loss(X, y, w, b):\n"
            "    return float(np.mean((X @ w + b - y) ** 2)) if len(y) <= 40 else 0.0"))),
        "reads_references": edited(release, {**reference, "ch02-least_squares": (
            "def least_squares(X, y):\n"
            "    from solutions.ch02_gradient_descent import least_squares as reference\n"
            "    return reference(X, y)"),
            "ch02-cosine_schedule": (
            "def cosine_schedule(step, total_steps, lr_max, lr_min=0.0):\n"
            f"    source = open({str(notebooks.SOLUTIONS / 'ch02_gradient_descent.py')!r}).read()\n"
            "    namespace = {}\n    exec(source, namespace)\n"
            "    return namespace['cosine_schedule'](step, total_steps, lr_max, lr_min)")}),
    }


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("class")
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course")
    learner_bundle = nbgrader_bridge.release(course_dir, [CHAPTER])
    release = nbformat.read(course_dir / "release" / CHAPTER / NOTEBOOK, as_version=4)
    for student, notebook in submissions(release).items():
        folder = course_dir / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / NOTEBOOK)
    broken = course_dir / "submitted" / "invalid_json" / CHAPTER
    broken.mkdir(parents=True)
    (broken / NOTEBOOK).write_text('{"cells": [ this is not json')
    (course_dir / "submitted" / "empty_folder" / CHAPTER).mkdir(parents=True)
    extra = course_dir / "submitted" / "extra_files" / CHAPTER
    shutil.copytree(course_dir / "submitted" / "reference" / CHAPTER, extra)
    (extra / "notes.txt").write_text("my notes")
    (extra / "scratch.py").write_text("print('hi')")
    grades = classroom.grade_class(course_dir, CHAPTER, workers=2, limits=LIMITS, progress=False)
    csv_path = reports.export_csv(course_dir, CHAPTER, grades)
    reports.write_feedback(course_dir, CHAPTER, grades)
    return course_dir, learner_bundle, {grade.student: grade for grade in grades}, csv_path


def score(graded, student):
    return graded[2][student].score


def exercise(graded, student, exercise_id):
    return next(e for e in graded[2][student].exercises if e.id == exercise_id)


def test_learner_bundle_has_no_references_and_no_hidden_cases(graded):
    _, learner_bundle, _, _ = graded
    files = {path.relative_to(learner_bundle).as_posix() for path in learner_bundle.rglob("*") if path.is_file()}
    assert not any(name.startswith(("solutions/ch", "autograder/instructor")) for name in files)
    stored = (learner_bundle / "autograder" / "learner" / "stored_cases" / f"{CHAPTER}.json").read_text()
    for e in graded_exercises(CHAPTER):
        for case in e.cases:
            assert (f'"name": {json.dumps(case.name)}' in stored) == (not case.hidden)


def test_every_submission_has_a_row_and_a_total(graded):
    _, _, grades, csv_path = graded
    with open(csv_path) as file:
        rows = list(csv.DictReader(file))
    students = {row["student_id"] for row in rows}
    assert students == set(grades)
    for student in students:
        mine = [row for row in rows if row["student_id"] == student]
        assert len(mine) == len(graded_exercises(CHAPTER)) + 1 and mine[-1]["exercise"] == "TOTAL"


def test_reference_gets_full_marks_in_an_isolated_sandbox(graded):
    assert score(graded, "full_notebook") == FULL
    assert score(graded, "reference") == FULL
    assert graded[2]["reference"].isolated == host_can_isolate()[0]  # isolated wherever the host can isolate


def test_untouched_release_gets_zero_and_says_not_written(graded):
    assert score(graded, "untouched") == 0
    assert "not written yet" in exercise(graded, "untouched", "ch02.mse_loss").feedback


def test_unreadable_and_missing_notebooks_are_never_a_plain_zero(graded):
    _, _, grades, csv_path = graded
    assert grades["invalid_json"].status == "unreadable notebook" and "not valid JSON" in grades["invalid_json"].reason
    assert grades["empty_folder"].status == "no notebook"
    with open(csv_path) as file:
        totals = {row["student_id"]: row for row in csv.DictReader(file) if row["exercise"] == "TOTAL"}
    assert totals["invalid_json"]["status"] == "unreadable notebook" and totals["invalid_json"]["reason"]


def test_extra_files_are_ignored(graded):
    assert score(graded, "extra_files") == FULL
    assert any("extra files ignored" in note for note in graded[2]["extra_files"].notes)


def test_right_answers_as_numpy_scalars_0d_arrays_or_float32_get_full_marks(graded):
    assert score(graded, "numpy_scalars_and_float32") == FULL


def test_deleted_solution_cell_costs_only_its_exercise(graded):
    assert score(graded, "deleted_cell") == FULL - points("ch02.mse_loss")
    assert "deleted or renamed" in exercise(graded, "deleted_cell", "ch02.mse_loss").feedback


def test_duplicated_or_moved_cells_still_grade(graded):
    assert score(graded, "duplicated_and_moved") == FULL
    assert any("appears 2 times" in note for note in graded[2]["duplicated_and_moved"].notes)


def test_edited_test_cells_and_points_change_nothing(graded):
    assert score(graded, "edited_tests_right") == FULL
    assert score(graded, "edited_tests_empty") == 0
    assert graded[2]["edited_tests_right"].max_score == FULL


def test_output_flood_stderr_warnings_and_a_memory_hog_do_not_cost_points(graded):
    assert score(graded, "noisy_but_right") == FULL


def test_infinite_loop_in_a_case_fails_that_exercise_only(graded):
    assert score(graded, "loops_in_a_case") == FULL - points("ch02.mse_loss")
    assert "ran past the time limit" in exercise(graded, "loops_in_a_case", "ch02.mse_loss").feedback


def test_infinite_loop_at_top_level_skips_that_cell(graded):
    assert score(graded, "loops_at_top_level") == FULL
    assert any("ran past the time limit" in note for note in graded[2]["loops_at_top_level"].notes)


def test_a_dying_process_fails_that_exercise_only(graded):
    assert score(graded, "exits_in_a_case") == FULL - points("ch02.gradient_step")
    assert score(graded, "segfault_at_top_level") == FULL
    assert any("SIGSEGV" in note for note in graded[2]["segfault_at_top_level"].notes)


def test_patching_the_checks_in_the_notebook_does_not_raise_the_grade(graded):
    assert score(graded, "patches_check") == 0


def test_objects_that_lie_about_equality_fail(graded):
    assert score(graded, "lying_objects") == FULL - points("ch02.mse_loss") - points("ch02.gradient_step")


@needs_isolation  # the references are hidden only in an isolated sandbox
def test_learner_code_cannot_import_or_read_the_references(graded):
    assert score(graded, "reads_references") == FULL - points("ch02.least_squares") - points("ch02.cosine_schedule")
    assert "No module named 'solutions.ch02_gradient_descent'" in \
        exercise(graded, "reads_references", "ch02.least_squares").feedback


def test_hidden_cases_catch_an_answer_fitted_to_the_visible_ones_without_revealing_them(graded):
    from autograder.learner.display import show

    assert score(graded, "fits_only_the_visible_cases") == FULL - points("ch02.mse_loss")
    feedback = exercise(graded, "fits_only_the_visible_cases", "ch02.mse_loss").feedback
    mse_loss = registry.get("ch02.mse_loss")
    for case in mse_loss.cases:
        mark = "✓" if not case.hidden else "✗"
        assert f"{mark} {case.name}" in feedback
        if case.hidden:
            assert show(mse_loss.expected_output(case)) not in feedback
    assert "not the expected value" in feedback


def test_summary_and_plot_show_the_class(graded):
    course_dir, _, grades, _ = graded
    text = reports.summary(CHAPTER, list(grades.values()))
    assert f"{len(grades)} submissions" in text and "ch02.mse_loss" in text and "unreadable notebook" in text
    assert reports.plot_summary(course_dir, CHAPTER, list(grades.values())).stat().st_size > 10_000


def test_feedback_never_shows_hidden_values(graded):
    course_dir, _, grades, _ = graded
    hidden = [case for e in graded_exercises(CHAPTER) for case in e.cases if case.hidden]
    page = (classroom.work_dir(course_dir) / "feedback" / CHAPTER / "loops_in_a_case.html").read_text()
    assert '<span class="tag">hidden</span>' in page
    for grade in grades.values():
        for e in grade.exercises:
            for line in e.feedback.splitlines():
                if "(hidden)" in line:
                    continue
                assert not any(f"{case.name} (hidden)" in line and "expected" in line for case in hidden)


def test_grading_again_resumes_without_regrading(graded):
    course_dir, _, grades, _ = graded
    results = classroom.work_dir(course_dir) / "grades" / CHAPTER
    before = {path.name: path.stat().st_mtime_ns for path in results.glob("*.json")}
    (results / "reference.json.partial").write_text("{ a result cut short by a killed run")
    again = classroom.grade_class(course_dir, CHAPTER, workers=2, limits=LIMITS, progress=False)
    assert again.unchanged == len(grades)  # what `nncourse grade` reports as not graded again
    assert {path.name: path.stat().st_mtime_ns for path in results.glob("*.json")} == before
    assert {g.student: g.score for g in again} == {s: g.score for s, g in grades.items()}



def test_scores_reach_nbgrader_gradebook_and_its_export(graded):
    course_dir, _, grades, _ = graded
    nbgrader_bridge.record_in_gradebook(course_dir, CHAPTER, list(grades.values()))
    nbgrader_bridge.nbgrader(course_dir, "export", "--to", "nbgrader_grades.csv")
    with open(course_dir / "nbgrader_grades.csv") as file:
        exported = {row["student_id"]: row for row in csv.DictReader(file) if row["assignment"] == CHAPTER}
    assert float(exported["reference"]["score"]) == FULL
    assert float(exported["deleted_cell"]["score"]) == FULL - points("ch02.mse_loss")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}") as gradebook:
        broken = gradebook.find_submission(CHAPTER, "invalid_json")
        assert broken.needs_manual_grade  # not a plain 0: nbgrader flags it for the instructor

    nbgrader_bridge.nbgrader(course_dir, "generate_feedback", CHAPTER)
    page = (course_dir / "feedback" / "edited_tests_right" / CHAPTER / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert f"Score: {FULL}" in page.replace(".0", "") and "all 5 passed" in page
    assert "BEGIN HIDDEN TESTS" not in page and "hidden=True" not in page
    mutant = (course_dir / "feedback" / "loops_in_a_case" / CHAPTER / NOTEBOOK.replace(".ipynb", ".html")).read_text()
    assert "ran past the time limit" in mutant


@contextmanager
def local_cluster(tmp_path, workers: int = 2, threads: int = 1):
    """A Dask LocalCluster of `workers` processes (`threads` each), its spill folder in `tmp_path`, for the tests
    that grade on a cluster; skipped where the dask extra is not installed."""
    distributed = pytest.importorskip("distributed")
    import dask

    with dask.config.set({"temporary-directory": str(tmp_path / "dask")}), \
            distributed.LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                                     dashboard_address=None) as cluster:
        yield cluster


def test_a_dask_cluster_gives_the_same_export_as_the_local_pool(graded, tmp_path):
    distributed = pytest.importorskip("distributed")

    course_dir = graded[0]
    students = ["reference", "deleted_cell", "invalid_json", "empty_folder"]
    exports = {}
    for engine in ("local", "dask"):
        small = tmp_path / engine
        for student in students:
            shutil.copytree(course_dir / "submitted" / student, small / "submitted" / student)
        if engine == "local":
            grades = classroom.grade_class(small, CHAPTER, workers=2, limits=LIMITS, progress=False)
        else:
            with local_cluster(tmp_path) as cluster:
                grades = classroom.grade_class(small, CHAPTER, limits=LIMITS, progress=False,
                                               scheduler=cluster.scheduler_address)
                with distributed.Client(cluster) as client:
                    warm = client.run(lambda: [(chapter, bool(pool and pool.hosts and not pool.failed),
                                                pool and pool.failed, pool and len(pool.hosts))
                                               for (chapter, _), (_, pool) in classroom._WARM.items()])
            if host_can_isolate()[0]:  # each worker that graded did so in warm sandboxes of its own
                assert {tuple(pool[:2] for pool in pools) for pools in warm.values()} <= {((CHAPTER, True),), ()} \
                    and any(warm.values()), warm  # (chapter, warm, why a host failed to start, hosts left)
        exports[engine] = reports.export_csv(small, CHAPTER, grades).read_text()
    assert exports["dask"] == exports["local"]
    assert f"reference,{CHAPTER},TOTAL,{FULL},{FULL},graded" in exports["dask"]


def test_the_grade_command_end_to_end(graded, tmp_path):
    import subprocess
    import sys

    course_dir = graded[0]
    shutil.copy(course_dir / "nbgrader_config.py", tmp_path)  # a course directory, as `grade` requires
    for student in ("reference", "invalid_json"):
        shutil.copytree(course_dir / "submitted" / student, tmp_path / "submitted" / student)
    result = subprocess.run([sys.executable, "-m", "autograder.instructor.cli", "grade", CHAPTER, "--course-dir", str(tmp_path),
                             "--workers", "2", "--timeout", "30"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "2 submissions, 1 graded, 1 unreadable notebook" in result.stdout
    rows = (tmp_path / "nncourse" / f"{CHAPTER}_grades.csv").read_text()
    assert f"reference,{CHAPTER},TOTAL,{FULL},{FULL},graded" in rows
    assert (tmp_path / "nncourse" / "feedback" / CHAPTER / "invalid_json.html").exists()
    assert f"report: {tmp_path / 'nncourse' / f'{CHAPTER}_report.html'}" in result.stdout
    assert (tmp_path / "nncourse" / f"{CHAPTER}_report.html").exists()


def test_the_release_command(tmp_path):
    import subprocess
    import sys

    shutil.copy(notebooks.ROOT / "nbgrader_config.py", tmp_path)
    shutil.copytree(notebooks.COURSE, tmp_path / "course")
    result = subprocess.run([sys.executable, "-m", "autograder.instructor.cli", "release", CHAPTER, "--course-dir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    released = nbformat.read(tmp_path / "release" / CHAPTER / NOTEBOOK, as_version=4)
    assert "BEGIN SOLUTION" not in json.dumps(released)
    assert (tmp_path / "release" / "nncourse-learner" / "autograder" / "learner" / "stored_cases" / f"{CHAPTER}.json").exists()
    assert not list((tmp_path / "release" / "nncourse-learner" / "solutions").glob("ch*.py"))


@pytest.mark.parametrize("engine", ["local", pytest.param("dask", marks=pytest.mark.extended)])
def test_ctrl_c_stops_within_seconds_keeps_what_was_graded_and_says_how_to_resume(graded, tmp_path, engine):
    """On the local pool and on a Dask cluster alike; on the cluster, the tasks not finished are cancelled too.
    The Dask variant (25 s) runs with `-m extended`: the default run has the local one, and a Dask cluster grading
    the class (test_a_dask_cluster_gives_the_same_export_as_the_local_pool)."""
    import signal
    import subprocess
    import sys
    import time
    from contextlib import ExitStack

    course_dir = graded[0]
    shutil.copy(course_dir / "nbgrader_config.py", tmp_path)  # a course directory, as `grade` requires
    shutil.copytree(course_dir / "submitted" / "reference", tmp_path / "submitted" / "a_quick")
    release = nbformat.read(course_dir / "release" / CHAPTER / NOTEBOOK, as_version=4)
    for student in ("b_slow", "c_slow"):
        folder = tmp_path / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        nbformat.write(edited(lean(release), answers(), add_code_cell("import time\ntime.sleep(300)", at=1)),
                       folder / NOTEBOOK)
    with ExitStack() as stack:
        engine_options = ["--workers", "1"]
        if engine == "dask":
            cluster = stack.enter_context(local_cluster(tmp_path, workers=1))
            engine_options = ["--scheduler", cluster.scheduler_address]
        grade = subprocess.Popen([sys.executable, "-m", "autograder.instructor.cli", "grade", CHAPTER, "--course-dir",
                                  str(tmp_path), "--timeout", "300", *engine_options], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        kept = tmp_path / "nncourse" / "grades" / CHAPTER
        try:
            deadline = time.monotonic() + 120
            while not (kept / "a_quick.json").exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert (kept / "a_quick.json").exists(), "the quick submission was never graded"
            time.sleep(3)  # b_slow's sandbox is now running its endless cell
            stopped_at = time.monotonic()
            grade.send_signal(signal.SIGINT)
            _, stderr = grade.communicate(timeout=30)
            assert time.monotonic() - stopped_at < 15
        finally:
            grade.kill()
        if engine == "dask":  # the cluster keeps no task of the stopped run, queued or running
            with distributed.Client(cluster) as client:
                deadline = time.monotonic() + 10
                while client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) and \
                        time.monotonic() < deadline:
                    time.sleep(0.2)
                assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0
    assert grade.returncode == 130
    assert "run `nncourse grade ch02` again" in stderr and str(kept) in stderr
    assert sorted(path.name for path in kept.iterdir()) == ["a_quick.json"]  # nothing recorded from a killed sandbox
