"""Chapter 00: a practice exercise (no points) that shows what checks look like."""
import numpy as np

from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch00_setup as ref


def _sigmoid_sign_flipped(x):
    return 1 / (1 + np.exp(x))


def _sigmoid_overflowing(x):
    return np.exp(x) / (1 + np.exp(x))


def _tanh_instead(x):
    return np.tanh(x)


def _sigmoid_naive(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-x))


def _sigmoid_via_tanh(x):
    return 0.5 * (1 + np.tanh(x / 2))


register(Exercise(
    id="ch00.sigmoid", points=0, reference=ref.sigmoid,
    cases=(
        Case("a few values", lambda: {"x": np.array([-2.0, -0.5, 0.0, 0.5, 2.0])}),
        Case("a 2 x 3 matrix", lambda: {"x": np.array([[0.1, -3.0, 4.0], [7.0, -0.2, 0.0]])}),
        Case("large magnitudes: ±1000", lambda: {"x": np.array([-1000.0, -50.0, 50.0, 1000.0])}),
        Case("random, 1000 values", lambda: {"x": np.random.default_rng(0).normal(scale=10, size=1000)}, hidden=True),
    ),
    mistakes=(
        Mistake("sign flipped", "σ(x) = 1 / (1 + e^(−x)): the exponent is −x.", _sigmoid_sign_flipped),
        Mistake("overflow for large x", "e^x overflows to inf for x > 709 and inf / inf is NaN; use e^(−x) "
                "where x ≥ 0.", _sigmoid_overflowing),
        Mistake("tanh instead of sigmoid", "tanh runs from −1 to 1; σ runs from 0 to 1.", _tanh_instead),
    ),
    alternatives=(_sigmoid_naive, _sigmoid_via_tanh),
))
