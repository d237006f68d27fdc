"""Run an implementation on one case and judge what it did: the one path of the inline check and of grading.

    run_one_case(call, fn, args, references) -> Ran        call it, nothing judged (here, or in the sandbox)
    judge(exercise, case, outcome, inputs)   -> CaseResult  pass or fail, with the explanation
    name_the_mistake(exercise, results)                     the known mistake that explains every failure

The inline check runs `run_one_case` in the learner's kernel and judges its `Outcome` at once
(`run_cases`). Grading runs the same `run_one_case` inside the sandbox (`in_sandbox`), which sends
what happened as a `protocol.CaseRecord`; the grader, outside, reads it back into an `Outcome` and
judges it with the same `judge` and `name_the_mistake`. So an answer gets the same verdict and the
same words inline and in grading, and nothing learner code does can reach the judging.
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

from autograder.learner import forbidden, registry
from autograder.learner.compare import Problem, Tolerance, changed_inputs, differences, differing_entries, parts
from autograder.learner.display import show, show_pair, show_table

_AUTOGRADER_DIR = str(Path(__file__).resolve().parents[1])
_HIDDEN_PREFIXES = tuple({_AUTOGRADER_DIR, *(sysconfig.get_paths()[key] for key in ("stdlib", "purelib", "platlib"))})
_IPYTHON_CELL = re.compile(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-")
MAX_PARTS_SHOWN = 4  # differing parts of an output shown with their values; the rest are named
MAX_WARNINGS = 3  # distinct warnings kept per case, in the order they were first raised
MAX_VALUE_LINE = 94  # longest line of a value shown in a report (the report indents it by 6 more)


@dataclass
class Ran:
    """What calling an implementation on one case did, before any judgement: it returned `got`, met the
    untouched stub (`not_written`), or raised `error`; `warnings` are the distinct warnings it raised,
    "Category: message", at most three."""

    got: object = None
    not_written: bool = False
    error: Exception | None = None
    warnings: list[str] = field(default_factory=list)
    forbidden: str = ""  # what of the exercise's `forbids` the learner's code called (forbidden.py), if any


def run_one_case(call, fn, args: dict, references: dict, forbids: tuple[str, ...] = ()) -> Ran:
    """Call `fn` on one case's `args` through the exercise's driver `call`, while the earlier exercises it
    uses resolve to `references` ({name: reference}, see `references_in_place_of_own_code`) and, where the
    exercise `forbids` calls, a `forbidden.Watch` sees whether the learner's code made one. `args` is left as
    the call left it, so that the caller can see what was changed in place. The inline check and the grading
    sandbox both run every case through here."""
    watch = forbidden.Watch(forbidden.Forbidden.of(forbids), fn, references, call) if forbids \
        else contextlib.nullcontext()
    with warnings.catch_warnings(record=True) as caught, references_in_place_of_own_code(fn, references):
        warnings.simplefilter("always")
        try:
            with watch:
                got = call(fn, args)
        except NotImplementedError:
            return Ran(not_written=True, warnings=_warning_texts(caught))
        except Exception as error:  # the learner's code raised: reported, never raised here
            return Ran(error=error, warnings=_warning_texts(caught), forbidden=watch.called or "" if forbids else "")
    return Ran(got, warnings=_warning_texts(caught), forbidden=watch.called or "" if forbids else "")


def _warning_texts(caught) -> list[str]:
    return list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))[:MAX_WARNINGS]


def warning_notes(warnings_raised: list[str]) -> list[str]:
    """The report's lines for the warnings a case raised ("Category: message", or the category alone), one line
    each: a message's own line breaks (torch's "... Consider using tensor.detach() first. (Triggered internally
    at ...)") become spaces."""
    return [f"note: your code warned {' '.join(warning.split())}" for warning in warnings_raised]


@dataclass
class Outcome:
    """What running one implementation on one case produced, before any judgement."""

    got: object = None
    not_written: bool = False
    trace: list[str] | None = None  # the learner's traceback lines, when their code raised
    stopped: str = ""  # why the grading sandbox stopped the code on this case (time limit, process died)
    changed: list[str] = field(default_factory=list)  # inputs the function changed in place
    notes: list[str] = field(default_factory=list)  # warnings it raised, for information
    forbidden: str = ""  # what of the exercise's `forbids` it called (forbidden.py), if any


@dataclass
class CaseResult:
    case: registry.Case
    passed: bool
    lines: list[str] = field(default_factory=list)  # explanation, shown under the case's line
    summary: list[str] = field(default_factory=list)  # the explanation in short, at most 3 lines (empty: `lines`)
    mistake: registry.Mistake | None = None  # the known mistake that explains every failing case, if any
    not_written: bool = False
    raised: str = ""  # the exception's last line, when the learner's code raised
    outcome: Outcome | None = None  # what the learner's code did on this case, when it ran
    expected: object = None  # the reference's output, when it was compared with the learner's


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
        result.lines = result.summary = [f"raised the same exception as above: {result.raised}"]
    return result


