"""What an exercise asks the learner to write without (autograder/learner/forbidden.py): seen whatever the name it
was called by, never for the course's own code, the same in the inline check and in grading, and lifted by the
instructor's nbgrader_config.py."""
import dataclasses
import functools
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.functional import conv2d as renamed_conv

from autograder.instructor import bundle, classroom, grading
from autograder.instructor.errors import CourseError
from autograder.instructor.hidden_feedback import SubmittedText
from autograder.learner import forbidden, registry, stored
from autograder.learner.check import failure_summary, report
from autograder.learner.judge import run_cases, run_one_case
from autograder.learner.protocol import CaseRecord, Malformed

CONVOLUTION = registry.get("ch07.conv2d").forbids


def keywords(fn, args):
    return fn(**args)


def called(fn, forbids=CONVOLUTION, references=None, call=keywords):
    args = {"x": torch.randn(1, 1, 5, 5), "weight": torch.randn(1, 1, 3, 3)}
    return run_one_case(call, fn, args, references or {}, forbids).forbidden


class Subclass(torch.nn.Conv2d):
    pass


def through_a_thread(x, weight):
    out = []
    worker = threading.Thread(target=lambda: out.append(F.conv2d(x, weight)))
    worker.start()
    worker.join()
    return out[0]


@pytest.mark.parametrize("fn", [
    lambda x, weight: F.conv2d(x, weight),
    lambda x, weight: renamed_conv(x, weight),  # imported under another name
    lambda x, weight: torch.conv2d(x, weight),  # the same builtin
    lambda x, weight: getattr(F, "conv" + "2d")(x, weight),
    lambda x, weight: next(map(F.conv2d, [x], [weight])),  # called from C: the torch mode sees it
    lambda x, weight: functools.partial(F.conv2d, x)(weight),
    lambda x, weight: torch.nn.Conv2d(1, 1, 3, bias=False)(x),  # a library that calls it
    lambda x, weight: Subclass(1, 1, 3, bias=False)(x),
    lambda x, weight: F.conv3d(x[None], weight[None]),
    lambda x, weight: torch.ops.aten.convolution(x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1),
    through_a_thread,
], ids=["F.conv2d", "renamed", "torch.conv2d", "getattr", "map", "partial", "nn.Conv2d", "a subclass", "conv3d",
        "torch.ops", "in a thread"])
def test_a_forbidden_call_is_seen_whatever_its_name(fn):
    assert called(fn) in CONVOLUTION


def test_the_function_itself_being_the_forbidden_one_is_seen():
    assert run_one_case(lambda fn, args: fn(args["x"], args["weight"]), F.conv2d,
                        {"x": torch.randn(1, 1, 4, 4), "weight": torch.randn(1, 1, 3, 3)}, {},
                        CONVOLUTION).forbidden == "torch.nn.functional.conv2d"


def test_a_learners_method_that_is_the_forbidden_builtin_is_seen_when_the_driver_calls_it():
    class Layer:
        forward = staticmethod(F.conv2d)

    def driver(cls, args):
        return cls().forward(args["x"], args["weight"])

    assert called(Layer, call=driver) == "torch.nn.functional.conv2d"


@pytest.mark.parametrize("fn", [
    lambda x, weight: (F.unfold(x, 3).transpose(1, 2) @ weight.reshape(1, -1).T).reshape(1, 1, 3, 3),
    lambda x, weight: x[..., :3, :3] * weight,
    lambda x, weight: torch.einsum("bchw,oc->bohw", x, weight[:, :, 0, 0]),
], ids=["unfold", "slicing", "einsum"])
def test_writing_it_by_hand_with_other_torch_functions_is_not_a_forbidden_call(fn):
    assert called(fn) == ""


def test_a_reference_put_in_place_of_an_earlier_exercise_may_call_it():
    def earlier_exercise(x, weight):  # the course's: a `uses` reference
        return F.conv2d(x, weight)

    assert called(lambda x, weight: earlier_exercise(x, weight), references={"earlier_exercise": earlier_exercise}) == ""
    assert called(lambda x, weight: earlier_exercise(x, weight)) == "torch.nn.functional.conv2d"  # not one: seen


