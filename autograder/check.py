"""`check(exercise_id, fn)`: run a learner's function on an exercise's cases and say what is wrong.

    >>> from autograder import check
    >>> check("ch02.mse_loss", mse_loss)
    ch02.mse_loss: 3 cases
      ✓ two points, by hand
      ...
    True

It returns True only when every case passes and never raises because an answer is wrong: a
missing implementation, an exception in the learner's code, `None`, a wrong shape or dtype, NaN,
or an input changed in place each get a message of their own. When the output matches a known
mistake, the message names it and gives its hint.
"""
from __future__ import annotations

import contextlib
import copy
import re
import sys
import sysconfig
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from autograder import registry
from autograder.compare import Problem, Tolerance, differences
from autograder.display import show

_AUTOGRADER_DIR = str(Path(__file__).resolve().parent)
_HIDDEN_PREFIXES = tuple({_AUTOGRADER_DIR, *(sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib"))})
_IPYTHON_CELL = re.compile(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-")
INDENT = "      "


@dataclass
class CaseResult:
    case: registry.Case
    passed: bool
    lines: list[str] = field(default_factory=list)  # explanation, shown under the case's line
    mistake: registry.Mistake | None = None
    not_written: bool = False
    raised: str = ""  # the exception's last line, when the learner's code raised


def check(exercise_id: str, fn, *, hidden: bool = False, verbose: bool = True) -> bool:
    """Compare `fn` with the reference of `exercise_id` on its visible cases (and hidden ones
    when `hidden=True`, as grading does). Prints one line per case; returns True iff all pass."""
    exercise = registry.get(exercise_id)
    results = run_cases(exercise, fn, hidden=hidden)
    if verbose:
        print(report(exercise, results))
    return all(result.passed for result in results)


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
    return results


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
                          raised=outcome.trace[-1])
    got, notes = outcome.got, outcome.notes
    if outcome.changed:
        mistake = _known_mistake(exercise, case, got)
        lines = [f"your function changed its input {', '.join(outcome.changed)} in place; leave inputs untouched "
                 "(work on a copy or build new arrays)"] + shown_inputs()
        return CaseResult(case, False, lines + _name(mistake) + notes, mistake=mistake)
    expected = exercise.expected_output(case)
    problems = _compare(exercise, got, expected)
    if not problems:
        return CaseResult(case, True, notes)
    mistake = _known_mistake(exercise, case, got)
    if case.hidden:
        lines = [problem.without_values() for problem in problems[:3]]
    else:
        lines = shown_inputs() + _show_expected_and_got(expected, got, exercise.outputs) + [str(p) for p in problems[:3]]
    return CaseResult(case, False, lines + _name(mistake) + notes, mistake=mistake)


def _name(mistake) -> list[str]:
    return [f"this looks like a known mistake: {mistake.name}. {mistake.hint}"] if mistake else []


@contextlib.contextmanager
def _references_for(exercise: registry.Exercise, fn):
    """While `fn` runs, the earlier exercises it calls (`exercise.uses`) are the references."""
    namespace = getattr(fn, "__globals__", None)
    names = [name for name in exercise.uses if namespace is not None and name in namespace]
    saved = {name: namespace[name] for name in names}
    try:
        for name in names:
            namespace[name] = exercise.reference.__globals__[name]
        yield
    finally:
        if namespace is not None:
            namespace.update(saved)


def report(exercise: registry.Exercise, results: list[CaseResult]) -> str:
    passed = sum(result.passed for result in results)
    total = len(exercise.cases) if any(r.case.hidden for r in results) else len(exercise.visible_cases())
    lines = [f"{exercise.id}: {total} case{'s' if total != 1 else ''}"]
    for result in results:
        label = f"{result.case.name}{' (hidden)' if result.case.hidden else ''}"
        lines.append(f"  {'✓' if result.passed else '✗'} {label}")
        lines += [INDENT + line for text in result.lines for line in text.splitlines()]
    if results and results[-1].not_written:
        lines.append(f"  {exercise.id} is not written yet.")
    elif passed == total:
        lines.append(f"  all {total} passed.")
    else:
        lines.append(f"  {passed} of {total} passed.")
    return "\n".join(lines)


def _compare(exercise: registry.Exercise, got, expected) -> list[Problem]:
    """`differences`, made safe against learner objects that raise when looked at."""
    try:
        return differences(got, expected, _tolerance(exercise), exercise.outputs)
    except Exception as error:
        return [Problem("", f"returned a {type(got).__name__} that could not be compared "
                            f"({type(error).__name__}: {error}); return plain numbers, arrays or tuples")]


def _tolerance(exercise: registry.Exercise) -> Tolerance:
    return Tolerance(exercise.rtol, exercise.atol, exercise.strict_dtype)


def _known_mistake(exercise, case, got) -> registry.Mistake | None:
    for mistake in exercise.mistakes:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wrong = exercise.mistake_output(mistake, case)
        except Exception:
            continue
        if not _compare(exercise, got, wrong):
            return mistake
    return None


def _show_inputs(args) -> list[str]:
    return ["input    " + ", ".join(args) + ":"] + [f"  {name} = {show(value)}" for name, value in args.items()]


def _show_expected_and_got(expected, got, names) -> list[str]:
    if names and isinstance(expected, tuple) and type(got) in (tuple, list) and len(got) == len(expected):
        lines = []
        for name, want, have in zip(names, expected, got):
            lines += [f"expected {name} = {show(want)}", f"got      {name} = {show(have)}"]
        return lines
    return [f"expected {show(expected)}", f"got      {show(got)}"]


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


def changed_inputs(before: dict, after: dict) -> list[str]:
    return [name for name in before if not _same(before[name], after[name])]


def _same(a, b) -> bool:
    if isinstance(a, np.random.Generator):
        return True  # drawing from a generator is what it is for
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype and \
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and _same(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    return True
