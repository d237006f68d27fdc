"""Property-based tests for chapter 09, reference and every registered alternative: the int8 round trip's error
bound |x − x̂| ≤ scale / 2 on any shape and magnitude, per tensor and per channel; global pruning's count and order
(every pruned |w| ≤ every kept |w|); the distillation loss bounded below by its hard term and equal to it at
alpha = 0; DP-SGD without noise returning a mean of clipped gradients (norm ≤ C)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.learner import drivers
from solutions import ch09_deployment as ch09
from tests import strategies as s


def implementations(name):
    return [pytest.param(getattr(ch09, name), id="reference"), *s.alternatives(f"ch09.{name}")]


@st.composite
def tensors(draw, min_dims=1, max_dims=3):
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=min_dims, max_size=max_dims)))
    scale = 10.0 ** draw(st.integers(-4, 6))
    return torch.from_numpy(draw(s.arrays(shape, magnitude=1.0))) * scale


@s.budget(30)
@pytest.mark.parametrize("quantize", implementations("quantize_int8"))
@given(x=tensors(), per_channel=st.booleans())
def test_the_int8_round_trip_is_within_half_a_scale(quantize, x, per_channel):
    axis = 0 if per_channel else None
    q, scale = quantize(x, axis=axis)
    assert q.dtype == torch.int8 and q.shape == x.shape and int(q.abs().max()) <= 127
    error = (x - ch09.dequantize_int8(q, scale, axis=axis)).abs()
    bound = scale if axis is None else scale.reshape(-1, *([1] * (x.dim() - 1)))
    assert torch.all(error <= bound / 2 * (1 + 1e-9))


@s.budget(30)
@pytest.mark.parametrize("prune", implementations("magnitude_prune"))
@given(weights=st.lists(tensors(), min_size=1, max_size=3), sparsity=st.floats(0.0, 1.0))
def test_global_pruning_removes_round_of_the_share_and_only_the_smallest(prune, weights, sparsity):
    magnitudes = torch.cat([w.abs().reshape(-1) for w in weights])
    s.assume(len(torch.unique(magnitudes)) == len(magnitudes))  # ties may go either way, in torch too
    masks = prune(weights, sparsity)
    kept = torch.cat([m.reshape(-1) for m in masks])
    assert [m.shape for m in masks] == [w.shape for w in weights]
    assert int((~kept).sum()) == round(sparsity * len(magnitudes))
    if kept.any() and (~kept).any():
        assert magnitudes[~kept].max() < magnitudes[kept].min()


@s.budget(20)
@pytest.mark.parametrize("distill", implementations("distillation_loss"))
@given(data=st.data(), n=st.integers(1, 6), c=st.integers(2, 6), t=st.floats(0.5, 10.0), alpha=st.floats(0.0, 1.0))
def test_distillation_is_at_least_its_hard_term_and_equals_it_at_alpha_0(distill, data, n, c, t, alpha):
    student = torch.from_numpy(data.draw(s.arrays((n, c), magnitude=50.0)))
    teacher = torch.from_numpy(data.draw(s.arrays((n, c), magnitude=50.0)))
    labels = torch.tensor(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    hard = torch.nn.functional.cross_entropy(student, labels)
    loss = distill(student, teacher, labels, t, alpha)
    assert float(loss) >= float((1 - alpha) * hard) - 1e-9
    torch.testing.assert_close(distill(student, teacher, labels, t, 0.0), hard, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(distill(student, student, labels, t, 1.0), torch.zeros((), dtype=torch.float64),
                               rtol=0, atol=1e-9)


@s.budget(10)
@pytest.mark.parametrize("dp", implementations("dp_sgd_gradient"))
@given(seed=st.integers(0, 2**16), n=st.integers(1, 8), max_norm=st.sampled_from([1e-3, 0.1, 1.0, 100.0]),
       model=st.sampled_from(["softmax regression", "two-layer tanh"]))
def test_dp_sgd_without_noise_is_a_mean_of_gradients_each_clipped_to_c(dp, seed, n, max_norm, model):
    from autograder.instructor.exercises.ch09 import _dp_case

    args = _dp_case(seed, model, n, max_norm=max_norm, noise_multiplier=0.0)()
    mean = drivers.dp_sgd_on_a_model(dp, args)
    norm = float(torch.sqrt(sum(g.pow(2).sum() for g in mean.values())))
    assert norm <= max_norm * (1 + 1e-9)
    reference = drivers.dp_sgd_on_a_model(ch09.dp_sgd_gradient, args)
    for name in mean:
        np.testing.assert_allclose(mean[name].numpy(), reference[name].numpy(), **s.tolerances("ch09.dp_sgd_gradient"))