def run_case(exercise: registry.Exercise, fn, case: registry.Case) -> CaseResult:
    """Run and judge `fn` on one case, in this process: what the learner's inline check does."""
    return judge(exercise, case, run_here(exercise, fn, case.make_args()), case.make_args())


def run_here(exercise: registry.Exercise, fn, args: dict) -> Outcome:
    """Run `fn` on `args` in this process, with the references of the exercises it uses, as an `Outcome`."""
    before = copy.deepcopy(args)
    ran = run_one_case(exercise.call, fn, args, references_of(exercise), exercise.forbids)
    notes = warning_notes(ran.warnings)
    if ran.not_written:
        return Outcome(not_written=True)
    if ran.error is not None:  # shown where it happened, in the learner's lines only
        return Outcome(trace=learner_traceback(ran.error), notes=notes, forbidden=ran.forbidden)
    return Outcome(ran.got, changed=changed_inputs(before, args), notes=notes, forbidden=ran.forbidden)


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
    if outcome.forbidden:  # whatever it returned: the point of the exercise is to compute it without that call
        return CaseResult(case, False, [forbidden.describe(outcome.forbidden)], [forbidden.cause(outcome.forbidden)],
                          outcome=outcome)
    if outcome.stopped:
        return CaseResult(case, False, [outcome.stopped] + shown_inputs(), [outcome.stopped], raised=outcome.stopped)
    if outcome.trace is not None:
        return CaseResult(case, False, ["your code raised an exception:", *outcome.trace] + shown_inputs(),
                          [f"your code raised {outcome.trace[-1]}"], raised=outcome.trace[-1], outcome=outcome)
    got, notes = outcome.got, outcome.notes
    if outcome.changed:
        changed = f"your function changed its input {', '.join(outcome.changed)} in place; leave inputs untouched " \
                  "(work on a copy or build new arrays)"
        return CaseResult(case, False, [changed] + shown_inputs() + notes, [changed], outcome=outcome)
    expected = exercise.expected_output(case)
    problems = _compare(exercise, got, expected)
    if not problems:
        return CaseResult(case, True, notes)
    if case.hidden:
        summary = lines = [problem.without_values() for problem in problems[:3]]
    else:
        summary = [str(p) for p in problems[:3]]
        lines = shown_inputs() + _show_expected_and_got(exercise, expected, got, problems) + summary
    return CaseResult(case, False, lines + notes, summary, outcome=outcome, expected=expected)


def name_the_mistake(exercise: registry.Exercise, results: list[CaseResult]) -> list[CaseResult]:
    """Mark every failing case with the known mistake that explains them all, if one does: the first
    registered mistake that fails each of them just as the learner's code did (`_explains`) and passes each
    case the learner's code passed (`_passes`). A mistake that explains only some of the failures, or that
    would have failed a case the learner got right, is not named: its name would mislead."""
    failing = [result for result in results if not result.passed]
    candidates = list(exercise.mistakes) if failing else []
    for result in failing:
        candidates = [mistake for mistake in candidates if _explains(exercise, mistake, result)]
    for result in results:
        if result.passed and candidates:
            candidates = [mistake for mistake in candidates if _passes(exercise, mistake, result.case)]
    for result in failing:
        result.mistake = candidates[0] if candidates else None
    return results


def _passes(exercise: registry.Exercise, mistake: registry.Mistake, case: registry.Case) -> bool:
    """Whether `mistake` passes `case`: returns what the reference returns, changing no input. True when its
    output there is not known (a learner's copy keeps the mistakes' outputs on the visible cases only)."""
    try:
        run = exercise.mistake_output(mistake, case)
    except LookupError:
        return True
    return not run.raised and not run.changed and not _compare(exercise, run.output, exercise.expected_output(case))


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


def references_of(exercise: registry.Exercise) -> dict:
    """The references of the earlier exercises `exercise` calls (`exercise.uses`), by name."""
    return {name: exercise.reference.__globals__[name] for name in exercise.uses}


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
    """`text` (a value as `show` writes it) after `prefix`, its further lines indented to start under its first,
    each line cut at MAX_VALUE_LINE characters (" …" at the end): a value's line is for reading, not copying."""
    first, *rest = text.splitlines() or [""]
    return [_cut(prefix + first)] + [_cut(" " * len(prefix) + line) for line in rest]


def _cut(line: str) -> str:
    return line if len(line) <= MAX_VALUE_LINE else line[:MAX_VALUE_LINE - 2] + " …"


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
