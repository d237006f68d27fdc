"""Property-based differential tests for chapter 04: each optimizer step, reference and every registered alternative,
against torch.optim in float64 over a few steps from random starting states and gradient sizes from 1e-6 to 1e3;
gradient clipping against torch.nn.utils.clip_grad_norm_ on lists of arrays of any shapes."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.learner import registry
from solutions import ch04_optimizers as ch04
from tests import strategies as s

TORCH = {"sgd_momentum_step": torch.optim.SGD, "rmsprop_step": torch.optim.RMSprop, "adam_step": torch.optim.Adam,
         "adamw_step": torch.optim.AdamW}


def implementations(name):
    exercise = registry.get(f"ch04.{name}")
    return [pytest.param(fn, id=fn.__name__) for fn in (exercise.reference, *exercise.alternatives)]


@st.composite
def runs(draw, name):
    """(param, grads, hyper): a parameter of 1 to 6 entries, 1 to 5 gradients of one drawn size, hyper-parameters."""
    size = draw(st.integers(1, 6))
    scale = 10.0 ** draw(st.integers(-6, 3))
    param = draw(s.arrays((size,), magnitude=10.0))
    grads = draw(st.lists(s.arrays((size,), magnitude=1.0), min_size=1, max_size=5))
    grads = [g * scale for g in grads]
    decay = draw(st.sampled_from([0.0, 0.01, 0.5]))
    if name == "sgd_momentum_step":
        momentum = draw(st.sampled_from([0.0, 0.5, 0.9]))
        nesterov = momentum > 0 and draw(st.booleans())
        hyper = {"lr": draw(st.sampled_from([0.01, 0.1])), "momentum": momentum,
                 "dampening": 0.0 if nesterov else draw(st.sampled_from([0.0, 0.3])), "nesterov": nesterov,
                 "weight_decay": decay}
    elif name == "rmsprop_step":
        hyper = {"lr": draw(st.sampled_from([0.001, 0.01])), "alpha": draw(st.sampled_from([0.5, 0.9, 0.99])),
                 "eps": draw(st.sampled_from([1e-8, 1e-3])), "centered": draw(st.booleans()), "weight_decay": decay}
    else:
        hyper = {"lr": draw(st.sampled_from([0.001, 0.1])),
                 "betas": draw(st.sampled_from([(0.9, 0.999), (0.5, 0.9), (0.0, 0.99)])),
                 "eps": draw(st.sampled_from([1e-8, 1e-3])), "weight_decay": decay}
    return param, grads, hyper


def check_against_torch(name, fn, param, grads, hyper):
    tensor = torch.tensor(param.copy(), requires_grad=True)
    optimizer = TORCH[name]([tensor], **hyper)
    ours, state = param.copy(), {}
    for g in grads:
        ours, state = fn(param=ours, grad=g.copy(), state=state, **hyper)
        tensor.grad = torch.tensor(g.copy())
        optimizer.step()
        np.testing.assert_allclose(ours, tensor.detach().numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("fn", implementations("sgd_momentum_step"))
@s.budget(60)
@given(data=st.data())
def test_sgd_momentum_step_matches_torch(fn, data):
    check_against_torch("sgd_momentum_step", fn, *data.draw(runs("sgd_momentum_step")))


@pytest.mark.parametrize("fn", implementations("rmsprop_step"))
@s.budget(60)
@given(data=st.data())
def test_rmsprop_step_matches_torch(fn, data):
    check_against_torch("rmsprop_step", fn, *data.draw(runs("rmsprop_step")))


@pytest.mark.parametrize("fn", implementations("adam_step"))
@s.budget(60)
@given(data=st.data())
def test_adam_step_matches_torch(fn, data):
    check_against_torch("adam_step", fn, *data.draw(runs("adam_step")))


@pytest.mark.parametrize("fn", implementations("adamw_step"))
@s.budget(60)
@given(data=st.data())
def test_adamw_step_matches_torch(fn, data):
    check_against_torch("adamw_step", fn, *data.draw(runs("adamw_step")))


@pytest.mark.parametrize("fn", implementations("clip_grad_norm"))
@s.budget(80)
@given(grads=st.lists(s.arrays(st.one_of(st.tuples(st.integers(1, 4)),
                                                   st.tuples(st.integers(1, 3), st.integers(1, 3))), magnitude=1e3), max_size=4),
       max_norm=st.sampled_from([1e-3, 0.5, 1.0, 100.0]))
def test_clip_grad_norm_matches_torch(fn, grads, max_norm):
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g.copy())
    before = [g.copy() for g in grads]
    total = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    clipped, our_total = fn(grads, max_norm)
    assert all(np.array_equal(a, b) for a, b in zip(grads, before))  # inputs unchanged
    assert our_total == pytest.approx(total, rel=1e-14, abs=0)
    for ours, p in zip(clipped, params):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-14, atol=0)
