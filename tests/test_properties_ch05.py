"""Property-based differential tests for chapter 05: each reference and every registered alternative against torch
(autograd for the penalties' gradients, torch.optim.SGD for the L2 step, torch.nn.functional.batch_norm and its
autograd for batch normalization), against closed forms (the proximal step's optimality conditions, dropout's mask
from the docstring's rule) and against an independent reading of early stopping's rule, on drawn shapes, magnitudes
and loss sequences with ties and NaN."""
import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from autograder.learner import drivers, registry
from solutions import ch05_regularization as ch05
from tests import strategies as s


def implementations(name):
    return [pytest.param(registry.get(f"ch05.{name}").reference, id="reference"), *s.alternatives(f"ch05.{name}")]


def test_alternatives_of_an_unknown_exercise_is_an_error_and_of_one_without_any_is_empty(monkeypatch):
    with pytest.raises(LookupError, match="'ch05.l2_penalti'"):  # a typo would have emptied a parametrization
        s.alternatives("ch05.l2_penalti")
    assert [param.id for param in s.alternatives("ch05.l2_penalty")]  # the real ones are there
    bare = dataclasses.replace(registry.get("ch05.l2_penalty"), alternatives=())
    monkeypatch.setattr(registry, "get", lambda exercise_id: bare)
    assert s.alternatives("ch05.l2_penalty") == []


weight_lists = st.lists(s.scaled_arrays(st.one_of(st.tuples(st.integers(1, 4)),
                                                  st.tuples(st.integers(1, 3), st.integers(1, 3)))), max_size=3)
lams = st.sampled_from([0.0, 1e-4, 0.01, 0.5, 3.0])


@pytest.mark.parametrize("fn", implementations("l2_penalty"))
@s.budget(40)
@given(weights=weight_lists, lam=lams)
def test_l2_penalty_is_autograds(fn, weights, lam):
    assert_penalty_is_autograds(fn, weights, lam, lambda t: lam / 2 * (t * t).sum(), rtol=1e-14)


def assert_penalty_is_autograds(fn, weights, lam, torch_term, rtol):
    """fn(weights, lam) -> (penalty, grads) equals the sum of torch_term over the weights and its autograd
    gradient (rtol on the gradient); no weights: penalty 0 and no gradients."""
    tensors = [torch.tensor(w, requires_grad=True) for w in weights]
    penalty, grads = fn([w.copy() for w in weights], lam)
    if tensors:
        theirs = sum(torch_term(t) for t in tensors)
        theirs.backward()
        assert penalty == pytest.approx(theirs.item(), rel=1e-12, abs=1e-300)
        assert len(grads) == len(tensors) > 0, f"{len(grads)} gradients for {len(tensors)} weights"
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=rtol, atol=0)
    else:
        assert penalty == 0 and grads == []


@pytest.mark.parametrize("fn", implementations("l1_penalty"))
@s.budget(40)
@given(weights=st.lists(s.with_kinks(st.tuples(st.integers(1, 3), st.integers(1, 4))), max_size=3), lam=lams)
def test_l1_penalty_is_autograds_zero_at_the_kink(fn, weights, lam):
    assert_penalty_is_autograds(fn, weights, lam, lambda t: lam * t.abs().sum(), rtol=1e-15)


steps = st.tuples(st.integers(1, 4), st.integers(1, 3)).flatmap(
    lambda shape: st.tuples(s.scaled_arrays(shape), s.scaled_arrays(shape)))


@pytest.mark.parametrize("fn", implementations("sgd_l2_step"))
@s.budget(40)
@given(pair=steps, lr=st.sampled_from([1e-3, 0.1, 1.0]), weight_decay=lams)
def test_sgd_l2_step_is_torch_sgd_with_weight_decay(fn, pair, lr, weight_decay):
    param, grad = pair
    tensor = torch.tensor(param.copy(), requires_grad=True)
    tensor.grad = torch.tensor(grad.copy())
    torch.optim.SGD([tensor], lr=lr, weight_decay=weight_decay).step()
    ours = fn(param.copy(), grad.copy(), lr, weight_decay)
    scale = np.abs(param) + lr * (np.abs(grad) + weight_decay * np.abs(param))
    assert np.all(np.abs(ours - tensor.detach().numpy()) <= 1e-14 * scale + 1e-300)


