"""Grading a whole class: every submission of a chapter, in parallel, resumable.

Layout, inside an nbgrader course directory (the exports, pages and figures that `reports.py`
writes from these results go under nncourse/ too):

    submitted/<student>/<chapter>/<notebook>.ipynb     what nbgrader collected (input)
    nncourse/bundle/                                    the learner's bundle the sandboxes run against
    nncourse/grades/<chapter>/<student>.json            one result per submission, written as it arrives

Only this process writes results (results.ResultStore, one whole file at a time), so an
interruption never leaves a half-written result; running `grade` again skips every submission
whose result is there and whose notebook has not changed since. nbgrader's release and gradebook
are nbgrader_bridge.py's.

Every submission is read by `intake.take`, once, into the `Submission` that is graded: on the local
pool, by the thread that grades it; for a Dask cluster, here, and the `Submission` travels with its task.
Both paths grade the same bytes and refuse the same things (a link, a notebook over the size limit)
with the same status and reason. A student is named as `intake.shown_name` shows their folder.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from pathlib import Path

from autograder.instructor import bundle, notebooks, sandbox
from autograder.instructor.errors import CourseError
from autograder.instructor.grading import grade_submission, warm_modules
from autograder.instructor.intake import Submission, shown_name, take
from autograder.instructor.results import ResultStore, Status, SubmissionGrade, ungraded
from autograder.learner.protocol import representable


def work_dir(course_dir: Path) -> Path:
    return course_dir / "nncourse"


def submissions(course_dir: Path, chapter: str) -> list[tuple[str, Path]]:
    """(student, folder) of every submission of `chapter`, the student named as `shown_name` shows their folder;
    a CourseError when the course has no such chapter. A student's folder or chapter folder that is a symbolic
    link is listed too, whatever it points to (or not), so that `take` refuses it in a row of its own."""
    notebooks.chapter_notebook(chapter)
    submitted = course_dir / "submitted"
    if not submitted.is_dir():
        return []
    return [(shown_name(folder.name), folder / chapter) for folder in sorted(submitted.iterdir())
            if folder.is_symlink() or (folder.is_dir() and os.path.lexists(folder / chapter))]


LIFT_SETTING = "allow_library_calls"  # c.NNCourse.allow_library_calls in nbgrader_config.py


def lifted_rules(course_dir: Path) -> frozenset[str]:
    """The exercises whose "write it without" rule (`Exercise.forbids`: `ch07.conv2d` without F.conv2d) the
    instructor lifted in the course's nbgrader_config.py:

        c.NNCourse.allow_library_calls = ["ch07.conv2d", "ch04.adam_step"]     # or ["all"]

    Grading then watches none of those calls, and a bundle released afterwards checks without them. A
    CourseError names a setting that is not a list of exercise ids, an id that is no exercise, or one whose
    exercise forbids nothing."""
    from traitlets.config.loader import ConfigFileNotFound, PyFileConfigLoader

    try:
        config = PyFileConfigLoader("nbgrader_config.py", path=str(course_dir)).load_config()
    except ConfigFileNotFound:
        return frozenset()
    wanted = config.NNCourse.get(LIFT_SETTING, [])
    where = f"c.NNCourse.{LIFT_SETTING} in {Path(course_dir) / 'nbgrader_config.py'}"
    if not isinstance(wanted, (list, tuple)) or not all(isinstance(item, str) for item in wanted):
        raise CourseError(f"{where} must be a list of exercise ids such as [\"ch07.conv2d\"] (or [\"all\"]), "
                          f"not {wanted!r}")
    from autograder.learner import registry

    if "all" in wanted:
        return frozenset(exercise.id for exercise in registry.all_exercises() if exercise.forbids)
    for exercise_id in wanted:
        try:
            exercise = registry.get(exercise_id)
        except KeyError as unknown:
            raise CourseError(f"{where}: {unknown.args[0]}") from None
        if not exercise.forbids:
            raise CourseError(f"{where}: {exercise_id} forbids no calls, so there is nothing to allow; the exercises "
                              f"that do: {', '.join(e.id for e in registry.all_exercises() if e.forbids)}")
    return frozenset(wanted)


def hidden_paths(course_dir: Path) -> list[Path]:
    """What a learner's code must not see: the course directory, the course's repository and its
    installed packages (the references). The sandbox keeps Python itself visible."""
    import autograder
    import solutions

    packages = [Path(package.__file__).resolve().parent for package in (autograder, solutions)]
    return [course_dir.resolve(), notebooks.ROOT, *packages]


class ClassGrades(list):
    """Every submission's grade, by student, and how many of them were kept from an earlier run (`unchanged`:
    their notebook had not changed since it was graded)."""

    def __init__(self, grades, unchanged: int = 0):
        super().__init__(grades)
        self.unchanged = unchanged


def grade_class(course_dir: Path, chapter: str, workers: int | None = None,
                limits: sandbox.Limits = sandbox.Limits(), regrade: bool = False, progress: bool = True,
                scheduler: str | None = None) -> ClassGrades:
    """Grade every submission of `chapter`; returns all results, earlier ones included.

    Each submission is an independent task: by default a local pool of `workers` runs them; with
    `scheduler` (a Dask scheduler's address, `tcp://host:8786`) the same tasks run on that cluster's
    workers, which need the course installed. Results are merged here, by the one writer."""
    course_dir = course_dir.resolve()
    found = submissions(course_dir, chapter)
    lifted = lifted_rules(course_dir)
    store = ResultStore(work_dir(course_dir) / "grades" / chapter)
    learner_bundle = bundle.build(work_dir(course_dir) / "bundle", chapters={chapter}, lifted=lifted)
    hide = hidden_paths(course_dir)
    grades, todo = _stored_and_pending(store, found, chapter, regrade)
    unchanged = len(grades)
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc=f"grading {chapter}", unit="submission", disable=not progress)
    with ExitStack() as stack:
        if scheduler:
            results = _on_dask(scheduler, todo, chapter, limits, lifted)
        else:
            if todo:  # a warm sandbox per worker: the chapter's imports paid once, not once per submission
                stack.enter_context(sandbox.prewarmed(learner_bundle, hide, warm_modules(chapter), limits))
            results = _on_threads(todo, chapter, learner_bundle, hide, limits, workers or os.cpu_count() or 1, lifted)
        for student, outcome in results:
            if isinstance(outcome, BaseException):  # the grader's fault, not the learner's: kept, never a silent 0
                grade = ungraded(student, chapter, Status.GRADER_ERROR,
                                 representable(f"{type(outcome).__name__}: {outcome}"))
            else:
                grade = outcome
            store.put(grade)
            grades[student] = grade
            bar.update()
    bar.close()
    return ClassGrades([grades[student] for student in sorted(grades)], unchanged)


def _stored_and_pending(store: ResultStore, found: list[tuple[str, Path]], chapter: str,
                        regrade: bool) -> tuple[dict[str, SubmissionGrade], list[tuple[str, Path]]]:
    """The grades stored for submissions whose notebook has not changed since (none with `regrade`), by
    student, and the (student, folder) of the others, to grade. A submission is the same when `take` reads
    the same bytes (the SHA-256 grading stores), or refuses it again."""
    grades, todo = {}, []
    for student, folder in found:
        stored = None if regrade else store.get(student, take(folder, chapter).sha256)
        if stored is not None:
            grades[student] = stored
        else:
            todo.append((student, folder))
    return grades, todo


def _on_threads(todo, chapter, learner_bundle, hide, limits, workers, lifted=frozenset()):
    """The embedded engine: a local pool; each thread waits on one sandbox process at a time.

    When the caller stops early (Ctrl-C), queued submissions are cancelled and running sandboxes
    killed at once; their results are never recorded, so the next run grades them again."""
    sandbox.allow_runs()
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(_take_and_grade, folder, student, chapter, learner_bundle, hide, limits, lifted): student
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


def _take_and_grade(folder: Path, student: str, chapter: str, learner_bundle: Path, hide: list[Path],
                    limits: sandbox.Limits, lifted: frozenset[str] = frozenset()) -> SubmissionGrade:
    """One submission on the local pool: read by this thread, then graded."""
    return grade_submission(take(folder, chapter), student, chapter, learner_bundle, hide, limits, lifted)


def grade_on_worker(student: str, chapter: str, submission: Submission, limits: sandbox.Limits,
                    lifted: frozenset[str] = frozenset()) -> dict:
    """One submission, as `take` read it on the instructor's machine, graded wherever this runs (a Dask
    worker): its own bundle, its own sandbox; nothing of the submission is written on the worker."""
    learner_bundle = _worker_bundle(chapter, limits)
    grade = grade_submission(submission, student, chapter, learner_bundle, hidden_paths(learner_bundle.parent), limits,
                             lifted)
    return grade.to_json()


_BUNDLES: dict[str, Path] = {}
_WARM: dict[tuple[str, sandbox.Limits], tuple[ExitStack, sandbox.WarmPool | None]] = {}


def _worker_root() -> str:
    """Where this worker keeps its files: its Dask local directory, which Dask removes when the worker closes
    and clears at the next start after one was killed; elsewhere the system's temporary folder."""
    try:
        from distributed import get_worker

        return get_worker().local_directory
    except (ImportError, ValueError):  # not on a Dask worker
        return tempfile.gettempdir()


