"""The course's guarantee: a check neither passes a wrong answer nor rejects a right one.

For every registered exercise: the reference and every alternative correct implementation pass
every case (visible and hidden); the stub fails with "not written yet"; every known mistake fails
the visible cases, so the learner sees it inline, and the feedback names it.
"""
import contextlib
import dataclasses
import inspect
import io

import pytest

from autograder import check
from autograder.learner import forbidden, registry
from autograder.learner.check import report
from autograder.learner.judge import run_cases

EXERCISES = registry.all_exercises()
IDS = [exercise.id for exercise in EXERCISES]


def run_check(exercise_id, fn, **options):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise_id, fn, **options)
    return passed, output.getvalue()


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_reference_passes_every_case(exercise):
    passed, output = run_check(exercise.id, exercise.reference, hidden=True)
    assert passed, output


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_alternative_correct_implementations_pass(exercise):
    """Each alternative passes, but one that calls what the exercise `forbids` (Adam through torch.optim) fails every
    case with that reason alone, and passes where the instructor lifted the rule; at least one alternative is
    written without any of it."""
    assert exercise.alternatives, f"{exercise.id} needs at least one alternative correct implementation"
    lifted = dataclasses.replace(exercise, forbids=())
    from_scratch = 0
    for alternative in exercise.alternatives:
        results = run_cases(exercise, alternative, hidden=True)
        if all(result.passed for result in results):
            from_scratch += 1
            continue
        said = {tuple(result.lines) for result in results}
        assert len(said) == 1 and said.pop()[0] in {forbidden.describe(name) for name in exercise.forbids}, \
            f"{alternative.__name__} is correct but fails:\n{report(exercise, results)}"
        assert all(result.passed for result in run_cases(lifted, alternative, hidden=True)), alternative.__name__
    assert from_scratch, f"{exercise.id}: no alternative is written without {exercise.forbids}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_stub_fails_as_not_written(exercise):
    def stub(*args, **kwargs):
        raise NotImplementedError()

    passed, output = run_check(exercise.id, stub, hidden=True)
    assert not passed
    assert "not written yet" in output


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_every_known_mistake_fails_and_is_named(exercise):
    assert len(exercise.mistakes) >= 3, f"{exercise.id} needs at least three known mistakes"
    for mistake in exercise.mistakes:
        passed, output = run_check(exercise.id, mistake.fn)
        assert not passed, f"the mistake {mistake.name!r} passes the visible cases of {exercise.id}"
        assert f"known mistake: {mistake.name}." in output, \
            f"the feedback for {mistake.name!r} does not name it:\n{output}"


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_cases_are_fresh_and_deterministic(exercise):
    """make_args builds equal inputs every time, so the learner and the reference see the same."""
    from autograder.learner.compare import same_values

    for case in exercise.cases:
        first, second = case.make_args(), case.make_args()
        assert first.keys() == second.keys()
        assert same_values(first, second)
        for name, value in first.items():
            if hasattr(value, "__array_interface__"):
                assert value is not second[name], f"{exercise.id} / {case.name}: {name} is shared between calls"


def test_ids_points_and_references_line_up():
    for exercise in EXERCISES:
        assert exercise.reference.__name__ == exercise.name
        assert exercise.reference.__module__.startswith(f"solutions.{exercise.chapter}_")
        assert exercise.points >= 0


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_call_is_a_shared_driver(exercise):
    """The learner's bundle and the grading sandbox run exercises through autograder/learner/drivers.py only."""
    from autograder.learner.drivers import DRIVERS

    assert DRIVERS.get(exercise.call.__name__) is exercise.call


@pytest.mark.parametrize("exercise", [e for e in EXERCISES if e.uses], ids=[e.id for e in EXERCISES if e.uses])
def test_the_references_an_exercise_uses_travel_to_the_sandbox_whole(exercise):
    """The sandbox rebuilds `uses` from their compiled code with numpy and math only: every global they read must
    be there."""
    import builtins
    import dis

    from autograder.instructor.grading import _case_lines
    from autograder.learner.in_sandbox import reference_namespace

    namespace = reference_namespace(_case_lines(exercise)[0][0][1]["uses"])
    for name in exercise.uses:
        value = namespace[name]
        functions = [f for f in vars(value).values() if callable(f)] if isinstance(value, type) else [value]
        read = {i.argval for f in functions for i in dis.get_instructions(f) if i.opname == "LOAD_GLOBAL"}
        missing = sorted(n for n in read if n not in namespace and not hasattr(builtins, n))
        assert not missing, f"{exercise.id}: the reference {name} reads {missing}, which the sandbox lacks"