def test_a_class_the_driver_hands_out_may_call_it():
    class CourseLayer:
        def forward(self, x, weight):
            return F.conv2d(x, weight)

    def driver(fn, args):
        return fn(CourseLayer(), **args)

    def with_hands_out(fn, args):
        return driver(fn, args)

    with_hands_out.hands_out = (CourseLayer,)
    assert called(lambda layer, x, weight: layer.forward(x, weight), call=with_hands_out) == ""
    assert called(lambda layer, x, weight: layer.forward(x, weight), call=driver) == "torch.nn.functional.conv2d"


def test_modules_and_names_of_packages_not_imported_yet_are_seen_by_module():
    from sklearn.preprocessing import StandardScaler

    assert called(lambda x, weight: StandardScaler().fit(x.reshape(-1, 1).numpy()), forbids=("sklearn",)) == "sklearn"
    assert called(lambda x, weight: torch.optim.SGD([weight], lr=0.1), forbids=("torch.optim",)) == "torch.optim"
    assert forbidden.Forbidden.of(("not_a_package.anything",)).modules == [("not_a_package.anything",) * 2]


def test_switching_the_watch_off_is_reported_and_the_previous_profiler_comes_back():
    def mine(frame, event, arg):
        pass

    sys.setprofile(mine)
    try:
        assert called(lambda x, weight: sys.setprofile(None)) == forbidden.SWITCHED_OFF
        assert sys.getprofile() is mine
        assert called(lambda x, weight: x) == "" and sys.getprofile() is mine
    finally:
        sys.setprofile(None)
    assert threading.getprofile() is None


def test_leaving_the_torch_mode_is_reported():
    from torch.overrides import _get_current_function_mode, _pop_mode

    assert called(lambda x, weight: _pop_mode()) == forbidden.SWITCHED_OFF
    assert _get_current_function_mode() is None


def by_torch(x, weight, bias=None, stride=1, padding=0):
    return F.conv2d(x, weight, bias, stride, padding)


def test_the_inline_check_fails_every_case_with_the_reason_first():
    exercise = registry.get("ch07.conv2d")
    results = run_cases(exercise, by_torch)
    assert not any(result.passed for result in results)
    lines = report(exercise, results).splitlines()
    assert lines[1] == f"  0 of {len(results)} passed."
    assert " ".join(line.strip() for line in lines[2:4]) == forbidden.describe("torch.nn.functional.conv2d")
    assert sum("your code called it" in line for line in lines[4:]) == 1  # the first case in full ...
    assert sum(line.strip() == forbidden.cause("torch.nn.functional.conv2d") for line in lines) == len(results) - 1
    assert failure_summary(exercise, results).endswith(
        "; your code called torch.nn.functional.conv2d, which the exercise asks to do without")
    assert all(r.passed for r in run_cases(dataclasses.replace(exercise, forbids=()), by_torch))


def record_of(fn, exercise):
    case = exercise.visible_cases()[0]
    args = case.make_args()
    return {"event": "case_end", **CaseRecord.of(run_one_case(exercise.call, fn, args, {}, exercise.forbids), args).event()}


def test_grading_takes_a_forbidden_call_only_among_the_exercises_own_and_explains_the_zero():
    exercise = registry.get("ch07.conv2d")
    case = exercise.visible_cases()[0]
    inputs = case.make_args()
    event = record_of(lambda x, weight: F.conv2d(x, weight), exercise)
    assert event["forbidden"] == "torch.nn.functional.conv2d"
    outcome = grading._outcome([event], inputs, False, SubmittedText.of([]), exercise.forbids)
    assert outcome.forbidden == "torch.nn.functional.conv2d"
    for forged in ("os.system", "torch.optim"):  # not this exercise's: the learner's process wrote it
        assert grading._outcome([{**event, "forbidden": forged}], inputs, False, SubmittedText.of([]),
                                exercise.forbids).cause == "malformed result"
    assert grading._outcome([event], inputs, False, SubmittedText.of([]), ()).cause == "malformed result"  # lifted
    switched = {**event, "forbidden": forbidden.SWITCHED_OFF}
    assert grading._outcome([switched], inputs, False, SubmittedText.of([]), exercise.forbids).forbidden


