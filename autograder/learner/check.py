"""`check(exercise_id, fn)`: run a learner's function on an exercise's cases and say what is wrong.

    >>> from autograder import check
    >>> check("ch02.mse_loss", mse_loss)
    ch02.mse_loss: 3 cases
      ✓ two points, by hand
      ...
    True

It returns True only when every case passes and never raises because an answer is wrong: a
missing implementation, an exception in the learner's code, `None`, a wrong shape or dtype, NaN,
or an input changed in place each get a message of their own. A failing report opens with its
verdict, and with the known mistake that explains every failing case, when one does, and its hint;
the first failing case follows in full (inputs, expected beside got), the others in short
(`full=True` shows each in full).

A graded test cell calls `check(id, fn, graded=True)`: the same report, then, when a case fails,
an `ExerciseFailed` whose one line says which exercise, how many cases failed and the known
mistake, so that nbgrader, which scores a cell by whether it raises, gives the cell 0.
"""
from __future__ import annotations

import textwrap

from autograder.learner import forbidden, registry
from autograder.learner.judge import CaseResult, run_cases

INDENT = "      "
KNOWN_MISTAKE = "This looks like a known mistake:"  # opens the report's line that names a mistake
HINT_WIDTH = 100  # a known mistake's hint wraps between words at this width, under the line that names it


class ExerciseFailed(AssertionError):
    """A graded check failed: `check(..., graded=True)` raises it after its report, so that nbgrader
    scores the cell 0. Its message alone says which exercise and how many cases failed."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines in place of a traceback: the report above already explains."""
        return [f"{type(self).__name__}: {self}"]


def check(exercise_id: str, fn, *, hidden: bool = False, verbose: bool = True, graded: bool = False,
          full: bool = False) -> bool:
    """Compare `fn` with the reference of `exercise_id` on its visible cases (and hidden ones
    when `hidden=True`, as grading does). Prints one line per case; returns True iff all pass.

    With `graded=True` (the form of a graded test cell) a failure raises `ExerciseFailed` instead of
    returning False. With `full=True` every failing case is explained in full, not only the first."""
    exercise = registry.get(exercise_id)
    results = run_cases(exercise, fn, hidden=hidden)
    if verbose:
        print(report(exercise, results, full=full))
    passed = all(result.passed for result in results)
    if graded and not passed:
        raise ExerciseFailed(failure_summary(exercise, results) + (" (details above)" if verbose else ""))
    return passed


def report(exercise: registry.Exercise, results: list[CaseResult], *, full: bool = False) -> str:
    """One line per case (✓ or ✗) and a closing count; when a case failed, the verdict and the known mistake
    that explains the failures (when one does) come first, right under the exercise's name, the first case of
    each kind of failure (`failure_kind`) is explained in full and the others in one line each (each in full
    with `full=True`). Values are shown cut to a line (by the judge), and the hint wraps between words, so that
    no number is broken across lines."""
    passed, total = sum(result.passed for result in results), _total(exercise, results)
    count = count_line(exercise.id, passed, total, left_unwritten(results))
    lines = [f"{exercise.id}: {total} case{'s' if total != 1 else ''}"]
    mistake = next((result.mistake for result in results if result.mistake), None)
    if passed < len(results) and not left_unwritten(results):
        lines.append(f"  {count}" + (f" {KNOWN_MISTAKE} {mistake.name}." if mistake else ""))
        said = mistake.hint if mistake else (forbidden.describe(called) if (called := forbidden_call(results)) else "")
        lines += textwrap.wrap(said, HINT_WIDTH, initial_indent="    ", subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    in_full = {id(next(r for r in results if not r.passed and failure_kind(r) == kind))
               for kind in {failure_kind(r) for r in results if not r.passed}}
    shortened = False
    for result in results:
        lines.append(f"  {'✓' if result.passed else '✗'} {case_label(result.case.name, result.case.hidden)}")
        explained = explanation_lines(result)
        if not (full or id(result) in in_full) and result.summary and result.summary != explained:
            more = len(result.summary) - 1
            explained, shortened = [result.summary[0] + (f" (and {more} more)" if more else "")], True
        lines += [INDENT + line for line in explained]
    if shortened:
        lines.append(f"  (the first failing case of each kind is shown in full, the others in short: "
                     f"check({exercise.id!r}, ..., full=True) shows each in full)")
    lines.append("  " + count)
    return "\n".join(lines)


def forbidden_call(results: list[CaseResult]) -> str:
    """What the exercise asks to write without that the learner's code called, in the first case that did ("")."""
    return next((r.outcome.forbidden for r in results if r.outcome is not None and r.outcome.forbidden), "")


def failure_kind(result: CaseResult) -> str:
    """What went wrong in a failed case: the code raised (each type of exception a kind of its own, in a visible
    case and in a hidden one, so that each one's traceback is shown once), called what the exercise
    "forbidden"s, "changed" its input in place, or
    returned a wrong "value" (or anything else the judge says, such as a time limit)."""
    if result.raised:
        return f"raised {result.raised.split(':', 1)[0]}{' (hidden)' if result.case.hidden else ''}"
    outcome = result.outcome
    if outcome is not None and outcome.forbidden:
        return "forbidden"
    return "changed" if outcome is not None and outcome.changed else "value"


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
    """One line: which exercise failed, how many of its cases, and the known mistake that explains them."""
    if left_unwritten(results):
        return f"{exercise.id} is not written yet"
    total = _total(exercise, results)
    mistake = next((result.mistake for result in results if result.mistake), None)
    called = forbidden_call(results)
    return f"{exercise.id}: {total - sum(result.passed for result in results)} of {total} cases failed" + \
        (f"; it looks like {mistake.name}" if mistake else "") + \
        (f"; your code {forbidden.cause(called)}" if called else "")


def _total(exercise: registry.Exercise, results: list[CaseResult]) -> int:
    """How many cases the results stand for: all of them when hidden ones were run, else the visible ones."""
    return len(exercise.cases) if any(r.case.hidden for r in results) else len(exercise.visible_cases())
