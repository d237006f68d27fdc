"""Chapter 00's practice reference against torch."""
import numpy as np
import torch

from solutions.ch00_setup import sigmoid
from solutions.common import available_devices, make_deterministic


def test_sigmoid_matches_torch_without_warnings():
    x = np.concatenate([np.linspace(-1000, 1000, 2001), [0.0, -745.0, 745.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = sigmoid(x)
    np.testing.assert_allclose(ours, torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-300)


def test_make_deterministic_repeats_numbers():
    first = make_deterministic(3).normal(size=4), torch.rand(2)
    second = make_deterministic(3).normal(size=4), torch.rand(2)
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert torch.get_num_threads() == 1


def test_every_available_device_holds_a_tensor_and_the_cpu_comes_first():
    assert available_devices()[0] == "cpu"
    for name in available_devices():
        assert torch.zeros(1, device=name).device.type == name
