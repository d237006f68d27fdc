"""Grading throughput: `nncourse grade` against plain sequential `nbgrader autograde`, same class, same run.

The class: N submissions of chapter 02 (N=60 unless NNCOURSE_BENCH_SUBMISSIONS says otherwise), a
realistic mix: half right, a quarter with one known mistake, a quarter broken (the release handed
in untouched, a notebook that is not JSON, a function deleted). Both graders start from the same
course directory; nbgrader runs each notebook's own test cells in a Jupyter kernel, one submission
after another; `nncourse grade` runs one sandbox per submission, as many at once as there are
cores. The notes break one sandbox's time down into start-up, the notebook's cells and the cases.
"""
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from autograder import bundle, classroom, grading, notebooks, registry, sandbox
from benchmarks.harness import Comparison

CHAPTER = "ch02"
MISTAKE = ("ch02.mse_gradient", "def mse_gradient(X, y, w, b):\n    r = y - (X @ w + b)\n"
                                "    return 2 / len(y) * (X.T @ r), 2 / len(y) * r.sum()\n")


def make_class(course_dir: Path, count: int) -> None:
    shutil.copy(notebooks.ROOT / "nbgrader_config.py", course_dir)
    shutil.copytree(notebooks.COURSE, course_dir / "course")
    classroom.release(course_dir, [CHAPTER])
    name = notebooks.chapter_notebook(CHAPTER).name
    release = nbformat.read(course_dir / "release" / CHAPTER / name, as_version=4)
    source = nbformat.read(notebooks.chapter_notebook(CHAPTER), as_version=4)
    answers = {gid: cell.source for gid, cell in notebooks.cells_by_grade_id(source).items()
               if cell.metadata.nbgrader.get("solution")}
    for number in range(count):
        kind = ("right", "right", "mistake", "broken")[number % 4]
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


def sandbox_breakdown(course_dir: Path) -> str:
    """Seconds of one right submission's sandbox: start-up alone, plus the cells, plus the cases."""
    learner_bundle = bundle.build(course_dir / "nncourse" / "breakdown-bundle", {CHAPTER})
    hide = classroom.hidden_paths(course_dir)
    path = course_dir / "submitted" / "learner000" / CHAPTER / notebooks.chapter_notebook(CHAPTER).name
    cells, _ = grading.learner_cells(grading.read_cells(path), CHAPTER)
    imports = [cell for cell in cells if "from autograder import check" in cell["source"]]
    timings = {}
    for label, job in [("start-up", {"cells": [], "exercises": []}),
                       ("start-up + imports cell", {"cells": imports, "exercises": []}),
                       ("start-up + all cells", {"cells": cells, "exercises": []})]:
        timings[label] = sandbox.run(job, learner_bundle, sandbox.Limits(), hide).seconds
    whole = grading.grade_submission(path.parent, "learner000", CHAPTER, learner_bundle, hide).seconds
    return (f"one right submission: interpreter start-up {timings['start-up']:.1f} s, with the notebook's imports "
            f"{timings['start-up + imports cell']:.1f} s, with all its cells {timings['start-up + all cells']:.1f} s, "
            f"graded whole (cells + every case + judging) {whole:.1f} s")


def run():
    count = int(os.environ.get("NNCOURSE_BENCH_SUBMISSIONS", "60"))
    with tempfile.TemporaryDirectory(prefix="nncourse-bench-") as tmp:
        course_dir = Path(tmp)
        make_class(course_dir, count)
        start = time.perf_counter()
        classroom.nbgrader(course_dir, "autograde", CHAPTER, "--create", check=False)
        nbgrader_seconds = time.perf_counter() - start
        start = time.perf_counter()
        grades = classroom.grade_class(course_dir, CHAPTER, progress=False)
        ours_seconds = time.perf_counter() - start
        statuses = {grade.status for grade in grades}
        note = (f"{count} submissions ({', '.join(sorted(statuses))}); {os.cpu_count()} workers: "
                f"{60 * count / ours_seconds:.1f} submissions/min against nbgrader's "
                f"{60 * count / nbgrader_seconds:.1f}. {sandbox_breakdown(course_dir)}")
    return [Comparison(f"grade {count} submissions of {CHAPTER}", "nncourse grade", "nbgrader autograde",
                       ours_seconds, nbgrader_seconds, note)]
