"""Grading a whole class: every submission of a chapter, in parallel, resumable.

Layout, inside an nbgrader course directory (the exports, pages and figures that `reports.py`
writes from these results go under nncourse/ too):

    submitted/<student>/<chapter>/<notebook>.ipynb     what nbgrader collected (input)
    nncourse/bundle/                                    the learner's bundle the sandboxes run against
    nncourse/grades/<chapter>/<student>.json            one result per submission, written as it arrives

Only this process writes results, one whole file at a time (written aside, then renamed), so an
interruption never leaves a half-written result; running `grade` again skips every submission
whose result is there and whose notebook has not changed since.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from pathlib import Path

from autograder.instructor import bundle, notebooks, sandbox
from autograder.instructor.errors import CourseError
from autograder.learner import registry
from autograder.instructor.grading import (Status, SubmissionGrade, find_notebook, grade_submission, notebook_sha256, ungraded,
                                warm_modules)


def work_dir(course_dir: Path) -> Path:
    return course_dir / "nncourse"


def submissions(course_dir: Path, chapter: str) -> list[tuple[str, Path]]:
    submitted = course_dir / "submitted"
    if not submitted.is_dir():
        return []
    return [(folder.name, folder / chapter) for folder in sorted(submitted.iterdir())
            if folder.is_dir() and (folder / chapter).exists()]


def hidden_paths(course_dir: Path) -> list[Path]:
    """What a learner's code must not see: the course directory, the course's repository and its
    installed packages (the references). The sandbox keeps Python itself visible."""
    import autograder
    import solutions

    packages = [Path(package.__file__).resolve().parent for package in (autograder, solutions)]
    return [course_dir.resolve(), notebooks.ROOT, *packages]


def _write_result(path: Path, grade: SubmissionGrade) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    aside = path.with_suffix(".json.partial")
    aside.write_text(json.dumps(grade.to_json(), indent=1))
    os.replace(aside, path)


def _current(path: Path, folder: Path) -> SubmissionGrade | None:
    """The stored result for a submission, if its notebook has not changed since it was graded."""
    if not path.exists():
        return None
    try:
        grade = SubmissionGrade.from_json(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError):
        return None
    return grade if grade.notebook_sha256 == notebook_sha256(find_notebook(folder, grade.chapter)[0]) else None


def grade_class(course_dir: Path, chapter: str, workers: int | None = None,
                limits: sandbox.Limits = sandbox.Limits(), regrade: bool = False, progress: bool = True,
                scheduler: str | None = None) -> list[SubmissionGrade]:
    """Grade every submission of `chapter`; returns all results, earlier ones included.

    Each submission is an independent task: by default a local pool of `workers` runs them; with
    `scheduler` (a Dask scheduler's address, `tcp://host:8786`) the same tasks run on that cluster's
    workers, which need the course installed. Results are merged here, by the one writer."""
    course_dir = course_dir.resolve()
    results_dir = work_dir(course_dir) / "grades" / chapter
    learner_bundle = bundle.build(work_dir(course_dir) / "bundle", chapters={chapter})
    hide = hidden_paths(course_dir)
    grades, todo = {}, []
    for student, folder in submissions(course_dir, chapter):
        stored = None if regrade else _current(results_dir / f"{student}.json", folder)
        if stored is not None:
            grades[student] = stored
        else:
            todo.append((student, folder))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"grading {chapter}", unit="submission", disable=not progress)
    with ExitStack() as stack:
        if scheduler:
            results = _on_dask(scheduler, todo, chapter, limits)
        else:
            if todo:  # a warm sandbox per worker: the chapter's imports paid once, not once per submission
                stack.enter_context(sandbox.prewarmed(learner_bundle, hide, warm_modules(chapter), limits))
            results = _on_threads(todo, chapter, learner_bundle, hide, limits, workers or os.cpu_count() or 1)
        for student, outcome in results:
            if isinstance(outcome, BaseException):  # the grader's fault, not the learner's: kept, never a silent 0
                grade = ungraded(student, chapter, Status.GRADER_ERROR, f"{type(outcome).__name__}: {outcome}")
            else:
                grade = outcome
            _write_result(results_dir / f"{student}.json", grade)
            grades[student] = grade
            bar.update()
    bar.close()
    return [grades[student] for student in sorted(grades)]


def _on_threads(todo, chapter, learner_bundle, hide, limits, workers):
    """The embedded engine: a local pool; each thread waits on one sandbox process at a time.

    When the caller stops early (Ctrl-C), queued submissions are cancelled and running sandboxes
    killed at once; their results are never recorded, so the next run grades them again."""
    sandbox.allow_runs()
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(grade_submission, folder, student, chapter, learner_bundle, hide, limits): student
               for student, folder in todo}
    finished = False
    try:
        for future in as_completed(futures):
            error = future.exception()
            yield futures[future], error if error is not None else future.result()
        finished = True
    finally:
        if not finished:
            sandbox.stop_all()
        pool.shutdown(wait=True, cancel_futures=True)


MAX_SENT_BYTES = 50 * 2**20


def submission_files(folder: Path) -> dict[str, bytes]:
    """The submission's files, for a grader on another machine (each at most 50 MiB)."""
    if not folder.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())
            if path.is_file() and path.stat().st_size <= MAX_SENT_BYTES}


