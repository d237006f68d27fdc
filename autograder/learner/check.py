"""`check(exercise_id, fn)`: run a learner's function on an exercise's cases and say what is wrong.

    >>> from autograder import check
    >>> check("ch02.mse_loss", mse_loss)
    ch02.mse_loss: 3 cases
      ✓ two points, by hand
      ...
    True

It returns True only when every case passes and never raises because an answer is wrong: a
missing implementation, an exception in the learner's code, `None`, a wrong shape or dtype, NaN,
or an input changed in place each get a message of their own. When a known mistake explains every
failing case, the report names it and gives its hint.

A graded test cell calls `check(id, fn, graded=True)`: the same report, then, when a case fails,
an `ExerciseFailed` whose one line says which exercise and how many cases failed, so that
nbgrader, which scores a cell by whether it raises, gives the cell 0.
"""
from __future__ import annotations

from autograder.learner import registry
from autograder.learner.judge import CaseResult, run_cases

INDENT = "      "
KNOWN_MISTAKE = "This looks like a known mistake:"  # opens the report's closing line that names a mistake


class ExerciseFailed(AssertionError):
    """A graded check failed: `check(..., graded=True)` raises it after its report, so that nbgrader
    scores the cell 0. Its message alone says which exercise and how many cases failed."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines in place of a traceback: the report above already explains."""
        return [f"{type(self).__name__}: {self}"]


def check(exercise_id: str, fn, *, hidden: bool = False, verbose: bool = True, graded: bool = False) -> bool:
    """Compare `fn` with the reference of `exercise_id` on its visible cases (and hidden ones
    when `hidden=True`, as grading does). Prints one line per case; returns True iff all pass.

    With `graded=True` (the form of a graded test cell) a failure raises `ExerciseFailed` instead of
    returning False."""
    exercise = registry.get(exercise_id)
    results = run_cases(exercise, fn, hidden=hidden)
    if verbose:
        print(report(exercise, results))
    passed = all(result.passed for result in results)
    if graded and not passed:
        raise ExerciseFailed(failure_summary(exercise, results) + (" (details above)" if verbose else ""))
    return passed


def report(exercise: registry.Exercise, results: list[CaseResult]) -> str:
    """One line per case (✓ or ✗), each failure's explanation under it, a count, and the known
    mistake that explains the failures, when one does."""
    passed, total = sum(result.passed for result in results), _total(exercise, results)
    lines = [f"{exercise.id}: {total} case{'s' if total != 1 else ''}"]
    for result in results:
        lines.append(f"  {'✓' if result.passed else '✗'} {case_label(result.case.name, result.case.hidden)}")
        lines += [INDENT + line for line in explanation_lines(result)]
    lines.append("  " + count_line(exercise.id, passed, total, left_unwritten(results)))
    mistake = next((result.mistake for result in results if result.mistake), None)
    if mistake:
        lines.append(f"  {KNOWN_MISTAKE} {mistake.name}. {mistake.hint}")
    return "\n".join(lines)


def case_label(name: str, hidden: bool) -> str:
    """A case as the report names it: "two points, by hand", or "large batch (hidden)"."""
    return f"{name}{' (hidden)' if hidden else ''}"


def explanation_lines(result: CaseResult) -> list[str]:
    """The lines the report shows under a case, one per line of text (a hidden case's are free of its values)."""
    return [line for text in result.lines for line in text.splitlines()]


def left_unwritten(results: list[CaseResult]) -> bool:
    """Whether the report says the exercise is not written yet: its last case met the untouched stub."""
    return bool(results) and results[-1].not_written


def count_line(exercise_id: str, passed: int, total: int, not_written: bool) -> str:
    """The report's closing count: "3 of 5 passed.", "all 5 passed.", or that the exercise is not written yet."""
    if not_written:
        return f"{exercise_id} is not written yet."
    return f"all {total} passed." if passed == total else f"{passed} of {total} passed."


def failure_summary(exercise: registry.Exercise, results: list[CaseResult]) -> str:
    """One line: which exercise failed, and how many of its cases."""
    if left_unwritten(results):
        return f"{exercise.id} is not written yet"
    total = _total(exercise, results)
    return f"{exercise.id}: {total - sum(result.passed for result in results)} of {total} cases failed"


def _total(exercise: registry.Exercise, results: list[CaseResult]) -> int:
    """How many cases the results stand for: all of them when hidden ones were run, else the visible ones."""
    return len(exercise.cases) if any(r.case.hidden for r in results) else len(exercise.visible_cases())
