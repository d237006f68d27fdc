"""Helpers every chapter shares: the devices present, and making runs repeatable."""
import random

import numpy as np
import torch


def available_devices():
    """The names of the devices torch can use on this machine, the CPU first: ["cpu"], ["cpu", "cuda"] or
    ["cpu", "mps"]."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.append("mps")
    return found


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