def grade_files(student: str, chapter: str, files: dict[str, bytes], limits: sandbox.Limits) -> dict:
    """One submission, graded wherever this runs (a Dask worker): its own bundle, its own sandbox."""
    with tempfile.TemporaryDirectory(prefix="nncourse-submission-") as folder:
        for name, data in files.items():
            (Path(folder) / Path(name).name).write_bytes(data)
        learner_bundle = _worker_bundle(chapter, limits)
        grade = grade_submission(Path(folder), student, chapter, learner_bundle,
                                 hidden_paths(learner_bundle.parent), limits)
    return grade.to_json()


_BUNDLES: dict[str, Path] = {}
_WARM: dict[tuple[str, sandbox.Limits], tuple[ExitStack, sandbox.WarmPool | None]] = {}


def _worker_bundle(chapter: str, limits: sandbox.Limits) -> Path:
    """This worker's bundle of `chapter`, built once, and its warm sandboxes for these limits (as the local
    pool has them), kept for the worker's life: their hosts end with the worker's process."""
    if chapter not in _BUNDLES:
        _BUNDLES[chapter] = bundle.build(Path(tempfile.mkdtemp(prefix="nncourse-bundle-")) / "bundle", {chapter})
    if (chapter, limits) not in _WARM:
        learner_bundle, kept = _BUNDLES[chapter], ExitStack()
        pool = kept.enter_context(sandbox.prewarmed(learner_bundle, hidden_paths(learner_bundle.parent),
                                                    warm_modules(chapter), limits))
        _WARM[(chapter, limits)] = kept, pool
    return _BUNDLES[chapter]


def _on_dask(scheduler: str, todo, chapter, limits):
    """The same tasks on a Dask cluster: each submission's files travel with its task, and each worker grades
    in warm sandboxes of its own (`_worker_bundle`). When the caller stops early (Ctrl-C), every task not
    finished is cancelled at once; a task already running on a worker ends at its sandbox's time limit,
    and its result is never recorded, so the next run grades it again."""
    from distributed import Client, as_completed as completed

    with Client(scheduler) as client:
        futures = {client.submit(grade_files, student, chapter, submission_files(folder), limits, pure=False): student
                   for student, folder in todo}
        finished = False
        try:
            for future in completed(futures):
                student = futures[future]
                if future.status == "error":
                    yield student, future.exception()
                else:
                    yield student, SubmissionGrade.from_json(future.result())
            finished = True
        finally:
            if not finished:
                client.cancel(list(futures))


