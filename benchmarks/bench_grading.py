"""Grading throughput: `nncourse grade` against plain sequential `nbgrader autograde`, same classes, same run.

Two classes of N submissions of chapter 02 each (N=60 unless NNCOURSE_BENCH_SUBMISSIONS says otherwise):
- mixed: half right, a quarter with one known mistake, a quarter broken (the release handed in
  untouched, a notebook that is not JSON, a function deleted);
- all right: every submission the release filled with the references (issue 10's class).
Both graders start from the same course directory; nbgrader runs each notebook's own test cells in a
Jupyter kernel, one submission after another; `nncourse grade` runs one sandbox per submission and
grading stage, as many at once as there are cores, each forked from a warm host per worker, with the
notebook's demonstration cells left out. The notes break one submission's time down: a cold sandbox's
start-up, the notebook's imports, all its cells, its cells without the demonstrations, and the whole
grade of one submission cold and warm.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from autograder.instructor import bundle, classroom, demos, grading, intake, nbgrader_bridge, notebooks, results, sandbox
from autograder.learner import registry
from benchmarks.harness import Comparison

CHAPTER = "ch02"
MISTAKE = ("ch02.mse_gradient", "def mse_gradient(X, y, w, b):\n    r = y - (X @ w + b)\n"
                                "    return 2 / len(y) * (X.T @ r), 2 / len(y) * r.sum()\n")


def make_class(course_dir: Path, count: int, kinds=("right", "right", "mistake", "broken")) -> None:
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course")
    nbgrader_bridge.release(course_dir, [CHAPTER])
    name = notebooks.chapter_notebook(CHAPTER).name
    release = nbformat.read(course_dir / "release" / CHAPTER / name, as_version=4)
    source = nbformat.read(notebooks.chapter_notebook(CHAPTER), as_version=4)
    answers = {gid: cell.source for gid, cell in notebooks.cells_by_grade_id(source).items()
               if cell.metadata.nbgrader.get("solution")}
    for number in range(count):
        kind = kinds[number % len(kinds)]
        folder = course_dir / "submitted" / f"learner{number:03d}" / CHAPTER
        folder.mkdir(parents=True)
        if kind == "broken" and number % 3 == 0:
            (folder / name).write_text('{"cells": [')
            continue
        notebook = nbformat.from_dict(release)
        sources = dict(answers)
        if kind == "mistake":
            sources[registry.grade_id_of(MISTAKE[0])] = MISTAKE[1]
        if kind == "broken":
            sources = {} if number % 3 == 1 else {k: v for k, v in answers.items() if not k.endswith("mse_loss")}
        for cell in notebook.cells:
            if notebooks.grade_id(cell) in sources:
                cell.source = sources[notebooks.grade_id(cell)]
        nbformat.write(notebook, folder / name)


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sandbox_breakdown(course_dir: Path) -> str:
    """Seconds of one right submission: a cold sandbox's start-up, plus the imports cell, plus all cells, plus
    the cells grading runs (no demonstrations); one whole grade cold and warm (both stages)."""
    learner_bundle = bundle.build(course_dir / "nncourse" / "breakdown-bundle", {CHAPTER})
    hide = classroom.hidden_paths(course_dir)
    path = course_dir / "submitted" / "learner000" / CHAPTER / notebooks.chapter_notebook(CHAPTER).name
    cells, _ = intake.learner_cells(intake.read_cells(path.read_bytes()), CHAPTER)
    imports = [cell for cell in cells if "from autograder import check" in cell["source"]]
    skipped = demos.cells_to_skip(cells, CHAPTER, grading.exercise_names(CHAPTER))
    graded = [cell for cell in cells if cell["index"] not in skipped]
    timings = {}
    for label, job in [("start-up", {"cells": []}),
                       ("imports", {"cells": imports}),
                       ("all cells", {"cells": cells}),
                       ("graded cells", {"cells": graded})]:
        timings[label] = sandbox.run(job, learner_bundle, sandbox.Limits(), hide).seconds
    grade = lambda: grading.grade_submission(intake.take(path.parent, CHAPTER), "learner000", CHAPTER, learner_bundle, hide)  # noqa: E731
    cold = _seconds(grade)
    with sandbox.prewarmed(learner_bundle, hide, grading.warm_modules(CHAPTER)):
        host = _seconds(lambda: sandbox.run({"cells": []}, learner_bundle, sandbox.Limits(), hide))
        warm_start = _seconds(lambda: sandbox.run({"cells": []}, learner_bundle, sandbox.Limits(),
                                                  hide))
        warm = min(_seconds(grade) for _ in range(3))
    stages = len(grading.grading_stages(results.graded_exercises(CHAPTER)))
    return (f"one right submission, cold sandbox: start-up {timings['start-up']:.2f} s, with the notebook's imports "
            f"{timings['imports']:.2f} s, with all {len(cells)} cells {timings['all cells']:.2f} s, with the "
            f"{len(graded)} cells grading runs (demonstrations left out) {timings['graded cells']:.2f} s; graded whole "
            f"({stages} stages, cells + every case + judging) cold {cold:.2f} s. Warm: a host starts and imports in "
            f"{host:.2f} s once per worker, then a job's fork starts in {warm_start:.3f} s and a whole grade takes "
            f"{warm:.2f} s")


def _grade(course_dir: Path, count: int) -> tuple[float, float, set]:
    nbgrader_seconds = _seconds(lambda: nbgrader_bridge.nbgrader(course_dir, "autograde", CHAPTER, "--create", check=False))
    start = time.perf_counter()
    grades = classroom.grade_class(course_dir, CHAPTER, progress=False)
    ours_seconds = time.perf_counter() - start
    return ours_seconds, nbgrader_seconds, {(grade.status, grade.score == grade.max_score) for grade in grades}


def run():
    count = int(os.environ.get("NNCOURSE_BENCH_SUBMISSIONS", "60"))
    comparisons = []
    for label, kinds in [("mixed", ("right", "right", "mistake", "broken")), ("all right", ("right",))]:
        with tempfile.TemporaryDirectory(prefix="nncourse-bench-") as tmp:
            course_dir = Path(tmp)
            make_class(course_dir, count, kinds)
            ours, peer, outcomes = _grade(course_dir, count)
            note = (f"{count} submissions; {os.cpu_count()} workers: {60 * count / ours:.1f} submissions/min against "
                    f"nbgrader's {60 * count / peer:.1f}; {peer / ours:.1f}x nbgrader's speed")
            if label == "all right":
                assert outcomes == {("graded", True)}, outcomes  # every one full marks, or the figure means nothing
                note += f". {sandbox_breakdown(course_dir)}"
            comparisons.append(Comparison(f"grade {count} {label} submissions of {CHAPTER}", "nncourse grade",
                                          "nbgrader autograde", ours, peer, note))
    return comparisons
