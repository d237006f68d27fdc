"""solutions/models.py: the torch.nn network later chapters train is chapter 03's network, with its gradients."""
import numpy as np
import pytest
import torch

from solutions import ch03_backpropagation as ch03
from solutions import models


def as_chapter_03_params(model):
    W1, b1, W2, b2 = models.parameter_arrays(model)
    return {"W1": W1.T, "b1": b1, "W2": W2.T, "b2": b2}


def test_mlp_starts_from_chapter_03s_he_weights_and_zero_biases():
    model = models.mlp([64, 32, 10], seed=3)
    rng = np.random.default_rng(3)
    first, second = ch03.Linear.he(64, 32, rng), ch03.Linear.he(32, 10, rng)
    params = as_chapter_03_params(model)
    for name, layer in (("1", first), ("2", second)):
        np.testing.assert_array_equal(params["W" + name], layer.W)
        np.testing.assert_array_equal(params["b" + name], layer.b)
    assert [type(layer) for layer in model] == [torch.nn.Linear, torch.nn.ReLU, torch.nn.Linear]
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_loss_and_grads_equal_chapter_03s_two_layer_network():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 6)), rng.integers(0, 4, size=20)
    model = models.mlp([6, 9, 4], seed=1)
    loss, grads = models.loss_and_grads(model, X, y)
    their_loss, theirs = ch03.two_layer_loss_and_grads(as_chapter_03_params(model), X, y)
    assert loss == pytest.approx(their_loss, rel=1e-12)
    for ours, name, transpose in zip(grads, ["W1", "b1", "W2", "b2"], [True, False, True, False]):
        np.testing.assert_allclose(ours.T if transpose else ours, theirs[name], rtol=1e-10, atol=1e-14)
    again = models.loss_and_grads(model, X, y)[1]  # gradients do not accumulate across calls
    assert all(np.array_equal(a, b) for a, b in zip(grads, again))


def test_parameter_arrays_write_through_to_the_model():
    model = models.mlp([3, 2], seed=0)
    weight = models.parameter_arrays(model)[0]
    weight[...] = 7.0
    assert torch.all(model[0].weight == 7.0)


def test_sgd_gradient_sequence_replays_plain_sgd_on_chapter_03s_network():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 5)), rng.integers(0, 3, size=50)
    sequence = models.sgd_gradient_sequence(X, y, 4, steps=6, batch_size=10, lr=0.3, rng=np.random.default_rng(9))
    replay = np.random.default_rng(9)
    params = as_chapter_03_params(models.mlp([5, 4, 3], seed=int(replay.integers(2**31))))
    params = {name: value.copy() for name, value in params.items()}
    for recorded in sequence:
        batch = replay.choice(len(y), 10, replace=False)
        _, grads = ch03.two_layer_loss_and_grads(params, X[batch], y[batch])
        for name in params:
            np.testing.assert_allclose(recorded[name], grads[name], rtol=1e-9, atol=1e-13)
            params[name] = params[name] - 0.3 * grads[name]
    assert len({float(np.abs(g["W1"]).sum()) for g in sequence}) == 6  # the network moved between steps


def test_digits_cnn_maps_8x8_images_to_10_scores_from_its_seed_alone():
    before = torch.get_rng_state()
    model, again, other = models.digits_cnn(seed=4), models.digits_cnn(seed=4), models.digits_cnn(seed=5)
    assert torch.equal(torch.get_rng_state(), before)  # the global generator is left as it was
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    assert not torch.equal(model[0].weight, other[0].weight)
    assert model.eval()(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == 160 + 4640 + 5130
    assert [type(layer).__name__ for layer in model] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "MaxPool2d", "Dropout",
                                                         "Flatten", "Linear"]