def record_in_gradebook(course_dir: Path, chapter: str, grades: list[SubmissionGrade]) -> int:
    """Write the scores into nbgrader's gradebook, so that `nbgrader export` and the formgrader show them.

    Needs the chapter in the gradebook (`nncourse release` puts it there). A submission that could
    not be graded gets no automatic score, which nbgrader shows as needing manual grading rather
    than as 0. This process is the gradebook's only writer. Each submission is its own transaction:
    one that fails to be recorded (it is named on stderr) keeps its earlier entry and costs no other
    learner theirs. Returns the number of submissions recorded."""
    from nbgrader.api import Gradebook, MissingEntry
    from sqlalchemy.exc import SAWarning

    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course_dir.resolve() / 'gradebook.db'}") as gradebook:
        warnings.simplefilter("ignore", category=SAWarning)  # nbgrader's own, raised as it adds a submission
        try:
            gradebook.find_assignment(chapter)
        except MissingEntry:
            raise CourseError(f"{chapter} is not in {course_dir / 'gradebook.db'}: run `nncourse release {chapter}` "
                               "(or nbgrader generate_assignment) in the course directory first") from None
        recorded = 0
        for grade in grades:
            try:
                _record_submission(gradebook, course_dir, chapter, grade)
                gradebook.db.commit()
                recorded += 1
            except Exception as error:  # whatever one submission's entry or notebook raises, the others go on
                gradebook.db.rollback()
                print(f"nncourse: {grade.student} was not recorded in the gradebook ({type(error).__name__}: "
                      f"{str(error)[:300]})", file=sys.stderr)
    return recorded


def _record_submission(gradebook, course_dir: Path, chapter: str, grade: SubmissionGrade) -> None:
    """One submission's entry: its scores, or, when it could not be graded, none and a flag for manual grading;
    and for a graded one, its autograded notebook."""
    from nbgrader.api import MissingEntry

    gradebook.update_or_create_student(grade.student)
    try:
        gradebook.remove_submission(chapter, grade.student)
    except MissingEntry:
        pass
    gradebook.add_submission(chapter, grade.student)
    graded = grade.status == Status.GRADED
    for exercise in grade.exercises:
        cell = gradebook.find_grade(f"{registry.grade_id_of(exercise.id)}-test",
                                    notebooks.chapter_notebook(chapter).stem, chapter, grade.student)
        cell.auto_score = exercise.score if graded else None
        cell.needs_manual_grade = not graded
    if graded:
        write_autograded(course_dir, chapter, grade)


def write_autograded(course_dir: Path, chapter: str, grade: SubmissionGrade) -> Path:
    """nbgrader's autograded/<student>/<chapter>/ copy of a graded submission, for the formgrader and
    `nbgrader generate_feedback`: the learner's notebook, each test cell back to its released
    source (learners may have edited theirs) and showing our feedback for its exercise as output."""
    import nbformat

    path, _ = find_notebook(course_dir / "submitted" / grade.student / chapter, chapter)
    submitted = nbformat.read(path, as_version=4)
    released_path = course_dir / "release" / chapter / notebooks.chapter_notebook(chapter).name
    released = notebooks.cells_by_grade_id(nbformat.read(released_path, as_version=4)) if released_path.exists() else {}
    feedback = {f"{registry.grade_id_of(e.id)}-test": e.feedback for e in grade.exercises}
    for cell in submitted.cells:
        gid = notebooks.grade_id(cell)
        if gid in feedback:
            if gid in released:
                cell.source, cell.metadata = released[gid].source, released[gid].metadata
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=feedback[gid])]
    destination = course_dir / "autograded" / grade.student / chapter / notebooks.chapter_notebook(chapter).name
    destination.parent.mkdir(parents=True, exist_ok=True)
    aside = destination.with_suffix(".ipynb.partial")
    nbformat.write(submitted, aside)
    os.replace(aside, destination)
    return destination


def nbgrader(course_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run an nbgrader command in the course directory (its alembic migrations need our bin on PATH).

    With check=False a non-zero exit is returned, not raised: `nbgrader autograde` exits 1 when it
    skips a malformed notebook, though it graded the others."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, env=env,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def release(course_dir: Path, chapters: list[str]) -> Path:
    """nbgrader's learner versions of `chapters` in release/, and the learner's bundle beside them."""
    for chapter in chapters:
        nbgrader(course_dir, "generate_assignment", chapter, "--force")
    return bundle.build(course_dir / "release" / "nncourse-learner", chapters=set(chapters))
