"""Run every mutant of an exercise through its check, and look for inputs that tell each survivor apart.

A mutant is killed when `check(id, mutant, hidden=True)` fails it, or when the check raises or runs
past the time limit (an endless loop is a kill). A mutant that passes survives; it is then run
beside the reference on the inputs of `inputs.perturbed_cases` (those the reference itself
handles), each judged as `check` judges a case (same driver, same comparison, same tolerance). The
first input on which they differ makes the survivor *not equivalent*: a case the exercise lacks.
When none does, the survivor is *probably equivalent* (`x * 2` for `x + x`).
"""
from __future__ import annotations

import contextlib
import signal
import time
import warnings
from dataclasses import dataclass

import numpy as np

from autograder.learner.check import check
from autograder.learner.judge import judge, run_here
from autograder.learner.registry import Case, Exercise
from benchmarks.mutation.inputs import perturbed_cases, summary
from benchmarks.mutation.mutants import Mutant, mutants_of

KILLED, EQUIVALENT, NOT_EQUIVALENT = "killed", "probably equivalent", "not equivalent"
TIME_LIMIT_S = 2.0  # per mutant's check, and per perturbed input


class TimeLimitReached(BaseException):
    """Raised by `time_limit` when time is up: a BaseException, so that `check`, which catches what the
    learner's code raises, lets it through and the whole check stops."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Interrupt the block with `TimeLimitReached` after `seconds` of wall time (SIGALRM: main thread only)."""
    def stop(signum, frame):
        raise TimeLimitReached()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def quietly():
    """No warnings printed, and numpy's floating-point errors silent, while mutants run."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@dataclass(frozen=True)
class MutantResult:
    """What became of one mutant: its status and, in `detail`, how it was killed, the input that tells it
    apart from the reference (not equivalent), or how many inputs were tried (probably equivalent)."""

    mutant: Mutant
    status: str
    detail: str


@dataclass(frozen=True)
class ExerciseResult:
    """Every mutant's result for one exercise, and the seconds the whole run took."""

    exercise_id: str
    results: tuple[MutantResult, ...]
    seconds: float

    def count(self, status: str) -> int:
        return sum(result.status == status for result in self.results)

    def with_status(self, status: str) -> list[MutantResult]:
        return [result for result in self.results if result.status == status]


def run_exercise(exercise: Exercise, *, sample: int | None = None, limit_s: float = TIME_LIMIT_S) -> ExerciseResult:
    """Generate the mutants of `exercise` (`sample` of them, evenly spread, when given) and classify each."""
    start = time.perf_counter()
    mutants = sampled(mutants_of(exercise.reference), sample)
    results = tuple(classify(exercise, mutant, limit_s) for mutant in mutants)
    return ExerciseResult(exercise.id, results, time.perf_counter() - start)


def sampled(mutants: list[Mutant], sample: int | None) -> list[Mutant]:
    """`sample` mutants spread evenly over the list (so over the lines), or all of them."""
    if sample is None or sample >= len(mutants):
        return mutants
    return [mutants[i * len(mutants) // sample] for i in range(sample)]


def classify(exercise: Exercise, mutant: Mutant, limit_s: float = TIME_LIMIT_S) -> MutantResult:
    """Killed, not equivalent or probably equivalent, with the detail `MutantResult` describes."""
    try:
        fn = mutant.build()
    except Exception as error:
        return MutantResult(mutant, KILLED, f"its definition raised {type(error).__name__}")
    why_killed = kill_reason(exercise, fn, limit_s)
    if why_killed:
        return MutantResult(mutant, KILLED, why_killed)
    found, tried = distinguishing_input(exercise, fn, limit_s)
    if found:
        return MutantResult(mutant, NOT_EQUIVALENT, found)
    return MutantResult(mutant, EQUIVALENT, f"the same as the reference on {tried} perturbed inputs")


def kill_reason(exercise: Exercise, fn, limit_s: float) -> str:
    """Why the exercise's check rejects `fn` ("" when it passes it)."""
    try:
        with time_limit(limit_s), quietly():
            passed = check(exercise.id, fn, hidden=True, verbose=False)
    except TimeLimitReached:
        return f"ran past the {limit_s:g} s limit"
    except Exception as error:
        return f"the check raised {type(error).__name__}"
    return "" if passed else "the check failed"


def distinguishing_input(exercise: Exercise, fn, limit_s: float) -> tuple[str, int]:
    """The first perturbed input on which `fn` and the reference differ, described ("" when none does),
    and how many inputs were tried (those on which the reference itself runs)."""
    tried = 0
    for case in perturbed_cases(exercise):
        if not reference_handles(exercise, case, limit_s):
            continue
        tried += 1
        try:
            with time_limit(limit_s), quietly():
                result = judge(exercise, case, run_here(exercise, fn, case.make_args()), case.make_args())
        except TimeLimitReached:
            return f"{case.name}: ran past the {limit_s:g} s limit; input {summary(case.make_args())}", tried
        if not result.passed:
            return f"{case.name}: {result.raised or result.lines[0]}; input {summary(case.make_args())}", tried
    return "", tried


def reference_handles(exercise: Exercise, case: Case, limit_s: float) -> bool:
    """Whether the reference runs on `case` without raising, within the time limit (else the input is left out)."""
    try:
        with time_limit(limit_s), quietly():
            exercise.expected_output(case)
    except (Exception, TimeLimitReached):
        return False
    return True


def mutation_score(results: list[ExerciseResult]) -> tuple[int, int]:
    """(killed, generated − probably equivalent) over `results`: the score is their ratio."""
    killed = sum(result.count(KILLED) for result in results)
    generated = sum(len(result.results) for result in results)
    return killed, generated - sum(result.count(EQUIVALENT) for result in results)