@pytest.mark.parametrize("exercise", EXERCISES, ids=IDS)
def test_grading_judges_as_the_inline_check(exercise):
    """One path for both: every answer (reference, alternatives, known mistakes) run by the sandbox's own code
    (in_sandbox.run_case, here in this process), sent as protocol records through the wire and judged by
    the grader gets the same verdict per case, the same named mistakes and, on visible cases, the same words
    as in the inline check."""
    from types import SimpleNamespace

    from autograder.instructor import grading
    from autograder.learner import in_sandbox, wire
    from autograder.learner.check import explanation_lines
    from autograder.learner.compare import same_values
    from autograder.learner.protocol import Event, case_key
    from autograder.instructor.hidden_feedback import SubmittedText

    for case in exercise.cases:
        args = case.make_args()
        assert same_values(args, wire.decode(wire.encode(args))), f"{case.name}: the inputs change on the wire"
    lines, inputs = grading._case_lines(exercise)
    for fn in [exercise.reference, *exercise.alternatives, *(m.fn for m in exercise.mistakes)]:
        inline = run_cases(exercise, fn, hidden=True)
        events = []
        for _, line in lines:
            in_sandbox.run_case(SimpleNamespace(user_ns={exercise.name: fn}), line, lambda **e: events.append(e))
        records = {case_key(event): [event] for event in events if event["event"] == Event.CASE_END}
        graded = grading._grade_exercise(exercise, grading.Sandboxed(records=records), inputs, SubmittedText.of([]),
                                         exercise.forbids)
        name = getattr(fn, "__name__", fn)
        assert [case.passed for case in graded.case_grades] == [result.passed for result in inline], \
            f"{name}: {[r.lines for r in inline]} became {[c.lines for c in graded.case_grades]}"
        assert graded.mistakes == sorted({result.mistake.name for result in inline if result.mistake}), name
        for result, case in zip(inline, graded.case_grades):
            if not result.case.hidden:
                assert without_notes(case.lines) == without_notes(explanation_lines(result)), f"{name}, {case.name}"


def without_notes(lines: list[str]) -> list[str]:
    """A case's explanation less the warnings it notes: torch raises some warnings once per process, so the
    second run of an answer in one process (here, unlike a sandbox) can lack them."""
    return [line for line in lines if not line.startswith("note: your code warned")]


def _parameters_with_defaults(exercise) -> list[str]:
    reference = exercise.reference
    signature = inspect.signature(reference.__init__ if isinstance(reference, type) else reference)
    return [name for name, parameter in signature.parameters.items()
            if parameter.default is not inspect.Parameter.empty and not name.startswith("_")]


def _arguments_given(exercise, args: dict) -> set[str]:
    """The reference's parameters a case sets: a class's constructor takes args["params"]."""
    return set(args["params"]) if isinstance(exercise.reference, type) and "params" in args else set(args)


@pytest.mark.parametrize("exercise", [e for e in EXERCISES if _parameters_with_defaults(e)],
                         ids=[e.id for e in EXERCISES if _parameters_with_defaults(e)])
def test_every_default_value_is_used_by_a_case(exercise):
    """A wrong default (average="micro" where the docstring says "macro") must fail some case: so at
    least one case leaves each defaulted parameter out."""
    never = [name for name in _parameters_with_defaults(exercise)
             if all(name in _arguments_given(exercise, case.make_args()) for case in exercise.cases)]
    assert not never, f"{exercise.id}: no case uses the default of {never}"


def _class_labels(exercise, args: dict) -> list:
    """The class labels a case passes: each 1-D integer array named y or y_true, where the reference's docstring
    speaks of classes, labels or class indices "in [0, C)" (a BatchIterator only carries its y along)."""
    import numpy as np

    doc = (inspect.getdoc(exercise.reference) or "").lower()
    if not any(word in doc for word in ("class", "label", "[0, c)")):
        return []
    return [args[name] for name in ("y", "y_true") if isinstance(args.get(name), np.ndarray)
            and args[name].ndim == 1 and args[name].dtype.kind in "iu"]


def _out_of_label_order(y) -> bool:
    """3 or more classes, and neither their order by count (most first) nor their order of first appearance
    is the order of their labels."""
    import numpy as np

    classes, first, counts = np.unique(y, return_index=True, return_counts=True)
    return len(classes) >= 3 and not np.array_equal(classes[np.argsort(-counts, kind="stable")], classes) \
        and not np.array_equal(classes[np.argsort(first, kind="stable")], classes)


_ON_LABELS = [e for e in EXERCISES if any(_class_labels(e, case.make_args()) for case in e.cases)]


@pytest.mark.parametrize("exercise", _ON_LABELS, ids=[e.id for e in _ON_LABELS])
def test_every_exercise_on_class_labels_has_a_case_with_classes_out_of_label_order(exercise):
    """Walking the classes by count (Counter.most_common) or by first appearance (dict.fromkeys, pandas' unique,
    StratifiedKFold) instead of in label order passes every case whose labels come in the same order all three
    ways. So some case has 3 or more classes out of label order both ways, with `stratify` on where the
    reference has that switch."""
    stratifies = "stratify" in inspect.signature(exercise.reference).parameters
    found = [case.name for case in exercise.cases
             if (args := case.make_args()) and (not stratifies or args.get("stratify"))
             and any(_out_of_label_order(y) for y in _class_labels(exercise, args))]
    assert found, f"{exercise.id}: no case has 3 or more classes out of label order by count and by first appearance"
