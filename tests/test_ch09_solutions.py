"""Chapter 09's references against torch's own tools: int8 quantization against torch.quantize_per_tensor and
quantize_per_channel, global pruning against torch.nn.utils.prune on a real network, SGD on a pruned weight against
prune's weight_orig · mask trained by torch.optim.SGD on digits, the distillation loss against F.kl_div, the memory
estimate against what torch holds (saved_tensors_hooks and the optimizer's state), DP-SGD against a per-sample loop."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune

from autograder.learner import drivers
from solutions import ch09_deployment as ch09
from solutions import models
from solutions.data import digits


def quantized_by_torch(x, scale, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 marks the quantized tensor types deprecated
        if axis is None:
            return torch.quantize_per_tensor(x, float(scale), 0, torch.qint8).int_repr()
        zero = torch.zeros(len(scale), dtype=torch.int64)
        return torch.quantize_per_channel(x, scale.float(), zero, 0, torch.qint8).int_repr()


@pytest.mark.parametrize("axis", [None, 0])
def test_quantize_matches_torch_quantize_per_tensor_and_per_channel(axis):
    model = models.mlp([64, 32, 10], seed=3, dtype=torch.float32)
    for weight in (model[0].weight.detach(), model[2].weight.detach()):
        q, scale = ch09.quantize_int8(weight, axis=axis)
        assert q.dtype == torch.int8 and q.abs().max() == 127
        assert torch.equal(q, quantized_by_torch(weight, scale, axis))
        error = (weight - ch09.dequantize_int8(q, scale, axis=axis)).abs()
        bound = scale / 2 if axis is None else (scale / 2)[:, None]
        assert torch.all(error <= bound * (1 + 1e-6))


def test_a_given_scale_clamps_and_per_channel_error_is_smaller_than_per_tensor():
    x = torch.tensor([[0.1, -5.0, 0.004], [0.002, 0.001, -0.003]])
    q, _ = ch09.quantize_int8(x, scale=torch.tensor(0.01))
    assert q.tolist() == [[10, -127, 0], [0, 0, 0]]
    per_tensor = (x - ch09.dequantize_int8(*ch09.quantize_int8(x))).abs().max(dim=1).values
    per_channel = (x - ch09.dequantize_int8(*ch09.quantize_int8(x, axis=0), axis=0)).abs().max(dim=1).values
    assert per_channel[1] < per_tensor[1] / 100  # the small row keeps its own scale


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.35, 0.8, 1.0])
def test_magnitude_prune_matches_global_unstructured_on_a_network(sparsity):
    model = models.mlp([64, 16, 8, 10], seed=1)
    linears = [model[0], model[2], model[4]]
    masks = ch09.magnitude_prune([layer.weight for layer in linears], sparsity)
    prune.global_unstructured([(layer, "weight") for layer in linears], pruning_method=prune.L1Unstructured,
                              amount=sparsity)
    for mask, layer in zip(masks, linears):
        assert mask.dtype == torch.bool and torch.equal(mask, layer.weight_mask.bool())


def test_magnitude_prune_of_one_tensor_is_l1_unstructured():
    layer = torch.nn.Linear(13, 7, dtype=torch.float64)
    (mask,) = ch09.magnitude_prune([layer.weight], 0.45)
    prune.l1_unstructured(layer, "weight", amount=0.45)
    assert torch.equal(mask, layer.weight_mask.bool())


def test_pruned_sgd_follows_torch_prune_trained_by_sgd_on_digits():
    """torch.nn.utils.prune trains weight_orig (its gradient masked by the chain rule) and uses weight_orig · mask;
    pruned_sgd, given the same gradients, gives that same weight after every step, with the pruned entries at 0."""
    X, _, y, _ = digits()
    X, y = torch.from_numpy(X[:256]), torch.from_numpy(y[:256])
    model = models.mlp([64, 32, 10], seed=2)
    layer = model[0]
    prune.l1_unstructured(layer, "weight", amount=0.7)
    mask, start = layer.weight_mask.bool(), layer.weight_orig.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    grads, weights = [], []
    for step in range(10):
        batch = slice(32 * step % 256, 32 * step % 256 + 32)
        optimizer.zero_grad()
        F.cross_entropy(model(X[batch]), y[batch]).backward()
        grads.append(layer.weight_orig.grad.clone())
        optimizer.step()
        weights.append((layer.weight_orig * layer.weight_mask).detach().clone())  # what the next forward uses
    ours = ch09.pruned_sgd(start, mask, grads, lr=0.1, momentum=0.9)
    assert len(ours) == len(weights) == 10, f"{len(ours)} weights for 10 steps"
    for mine, theirs in zip(ours, weights, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-12, atol=1e-14)
        assert torch.all(mine[~mask] == 0)


def test_distillation_loss_matches_kl_div_and_its_soft_gradient_keeps_its_size_across_temperatures():
    generator = torch.Generator().manual_seed(0)
    student = torch.randn(32, 10, generator=generator, dtype=torch.float64, requires_grad=True)
    teacher = torch.randn(32, 10, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, 10, (32,), generator=generator)
    for t, alpha in [(1.0, 0.5), (4.0, 0.9), (10.0, 1.0)]:
        ours = ch09.distillation_loss(student, teacher, labels, t, alpha)
        theirs = alpha * t * t * F.kl_div(F.log_softmax(student / t, dim=1), F.log_softmax(teacher / t, dim=1),
                                          reduction="batchmean", log_target=True) \
            + (1 - alpha) * F.cross_entropy(student, labels)
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=0)
    sizes = []
    for t in (4.0, 16.0):
        (grad,) = torch.autograd.grad(ch09.distillation_loss(student, teacher, labels, t, 1.0), student)
        sizes.append(float(grad.norm()))
    assert 0.5 < sizes[1] / sizes[0] < 1.5  # with T²; without it the ratio would be about 1/16


@pytest.mark.parametrize("sizes, batch, optimizer, dtype_bytes", [
    ([64, 32, 10], 8, "adam", 4), ([64, 128, 64, 10], 100, "momentum", 8), ([5, 3], 1, "sgd", 4),
    ([784, 256, 10], 64, "adam", 4)])
def test_training_memory_matches_what_torch_holds(sizes, batch, optimizer, dtype_bytes):
    from autograder.instructor.exercises.ch09 import _memory_measured

    assert ch09.training_memory(sizes, batch, optimizer, dtype_bytes) == \
        _memory_measured(sizes, batch, optimizer, dtype_bytes)


@pytest.mark.parametrize("model", ["softmax regression", "two-layer tanh"])
def test_dp_sgd_matches_a_per_sample_loop_and_its_noise_has_the_stated_size(model):
    from autograder.instructor.exercises.ch09 import _dp_case, _dp_loop

    args = _dp_case(7, model, 12, max_norm=0.2, noise_multiplier=1.5)()
    ours = drivers.dp_sgd_on_a_model(ch09.dp_sgd_gradient, args)
    theirs = drivers.dp_sgd_on_a_model(_dp_loop, args)
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-10, atol=1e-12)
    # the noise's size, on a case with some 10 000 entries (seeded: the same draws on every run): with n draws of
    # σ C z, the sample standard deviation has a standard error of σ C / √(2(n − 1)) (about 0.7 % here), the mean
    # one of σ C / √n; both within 5 standard errors (a correct sum fails with a chance below 1e-6), so that a
    # noise scale off by 1.2 (or by √N, or divided by N twice) is far outside
    args = _dp_case(9, model, 12, d=100, c=100, hidden=50, max_norm=0.2, noise_multiplier=1.5)()
    noisy = drivers.dp_sgd_on_a_model(ch09.dp_sgd_gradient, args)
    quiet = drivers.dp_sgd_on_a_model(ch09.dp_sgd_gradient, {**args, "noise_multiplier": 0.0})
    noise = torch.cat([(noisy[name] - quiet[name]).reshape(-1) for name in noisy]) * 12  # σ C z
    n, size = len(noise), 1.5 * 0.2
    assert n > 5000
    assert abs(float(noise.std()) / size - 1) < 5 / (2 * (n - 1)) ** 0.5, float(noise.std()) / size
    assert abs(float(noise.mean())) / size < 5 / n ** 0.5
    args = _dp_case(8, model, 12, max_norm=0.2, noise_multiplier=0.0)()
    mean = drivers.dp_sgd_on_a_model(ch09.dp_sgd_gradient, args)
    assert float(torch.sqrt(sum(g.pow(2).sum() for g in mean.values()))) <= 0.2 + 1e-9  # a mean of norms ≤ C