@pytest.mark.parametrize("fn", implementations("l1_prox_step"))
@s.budget(50)
@given(pair=steps, lr=st.sampled_from([1e-3, 0.1, 1.0]), lam=lams)
def test_l1_prox_step_satisfies_the_optimality_conditions(fn, pair, lr, lam):
    """The result p minimizes ½‖p − z‖² + t‖p‖₁ (z = θ − lr·∇J, t = lr·λ): where p ≠ 0, p − z + t·sign(p) = 0 with
    sign(p) = sign(z); where p = 0, |z| ≤ t."""
    param, grad = pair
    z, t = param - lr * grad, lr * lam
    p = fn(param.copy(), grad.copy(), lr, lam)
    tol = 1e-14 * (np.abs(z) + t) + 1e-300
    nonzero = p != 0
    assert np.all(np.abs(p - z + t * np.sign(p))[nonzero] <= tol[nonzero])
    assert np.all(np.sign(p[nonzero]) == np.sign(z[nonzero]))
    assert np.all(np.abs(z[~nonzero]) <= t + tol[~nonzero])


@pytest.mark.parametrize("cls", implementations("Dropout"))
@s.budget(40)
@given(shape=s.shapes(max_rows=6, max_cols=6), p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
       seed=st.integers(0, 2**32 - 1), data=st.data())
def test_dropout_mask_is_the_docstrings_rule_and_backward_reuses_it(cls, shape, p, seed, data):
    x = data.draw(s.scaled_arrays(shape))
    dout = data.draw(s.scaled_arrays(shape))
    layer = cls(p, np.random.default_rng(seed))
    u = np.random.default_rng(seed).random(shape)
    mask = np.zeros(shape) if p == 1 else (u >= p) / (1 - p)
    np.testing.assert_allclose(layer.forward(x.copy()), x * mask, rtol=1e-15, atol=0)
    np.testing.assert_allclose(layer.backward(dout.copy()), dout * mask, rtol=1e-15, atol=0)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x.copy()), x)
    np.testing.assert_array_equal(layer.backward(dout.copy()), dout)


@pytest.mark.parametrize("cls", implementations("Dropout"))
@s.budget(20)
@given(shape=s.shapes(max_rows=6, max_cols=6), p=st.sampled_from([0.0, 0.5, 1.0]), seed=st.integers(0, 2**32 - 1),
       data=st.data())
def test_dropout_keeps_a_float32_input_float32_in_every_call(cls, shape, p, seed, data):
    x = data.draw(s.scaled_arrays(shape)).astype(np.float32)
    layer = cls(p, np.random.default_rng(seed))
    outputs = [layer.forward(x.copy()), layer.backward(x.copy())]
    layer.eval()
    outputs += [layer.forward(x.copy()), layer.backward(x.copy())]
    assert [out.dtype for out in outputs] == [np.float32] * 4


def stopping_rule(losses, patience, min_delta):
    """Early stopping read off the whole sequence: epoch e improves when losses[e] < min(earlier improvements) −
    min_delta; training stops at the first epoch that is `patience` epochs after the last improvement (or after
    the start, with no improvement yet)."""
    best, best_epoch, last_good = math.inf, -1, -1
    for epoch, loss in enumerate(losses):
        if loss < best - min_delta:
            best, best_epoch, last_good = loss, epoch, epoch
        if epoch - last_good >= patience:
            return epoch, best, best_epoch
    return None, best, best_epoch


@pytest.mark.parametrize("cls", implementations("EarlyStopping"))
@s.budget(60)
@given(losses=st.lists(st.one_of(st.sampled_from([0.5, 0.4, 0.3, math.nan]), st.floats(0.0, 2.0)), min_size=1,
                       max_size=12),
       patience=st.integers(1, 4), min_delta=st.sampled_from([0.0, 0.05]))