@pytest.mark.parametrize("bad", [{"forbidden": ""}, {"forbidden": 3}, {"forbidden": "x" * 301},
                                 {"forbidden": "torch.optim", "not_written": True, "output": None}])
def test_a_record_with_a_malformed_forbidden_call_is_refused(bad):
    event = {"event": "case_end", "output": None, "args_after": None, **bad}
    if "not_written" in bad:
        event = {"event": "case_end", "not_written": True, "forbidden": "torch.optim"}
    with pytest.raises(Malformed):
        CaseRecord.read(event)


def test_the_export_names_the_call_behind_a_zero():
    exercise = registry.get("ch07.conv2d")
    lines, inputs = grading._case_lines(exercise)
    assert all(line["forbids"] == list(exercise.forbids) for _, line in lines)
    records = {}
    for case in exercise.cases:
        args = case.make_args()
        ran = run_one_case(exercise.call, by_torch, args, {}, exercise.forbids)
        records[(exercise.id, case.name)] = [{"event": "case_end", **CaseRecord.of(ran, args).event()}]
    graded = grading._grade_exercise(exercise, grading.Sandboxed(records=records), inputs, SubmittedText.of([]),
                                     exercise.forbids)
    assert graded.score == 0
    assert graded.reason == f"called torch.nn.functional.conv2d, which the exercise asks to do without; " \
                            f"{len(exercise.cases)} of {len(exercise.cases)} cases failed"
    assert all(line["forbids"] == [] for _, line in grading._case_lines(exercise, frozenset({exercise.id}))[0])


def course_with(tmp_path: Path, setting: str) -> Path:
    (tmp_path / "nbgrader_config.py").write_text(f"c = get_config()\n{setting}\n")
    return tmp_path


def test_the_instructor_lifts_a_rule_in_nbgrader_config(tmp_path):
    assert classroom.lifted_rules(course_with(tmp_path, "")) == frozenset()
    assert classroom.lifted_rules(course_with(tmp_path, 'c.NNCourse.allow_library_calls = ["ch07.conv2d"]')) == \
        {"ch07.conv2d"}
    everything = classroom.lifted_rules(course_with(tmp_path, 'c.NNCourse.allow_library_calls = ["all"]'))
    assert everything == {e.id for e in registry.all_exercises() if e.forbids} and "ch04.adam_step" in everything


@pytest.mark.parametrize("setting, said", [
    ('c.NNCourse.allow_library_calls = "ch07.conv2d"', "must be a list of exercise ids"),
    ('c.NNCourse.allow_library_calls = ["ch07.conv2"]', "ch07.conv2d"),  # the closest id suggested
    ('c.NNCourse.allow_library_calls = ["ch02.mse_loss"]', "ch02.mse_loss forbids no calls"),
])
def test_a_wrong_setting_says_what_is_wrong(tmp_path, setting, said):
    with pytest.raises(CourseError, match="allow_library_calls") as error:
        classroom.lifted_rules(course_with(tmp_path, setting))
    assert said in str(error.value)


def test_the_learners_bundle_checks_with_the_rules_in_force(tmp_path):
    built = bundle.build(tmp_path / "b", chapters={"ch07"}, lifted=frozenset({"ch07.conv2d"}))
    kept = {e.id: e.forbids for e in stored.load(built / "autograder" / "learner" / "stored_cases", "ch07")}
    assert kept["ch07.conv2d"] == ()
    built = bundle.build(tmp_path / "c", chapters={"ch07"})
    kept = {e.id: e.forbids for e in stored.load(built / "autograder" / "learner" / "stored_cases", "ch07")}
    assert kept["ch07.conv2d"] == CONVOLUTION


