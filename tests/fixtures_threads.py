"""A fixture for tests that call make_deterministic (or anything else that sets torch's process-wide state).

make_deterministic fixes torch's CPU thread count for the whole process; a test that calls it would leave every
later test of its pytest worker on that count, so results and timings would depend on the order the tests ran in.
`torch_globals_restored` puts back what such a test may change (the thread count, the deterministic-algorithms
flags, cudnn's flags; seeds are left as the test set them) and then checks that the count is the one from before.
Import it into a test module (`from tests.fixtures_threads import torch_globals_restored  # noqa: F401`).
"""
import pytest
import torch


@pytest.fixture
def torch_globals_restored():
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    yield threads
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
    assert torch.get_num_threads() == threads, "the test left torch on another thread count"
    assert torch.are_deterministic_algorithms_enabled() == deterministic
    assert (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) == cudnn
