"""Helpers every chapter shares: choosing a device and making runs repeatable."""
import random

import numpy as np
import torch


def pick_device(prefer=None):
    """The best device on this machine: CUDA if present, else Apple's MPS, else the CPU.

    `prefer` ("cpu", "cuda", "mps") forces a choice, e.g. to compare speeds.
    ->  torch.device
    """
    if prefer is not None:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_deterministic(seed=0, threads=1):
    """Seed Python, numpy's legacy global generator and torch, and fix torch's CPU thread count.

    The course passes explicit generators (`np.random.default_rng(seed)`, `torch.Generator`) to
    anything random; this guards the code that still reads global state. One thread makes float
    sums add up in the same order on every machine, so printed figures repeat exactly.
    ->  numpy.random.Generator seeded with `seed`
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    return np.random.default_rng(seed)
