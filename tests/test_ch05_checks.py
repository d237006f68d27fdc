"""Chapter 05's checks on answers a learner writes (not the registered mistakes themselves): each fails on the case
that holds the docstring's promise it breaks, and the hint it gets is the one whose mistake explains that failure,
never another that happens to fail the same case (a Dropout that divides by 0 at p = 1 is told so, not "rescaled at
eval"); early stopping stepped on past its first stop and with a first epoch that does not improve."""
import contextlib
import io
import math
import re

import numpy as np

from autograder import check
from solutions import ch05_regularization as ref


def run(exercise_id, fn):
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise_id, fn, hidden=True)
    return passed, output.getvalue()


def failing_cases(output):
    return [line.strip()[2:].removesuffix(" (hidden)") for line in output.splitlines() if line.strip().startswith("✗")]


def named_mistake(output):
    found = re.findall(r"known mistake: ([^.]+)\.", output)
    return found[0] if found else None


class DropoutByZeroAtPOne(ref.Dropout):
    """Every rule right but p = 1, where (u ≥ 1) / 0 is 0 / 0."""

    def forward(self, x):
        if not self.training:
            self.mask = np.ones_like(x)
            return x.copy()
        self.mask = (self.rng.random(x.shape) >= self.p).astype(x.dtype) / (1 - self.p)
        return x * self.mask


def test_a_division_by_zero_at_p_one_is_named_as_such_and_not_as_rescaling_at_eval():
    with np.errstate(divide="ignore", invalid="ignore"):
        passed, output = run("ch05.Dropout", DropoutByZeroAtPOne)
    assert not passed
    assert failing_cases(output) == ["p 1: everything dropped, zeros (no division by 0)"]
    assert "got NaN" in output
    assert named_mistake(output) == "division by 1 − p = 0 at p = 1"
    assert "rescaled at eval" not in output


class DropoutRedrawingWhileTraining(ref.Dropout):
    """The forward pass right; backward draws a mask of its own in training and passes dout through in eval."""

    def backward(self, dout):
        if not self.training:
            return dout.copy()
        keep = (self.rng.random(dout.shape) >= self.p).astype(dout.dtype)
        return dout * (keep / (1 - self.p) if self.p < 1 else keep)


def test_a_new_mask_drawn_in_backward_only_while_training_is_named():
    passed, output = run("ch05.Dropout", DropoutRedrawingWhileTraining)
    assert not passed
    assert "p 0: nothing dropped" not in failing_cases(output)  # p = 0 keeps everything whatever is drawn
    assert named_mistake(output) == "a new mask in backward"


class DropoutOfFloat64(ref.Dropout):
    """Right in float64; a float32 x comes out float64 (np.ones and (u ≥ p) / (1 − p) are float64)."""

    def forward(self, x):
        if not self.training:
            self.mask = np.ones(x.shape)
        else:
            keep = self.rng.random(x.shape) >= self.p
            self.mask = keep / (1 - self.p) if self.p < 1 else np.zeros(x.shape)
        return x * self.mask


def test_a_float32_input_must_come_out_float32():
    passed, output = run("ch05.Dropout", DropoutOfFloat64)
    assert not passed
    assert failing_cases(output) == ["float32 x and dout: the outputs stay float32, in training and in eval"]
    assert "float32" in output and "float64" in output
    assert named_mistake(output) == "a float64 mask for a float32 input"


class StoppingFromTheFirstLoss(ref.EarlyStopping):
    """Takes the first epoch as the best without comparing it, as many callbacks start."""

    def step(self, val_loss, weights):
        self.epoch += 1
        if self.best_weights is None or val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.best_weights = [w.copy() for w in weights]
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience


class StoppingThatStaysStopped(ref.EarlyStopping):
    """Right until it first says stop; then stop for good."""

    def step(self, val_loss, weights):
        stop = super().step(val_loss, weights)
        self.stopped = getattr(self, "stopped", False) or stop
        return self.stopped


class StoppingThatStartsAgain(ref.EarlyStopping):
    """Right until it says stop; then counts from 0 again, as if training had been restarted."""

    def step(self, val_loss, weights):
        stop = super().step(val_loss, weights)
        if stop:
            self.bad_epochs = 0
        return stop


def test_early_stopping_is_checked_past_its_first_stop_and_with_a_first_epoch_that_does_not_improve():
    expected = {StoppingFromTheFirstLoss: ("the first epoch taken as the best whatever its loss",
                                           {"a first epoch that does not improve (NaN): the best comes later",
                                            "patience 1 and a NaN first epoch: stop at once, with no best to restore"}),
                StoppingThatStaysStopped: ("a stop that stays after an improvement",
                                           {"patience 2, stepped on after it said stop: True while no epoch improves, "
                                            "False after one"}),
                StoppingThatStartsAgain: ("the count restarted after saying stop",
                                          {"patience 2, stepped on after it said stop: True while no epoch improves, "
                                           "False after one"})}
    for answer, (mistake, cases) in expected.items():
        passed, output = run("ch05.EarlyStopping", answer)
        assert not passed, answer.__name__
        assert set(failing_cases(output)) == cases, (answer.__name__, output)
        assert named_mistake(output) == mistake, (answer.__name__, output)


def test_the_reference_stepped_past_its_stop_keeps_the_docstrings_rule():
    stopper = ref.EarlyStopping(patience=2)
    weights = [np.zeros(3)]
    stops = []
    for epoch, loss in enumerate([math.nan, 1.0, 1.1, 0.9, 1.0, 1.2, 1.3, 0.8, 0.9, 1.0]):
        weights[0][...] = epoch
        stops.append(stopper.step(loss, weights))
    assert stops == [False, False, False, False, False, True, True, False, False, True]
    assert (stopper.best_loss, stopper.best_epoch) == (0.8, 7)
    np.testing.assert_array_equal(stopper.best_weights[0], np.full(3, 7.0))
    first = ref.EarlyStopping(patience=1)
    assert first.step(math.nan, weights) is True
    assert (first.best_loss, first.best_epoch, first.best_weights) == (math.inf, -1, None)