def test_the_repositorys_nbgrader_config_lifts_nothing():
    from autograder.instructor import notebooks

    assert classroom.lifted_rules(notebooks.ROOT) == frozenset()


def test_an_exercise_without_forbids_is_not_watched():
    assert sys.getprofile() is None
    seen = []
    run_one_case(keywords, lambda: seen.append(sys.getprofile()), {}, {}, ())
    assert seen == [None]
    np.testing.assert_equal(called(lambda x, weight: np.zeros(1), forbids=()), "")


@pytest.mark.parametrize("patched", ["Watch.__enter__", "Watch._profile", "Watch._by_learner", "Forbidden.of_callable"])
def test_a_watch_whose_code_a_cell_replaced_makes_the_sandbox_report_a_changed_runner(monkeypatch, patched):
    from autograder.learner import in_sandbox

    assert in_sandbox.runner_intact()
    owner, name = patched.split(".")
    monkeypatch.setattr(getattr(forbidden, owner), name, lambda *args, **kwargs: None)
    assert not in_sandbox.runner_intact()


# -- each way of knowing a call, alone ------------------------------------------------------------------------------

def test_what_a_learner_reads_when_the_watch_was_switched_off():
    assert forbidden.describe(forbidden.SWITCHED_OFF) == (
        "your code switched off the check's watch of which functions it calls (sys.setprofile): leave it in place")
    assert forbidden.cause(forbidden.SWITCHED_OFF) == "switched off the check's watch of its calls"


class OwnModel(torch.nn.Module):  # a learner's model: nn.Module's own methods are never what a class forbids
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, x):
        return self.linear(x)


def test_a_class_is_known_by_its_own_methods_not_by_nn_modules():
    forbids = ("torch.nn.Conv2d",)
    assert called(lambda x, weight: torch.nn.Conv2d(1, 1, 3)(x), forbids) == "torch.nn.Conv2d"
    assert called(lambda x, weight: Subclass(1, 1, 3)(x), forbids) == "torch.nn.Conv2d"
    assert called(lambda x, weight: OwnModel()(x[0, 0, :, :3]), forbids) == ""


def test_a_python_function_is_known_by_its_own_code_not_its_decorators():
    """scikit-learn's metrics share one decorator (`validate_params`): the wrapper's code is every metric's."""
    from sklearn.metrics import accuracy_score
    from sklearn.metrics import confusion_matrix as renamed

    forbids = ("sklearn.metrics.confusion_matrix",)
    assert called(lambda x, weight: renamed([0, 1], [1, 1]), forbids) == "sklearn.metrics.confusion_matrix"
    assert called(lambda x, weight: accuracy_score([0, 1], [1, 1]), forbids) == ""


def test_a_builtin_outside_torch_is_seen_where_python_calls_it_and_behind_a_partial():
    import math

    def by_position(fn, args):
        return fn(args["n"])

    def factorial(fn):
        return run_one_case(by_position, fn, {"n": 5}, {}, ("math.factorial",)).forbidden

    assert factorial(lambda n: math.factorial(n)) == "math.factorial"
    assert factorial(math.factorial) == "math.factorial"  # the function itself, called by the driver
    assert factorial(functools.partial(functools.partial(math.factorial))) == "math.factorial"  # reached from C
    assert factorial(lambda n: math.prod(range(1, n + 1))) == ""


def test_the_first_forbidden_call_is_the_one_reported():
    import math

    forbids = ("math.factorial", "math.comb", "sklearn.metrics.confusion_matrix")
    assert called(lambda x, weight: (math.comb(4, 2), math.factorial(3)), forbids) == "math.comb"
    from sklearn.metrics import confusion_matrix

    assert called(lambda x, weight: (confusion_matrix([0], [0]), math.factorial(3)), forbids) == \
        "sklearn.metrics.confusion_matrix"
    assert called(lambda x, weight: (math.factorial(3), confusion_matrix([0], [0])), forbids) == "math.factorial"


