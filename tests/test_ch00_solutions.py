"""Chapter 00's practice reference against torch."""
import numpy as np
import pytest
import torch

from solutions.ch00_setup import sigmoid
from solutions import common
from solutions.common import available_devices, make_deterministic, timing_threads
from tests.fixtures_threads import torch_globals_restored  # noqa: F401  (a fixture)


def test_sigmoid_matches_torch_without_warnings():
    x = np.concatenate([np.linspace(-1000, 1000, 2001), [0.0, -745.0, 745.0]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        ours = sigmoid(x)
    np.testing.assert_allclose(ours, torch.sigmoid(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-300)


def test_make_deterministic_repeats_numbers(torch_globals_restored):
    torch.set_num_threads(2)  # another count than the one it sets (pytest's workers start on 1, conftest.py)
    first = make_deterministic(3).normal(size=4), torch.rand(2)
    second = make_deterministic(3).normal(size=4), torch.rand(2)
    np.testing.assert_array_equal(first[0], second[0])
    assert torch.equal(first[1], second[1])
    assert torch.get_num_threads() == 1


def test_every_available_device_holds_a_tensor_and_the_cpu_comes_first():
    assert available_devices()[0] == "cpu"
    for name in available_devices():
        assert torch.zeros(1, device=name).device.type == name


@pytest.mark.parametrize("torch_default, affinity, cpu_count, expected", [
    (8, {0, 1}, 64, 2),  # a container pinned to 2 cores of a 64-core machine: torch's default counts all of them
    (4, set(range(8)), 8, 4),  # 4 cores with 2 hyper-threads each: torch's default, one per core
    (16, set(range(16)), 16, 16),
    (8, None, 12, 8),  # no sched_getaffinity (macOS, Windows): os.cpu_count()
    (8, None, None, 1),  # os.cpu_count() may say None
])
def test_timing_threads_uses_the_cores_this_process_may_run_on(monkeypatch, torch_default, affinity, cpu_count,
                                                                expected):
    monkeypatch.setattr(common, "TORCH_DEFAULT_THREADS", torch_default)
    if affinity is None:
        monkeypatch.delattr(common.os, "sched_getaffinity", raising=False)
    else:
        monkeypatch.setattr(common.os, "sched_getaffinity", lambda pid: affinity)
    monkeypatch.setattr(common.os, "cpu_count", lambda: cpu_count)
    assert timing_threads() == expected


def test_timing_threads_is_read_before_make_deterministic_changes_the_count(torch_globals_restored):
    make_deterministic(0, threads=1)
    assert timing_threads() == min(common.TORCH_DEFAULT_THREADS, len(common.os.sched_getaffinity(0)))
