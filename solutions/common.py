"""Helpers every chapter shares: the devices present, the threads to time with, and making runs repeatable."""
import os
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


TORCH_DEFAULT_THREADS = torch.get_num_threads()  # read at import, before make_deterministic or a timing changes it


def timing_threads():
    """How many CPU threads to time work with: one per core this process may run on, at most torch's own default.

    os.sched_getaffinity(0) is the set of cores the process may run on (a container's or a batch job's CPU set
    narrows it, while os.cpu_count() counts every core of the machine); torch starts with one thread per core of
    the machine as it counts them, or OMP_NUM_THREADS. A CPU quota (a container's `--cpus`) narrows neither: set
    OMP_NUM_THREADS there. More threads than free cores make every parallel step wait for the slowest thread
    (chapter 06 shows it).
    ->  int >= 1
    """
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(TORCH_DEFAULT_THREADS, usable))


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


def autocast_dtype(device):
    """The 16-bit dtype mixed precision on `device` should use: chapter 06's mixed_precision_step's default.

    - CUDA of compute capability 8.0 or more (A100, L4, H100): bfloat16, which their tensor cores run natively; it
      has float32's range and needs no GradScaler.
    - CUDA below 8.0 (Colab's free T4 is 7.5, a V100 7.0): float16, with a torch.amp.GradScaler. bfloat16 is only
      emulated there, slower than float32. torch.cuda.is_bf16_supported() cannot decide: it counts emulation (True on
      a T4) and asks about the current device, not `device`; the capability of `device` decides.
    - MPS: float16, torch's own autocast default there.
    - the CPU (and any other device): bfloat16, CPU autocast's default, no scaler.
    device: torch.device or str  ->  torch.bfloat16 or torch.float16
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if tuple(torch.cuda.get_device_capability(device)) >= (8, 0) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16