def test_a_namespace_is_known_by_the_module_its_code_lies_in():
    assert called(lambda x, weight: torch.ops.aten.convolution(x, weight, None, [1, 1], [0, 0], [1, 1], False,
                                                               [0, 0], 1), ("torch.ops",)) == "torch.ops"
    assert called(lambda x, weight: torch.add(x, 1), ("torch.ops",)) == ""


NOT_IMPORTED_YET = """
import sys
from autograder.learner import forbidden
from autograder.learner.judge import run_one_case

assert "colorsys" not in sys.modules
assert forbidden.Forbidden.of(("colorsys.rgb_to_hsv",)).objects == {} and "colorsys" not in sys.modules

def converts():
    from colorsys import rgb_to_hsv as renamed
    return renamed(1, 0, 0)

def seen(names):
    return run_one_case(lambda fn, args: fn(), converts, {}, {}, names).forbidden

assert seen(("colorsys",)) == "colorsys"  # a module, before it was imported: by the module of the code
kept = [kept for kept, _ in forbidden.Forbidden.of(("colorsys.rgb_to_hsv",)).objects.values()]
assert kept == [sys.modules["colorsys"].rgb_to_hsv]  # resolved again, now that its package is there
assert seen(("colorsys.rgb_to_hsv",)) == "colorsys.rgb_to_hsv"
print("ok")
"""


def test_a_package_not_imported_yet_is_not_imported_but_seen_once_the_learner_imports_it():
    import subprocess

    from autograder.instructor import notebooks

    out = subprocess.run([sys.executable, "-c", NOT_IMPORTED_YET], capture_output=True, text=True, timeout=120,
                         cwd=notebooks.ROOT)
    assert out.stdout == "ok\n", out.stderr


def test_a_name_may_be_an_attribute_of_the_top_package():
    resolved = forbidden.Forbidden.of(("torch.conv2d",))
    assert [kept for kept, _ in resolved.objects.values()] == [torch.conv2d] and resolved.torch_functions


def test_references_that_are_classes_or_make_functions_may_call_it():
    class EarlierLayer:  # a `uses` reference that is a class
        def __call__(self, x, weight):
            return F.conv2d(x, weight)

    def earlier(x, weight):
        def inner():
            return F.conv2d(x, weight)
        return inner()

    def convolution_of():  # returns a function of its own, which the learner's code calls after it returned
        return lambda x, weight: F.conv2d(x, weight)

    references = {"EarlierLayer": EarlierLayer, "earlier": earlier, "convolution_of": convolution_of}
    assert called(lambda x, weight: EarlierLayer()(x, weight), references=references) == ""
    assert called(lambda x, weight: earlier(x, weight), references=references) == ""
    assert called(lambda x, weight: convolution_of()(x, weight), references=references) == ""


def test_a_torch_mode_the_learner_left_entered_is_reported():
    from torch.overrides import TorchFunctionMode, _get_current_function_mode, _pop_mode

    class Theirs(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    try:
        assert called(lambda x, weight: Theirs().__enter__()) == forbidden.SWITCHED_OFF
    finally:
        while _get_current_function_mode() is not None:
            _pop_mode()


def test_a_builtin_that_c_code_calls_is_seen_only_through_the_torch_mode(monkeypatch):
    """map calls F.conv2d from C, where sys.setprofile sees nothing; the torch mode calls it again from Python."""
    fn = lambda x, weight: next(map(F.conv2d, [x], [weight]))  # noqa: E731
    assert called(fn) == "torch.nn.functional.conv2d"
    resolved = dataclasses.replace(forbidden.Forbidden._resolve(CONVOLUTION), torch_functions=False)
    monkeypatch.setattr(forbidden.Forbidden, "of", classmethod(lambda cls, names: resolved))
    assert called(fn) == ""  # without it, unseen
