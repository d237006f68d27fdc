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

import contextlib
import copy
import inspect
import re
import sysconfig
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from autograder.learner import registry
from autograder.learner.compare import Problem, Tolerance, changed_inputs, differences, differing_entries, parts
from autograder.learner.display import show, show_pair, show_table

_AUTOGRADER_DIR = str(Path(__file__).resolve().parents[1])
_HIDDEN_PREFIXES = tuple({_AUTOGRADER_DIR, *(sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib"))})
_IPYTHON_CELL = re.compile(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-")
INDENT = "      "
KNOWN_MISTAKE = "This looks like a known mistake:"  # opens the report's closing line that names a mistake
MAX_PARTS_SHOWN = 4  # differing parts of an output shown with their values; the rest are named


class ExerciseFailed(AssertionError):
    """A graded check failed: `check(..., graded=True)` raises it after its report, so that nbgrader
    scores the cell 0. Its message alone says which exercise and how many cases failed."""

    def _render_traceback_(self) -> list[str]:
        """IPython shows these lines in place of a traceback: the report above already explains."""
        return [f"{type(self).__name__}: {self}"]


@dataclass
class CaseResult:
    case: registry.Case
    passed: bool
    lines: list[str] = field(default_factory=list)  # explanation, shown under the case's line
    mistake: registry.Mistake | None = None  # the known mistake that explains every failing case, if any
    not_written: bool = False
    raised: str = ""  # the exception's last line, when the learner's code raised
    outcome: Outcome | None = None  # what the learner's code did on this case, when it ran
    expected: object = None  # the reference's output, when it was compared with the learner's


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


def run_cases(exercise: registry.Exercise, fn, *, hidden: bool = False) -> list[CaseResult]:
    cases = exercise.cases if hidden else exercise.visible_cases()
    if not callable(fn):
        why = f"expected the function you wrote, got {show(fn)}. Pass the function itself: check(id, my_function)"
        return [CaseResult(case, False, [why]) for case in cases]
    results = []
    for case in cases:
        results.append(fold_repeated_exception(results, run_case(exercise, fn, case)))
        if results[-1].not_written:
            break
    return name_the_mistake(exercise, results)


def fold_repeated_exception(earlier: list[CaseResult], result: CaseResult) -> CaseResult:
    """Say "the same exception as above" rather than repeat the previous case's traceback."""
    if earlier and result.raised and result.raised == earlier[-1].raised:
        result.lines = [f"raised the same exception as above: {result.raised}"]
    return result


@dataclass
class Outcome:
    """What running one implementation on one case produced, before any judgement."""

    got: object = None
    not_written: bool = False
    trace: list[str] | None = None  # the learner's traceback lines, when their code raised
    stopped: str = ""  # why the grading sandbox stopped the code on this case (time limit, process died)
    changed: list[str] = field(default_factory=list)  # inputs the function changed in place
    notes: list[str] = field(default_factory=list)  # warnings it raised, for information


def run_case(exercise: registry.Exercise, fn, case: registry.Case) -> CaseResult:
    return judge(exercise, case, run_here(exercise, fn, case.make_args()), case.make_args())


def run_here(exercise: registry.Exercise, fn, args: dict) -> Outcome:
    """Run `fn` on `args` in this process; the learner's inline check does this."""
    before = copy.deepcopy(args)
    with warnings.catch_warnings(record=True) as caught, _references_for(exercise, fn):
        warnings.simplefilter("always")
        try:
            got = exercise.call(fn, args)
        except NotImplementedError:
            return Outcome(not_written=True)
        except Exception as error:  # the learner's code raised: show where, in their lines only
            return Outcome(trace=learner_traceback(error))
    return Outcome(got, changed=changed_inputs(before, args), notes=warning_notes(caught))


def warning_notes(caught) -> list[str]:
    return list(dict.fromkeys(f"note: your code warned {w.category.__name__}: {w.message}" for w in caught))[:3]


def judge(exercise: registry.Exercise, case: registry.Case, outcome: Outcome, inputs: dict) -> CaseResult:
    """Pass or fail one case, with the explanation a learner can act on.

    `inputs` are the case's arguments as they were before the call. For a hidden case the
    explanation names the kind of problem and any known mistake, never the inputs or the expected
    values."""
    def shown_inputs():  # formatted only for a failing case: formatting costs more than checking
        return [] if case.hidden else _show_inputs(inputs)

    if outcome.not_written:
        return CaseResult(case, False, ["not written yet: replace `raise NotImplementedError` with your code"],
                          not_written=True)
    if outcome.stopped:
        return CaseResult(case, False, [outcome.stopped] + shown_inputs(), raised=outcome.stopped)
    if outcome.trace is not None:
        return CaseResult(case, False, ["your code raised an exception:", *outcome.trace] + shown_inputs(),
                          raised=outcome.trace[-1], outcome=outcome)
    got, notes = outcome.got, outcome.notes
    if outcome.changed:
        lines = [f"your function changed its input {', '.join(outcome.changed)} in place; leave inputs untouched "
                 "(work on a copy or build new arrays)"] + shown_inputs()
        return CaseResult(case, False, lines + notes, outcome=outcome)
    expected = exercise.expected_output(case)
    problems = _compare(exercise, got, expected)
    if not problems:
        return CaseResult(case, True, notes)
    if case.hidden:
        lines = [problem.without_values() for problem in problems[:3]]
    else:
        lines = shown_inputs() + _show_expected_and_got(exercise, expected, got, problems) + \
            [str(p) for p in problems[:3]]
    return CaseResult(case, False, lines + notes, outcome=outcome, expected=expected)


def name_the_mistake(exercise: registry.Exercise, results: list[CaseResult]) -> list[CaseResult]:
    """Mark every failing case with the known mistake that explains them all, if one does: the first
    registered mistake that fails each of them just as the learner's code did (`_explains`). A
    mistake that explains only some of them is not named: its name would mislead on the others."""
    failing = [result for result in results if not result.passed]
    candidates = list(exercise.mistakes) if failing else []
    for result in failing:
        candidates = [mistake for mistake in candidates if _explains(exercise, mistake, result)]
    for result in failing:
        result.mistake = candidates[0] if candidates else None
    return results


def _explains(exercise: registry.Exercise, mistake: registry.Mistake, result: CaseResult) -> bool:
    """Whether `mistake`, run on `result`'s case, does what the learner's code did there: raises the same
    kind of exception, or returns the same output (within the tolerance) and changes the same inputs in
    place, and so fails the case too. A mistake that passes the case (its output there is the
    reference's) does not explain it."""
    outcome = result.outcome
    if outcome is None or outcome.not_written or outcome.stopped:
        return False
    run = exercise.mistake_output(mistake, result.case)
    if run.raised or outcome.trace is not None:
        return _exception_kind(run.raised) == _exception_kind(result.raised) != ""
    if list(run.changed) != outcome.changed or _compare(exercise, outcome.got, run.output):
        return False
    return bool(run.changed) or bool(_compare(exercise, run.output, result.expected))


def _exception_kind(last_line: str) -> str:
    """"IndexError" of a traceback's last line "IndexError: index 5 is out of bounds ..."."""
    return last_line.split(":", 1)[0].strip()


def _references_for(exercise: registry.Exercise, fn):
    """While `fn` runs, the earlier exercises it calls (`exercise.uses`) are the references, where the
    learner's own code stood (`references_in_place_of_own_code`)."""
    references = {name: exercise.reference.__globals__[name] for name in exercise.uses}
    return references_in_place_of_own_code(fn, references)


@contextlib.contextmanager
def references_in_place_of_own_code(fn, references: dict):
    """While the block runs, each name in `references` ({name: reference}) resolves, in the global namespace
    of the learner's `fn`, to its reference, so that each exercise is judged on its own and one mistake costs
    one exercise's points. Only names the learner left undefined or bound to their own code (`is_own_code`)
    are swapped: a name bound to anything else, such as a library's class imported under that name, is the
    learner's choice and stays. Everything is put back afterwards. The inline check and the grading sandbox
    both swap through here."""
    namespace = getattr(fn, "__globals__", None)
    swapped = [] if namespace is None else \
        [name for name in references if name not in namespace or is_own_code(namespace[name], fn)]
    saved = {name: namespace[name] for name in swapped if name in namespace}
    try:
        for name in swapped:
            namespace[name] = references[name]
        yield
    finally:
        for name in swapped:
            if name in saved:
                namespace[name] = saved[name]
            else:
                namespace.pop(name, None)


def is_own_code(value, fn) -> bool:
    """Whether `value` is a function or class the learner wrote beside `fn`: defined in the same module (their
    notebook), not imported from a library."""
    return (inspect.isfunction(value) or inspect.isclass(value)) and \
        getattr(value, "__module__", None) == getattr(fn, "__module__", None)


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


def _compare(exercise: registry.Exercise, got, expected) -> list[Problem]:
    """`differences`, made safe against learner objects that raise when looked at."""
    try:
        return differences(got, expected, _tolerance(exercise), exercise.outputs)
    except Exception as error:
        return [Problem("", f"returned a {type(got).__name__} that could not be compared "
                            f"({type(error).__name__}: {error}); return plain numbers, arrays or tuples")]


def _parts(exercise: registry.Exercise, got, expected) -> list[tuple[str, object, object]]:
    """`parts`, made safe in the same way: an output that breaks when taken apart stays whole."""
    try:
        return parts(got, expected, exercise.outputs)
    except Exception:
        return [("", got, expected)]


def _tolerance(exercise: registry.Exercise) -> Tolerance:
    return Tolerance(exercise.rtol, exercise.atol, exercise.strict_dtype)


def _show_inputs(args) -> list[str]:
    return ["input    " + ", ".join(args) + ":"] + \
        [line for name, value in args.items() for line in _hang(f"  {name} = ", show(value))]


def _show_expected_and_got(exercise: registry.Exercise, expected, got, problems: list[Problem]) -> list[str]:
    """Expected and got, in one number format and lined up: an output of several parts (a tuple's named
    outputs, a dict's keys) part by part, the differing parts first, and a part that agrees in one line."""
    pieces = _parts(exercise, got, expected)
    if len(pieces) == 1 and pieces[0][0] == "":
        return _show_whole(exercise, expected, got)
    differing = {problem.where for problem in problems}
    width = max(len(label) for label, _, _ in pieces)
    shown = [piece for piece in pieces if piece[0] in differing][:MAX_PARTS_SHOWN]
    unshown = [label for label, _, _ in pieces if label in differing][MAX_PARTS_SHOWN:]
    lines = []
    for label, got_part, expected_part in shown:
        expected_text, got_text = show_pair(expected_part, got_part)
        lines += _hang(f"{label.ljust(width)}  expected ", expected_text) + _hang(f"{'':{width}}  got      ", got_text)
    lines += [f"{len(unshown)} more parts differ: {', '.join(unshown)}"] if unshown else []
    return lines + [f"{label.ljust(width)}  as expected" for label, _, _ in pieces if label not in differing]


def _show_whole(exercise: registry.Exercise, expected, got) -> list[str]:
    """Expected and got as two aligned values, or, for an output whose entries the exercise's driver
    labels (a schedule's steps), as a table with one row per entry."""
    label = getattr(exercise.call, "entry_label", None)
    differs = differing_entries(got, expected, _tolerance(exercise)) if label else None
    if differs is not None and differs.ndim == 1:
        return show_table(label, expected, got, differs)
    expected_text, got_text = show_pair(expected, got)
    return _hang("expected ", expected_text) + _hang("got      ", got_text)


def _hang(prefix: str, text: str) -> list[str]:
    """`text` after `prefix`, its further lines indented to start under its first."""
    first, *rest = text.splitlines() or [""]
    return [prefix + first] + [" " * len(prefix) + line for line in rest]


def learner_traceback(error: BaseException) -> list[str]:
    """The traceback's frames from the learner's own code (notebook cells, their files), with the
    error line; frames inside the autograder, Python and installed libraries are left out."""
    lines = []
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.startswith(_HIDDEN_PREFIXES):
            continue
        where = "your cell" if _IPYTHON_CELL.search(frame.filename) else Path(frame.filename).name
        lines.append(f"line {frame.lineno} of {where}, in {frame.name}:")
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return lines + [line.rstrip() for line in traceback.format_exception_only(type(error), error)]