def _worker_bundle(chapter: str, limits: sandbox.Limits) -> Path:
    """This worker's bundle of `chapter`, built once, and its warm sandboxes for these limits (as the local
    pool has them), kept for the worker's life: when the worker ends, so do the hosts and the bundle's folder."""
    if chapter not in _BUNDLES:
        folder = tempfile.mkdtemp(prefix="nncourse-bundle-", dir=_worker_root())
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _BUNDLES[chapter] = bundle.build(Path(folder) / "bundle", {chapter})
    if (chapter, limits) not in _WARM:
        learner_bundle, kept = _BUNDLES[chapter], ExitStack()
        atexit.register(kept.close)
        pool = kept.enter_context(sandbox.prewarmed(learner_bundle, hidden_paths(learner_bundle.parent),
                                                    warm_modules(chapter), limits))
        _WARM[(chapter, limits)] = kept, pool
    return _BUNDLES[chapter]


def _on_dask(scheduler: str, todo, chapter, limits, lifted=frozenset()):
    """The same tasks on a Dask cluster: each submission, read here by `take`, travels with its task (its
    notebook whole, whatever its size under the limit), and each worker grades in warm sandboxes of its own
    (`_worker_bundle`). When the caller stops early (Ctrl-C), every task not finished is cancelled at once; a
    task already running on a worker ends at its sandbox's time limit, and its result is never recorded, so
    the next run grades it again."""
    from distributed import Client, as_completed as completed

    with Client(scheduler) as client:
        futures = {client.submit(grade_on_worker, student, chapter, take(folder, chapter), limits, lifted,
                                 pure=False): student
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