def test_early_stopping_follows_the_rule_and_keeps_the_best_epochs_weights(cls, losses, patience, min_delta):
    args = {"params": {"patience": patience, "min_delta": min_delta},
            "calls": [["step", {"val_loss": loss, "weights": [np.full((2, 2), float(epoch))]}]
                      for epoch, loss in enumerate(losses)],
            "attributes": ["best_loss", "best_epoch", "best_weights"]}
    stops, best_loss, best_epoch, best_weights = drivers.method_calls(cls, args)
    stop_epoch, expected_loss, expected_epoch = stopping_rule(losses, patience, min_delta)
    first_stop = next((epoch for epoch, stop in enumerate(stops) if stop), None)
    assert first_stop == stop_epoch
    if stop_epoch is not None:  # what a training loop that stops there sees
        _, expected_loss, expected_epoch = stopping_rule(losses[:stop_epoch + 1], patience, min_delta)
        args["calls"] = args["calls"][:stop_epoch + 1]
        stops, best_loss, best_epoch, best_weights = drivers.method_calls(cls, args)
    assert (best_loss, best_epoch) == (expected_loss, expected_epoch)
    if expected_epoch >= 0:
        np.testing.assert_array_equal(best_weights[0], np.full((2, 2), float(expected_epoch)))
    else:
        assert best_weights is None


def batches(min_rows=2):
    return st.tuples(st.integers(min_rows, 8), st.integers(1, 4)).flatmap(
        lambda shape: st.tuples(s.scaled_arrays(shape, exponents=(-2, 3)), s.scaled_arrays(shape)))


@pytest.mark.parametrize("fn", implementations("batchnorm_forward"))
@s.budget(30)
@given(pair=batches(), training=st.booleans(), momentum=st.sampled_from([0.1, 0.5, 1.0]),
       eps=st.sampled_from([1e-5, 1e-3]), seed=st.integers(0, 1000))
def test_batchnorm_forward_is_torchs(fn, pair, training, momentum, eps, seed):
    x, _ = pair
    d = x.shape[1]
    rng = np.random.default_rng(seed)
    gamma, beta, mean, var = rng.normal(size=d) + 1, rng.normal(size=d), rng.normal(size=d), rng.random(d) + 0.1
    mean_t, var_t = torch.tensor(mean), torch.tensor(var)
    theirs = torch.nn.functional.batch_norm(torch.tensor(x), mean_t, var_t, torch.tensor(gamma), torch.tensor(beta),
                                            training=training, momentum=momentum, eps=eps)
    out, new_mean, new_var = fn(x.copy(), gamma, beta, mean.copy(), var.copy(), training=training,
                                momentum=momentum, eps=eps)
    np.testing.assert_allclose(out, theirs.numpy(), rtol=1e-8, atol=1e-9 * np.abs(gamma).max() + 1e-12)
    np.testing.assert_allclose(new_mean, mean_t.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(new_var, var_t.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("fn", implementations("batchnorm_backward"))
@s.budget(25)
@given(pair=batches(), eps=st.sampled_from([1e-5, 1e-3]), seed=st.integers(0, 1000))
def test_batchnorm_backward_is_autograds(fn, pair, eps, seed):
    x, dout = pair
    gamma = np.random.default_rng(seed).normal(size=x.shape[1]) + 1
    xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(gamma, requires_grad=True)
    bt = torch.zeros_like(gt, requires_grad=True)
    torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps).backward(torch.tensor(dout))
    dx, dgamma, dbeta = fn(dout.copy(), x.copy(), gamma, eps=eps)
    scale = np.abs(dout).max() * np.abs(gamma).max() / math.sqrt(eps)  # the largest a gradient entry can be
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-7, atol=1e-10 * scale)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-7, atol=1e-10 * np.abs(dout).sum())
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-9, atol=1e-12 * np.abs(dout).sum())
