"""Helpers every chapter shares: the torch the course needs, the devices present, the threads to time with, and
making runs repeatable."""
import os
import random
import re

import numpy as np
import torch


TORCH_FLOOR = "2.6"  # the oldest torch with every API the course uses; the newest of them sets it: chapter 09's
# `from torch.distributed.fsdp import fully_shard` (FSDP2, public from torch 2.6). pyproject.toml's floor is the same
# (tests/test_torch_version.py keeps the two equal).


class TorchTooOld(RuntimeError):
    """The installed torch is older than TORCH_FLOOR. Its message is one line, and IPython shows that line alone."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


_RELEASE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?(?:\.?(a|b|rc|dev|post)\d*)?")


def torch_release(version: str):
    """The release a torch version string names, as a tuple that orders like the releases: (major, minor, micro,
    1 for a release or a post-release, 0 for a pre-release or a development build, which comes before its release).
    A local label (+cu124, +cpu, +git1234) says how it was built, not which release it is.
    "2.6.0+cu124" -> (2, 6, 0, 1); "2.13.0a0+gitabc1234" -> (2, 13, 0, 0); "2.6" -> (2, 6, 0, 1);
    None for a string that does not start with a release number.
    """
    found = _RELEASE.match(str(version))
    if found is None:
        return None
    major, minor, micro, tag = found.groups()
    return int(major), int(minor), int(micro or 0), 0 if tag in ("a", "b", "rc", "dev") else 1


def require_torch(version=None) -> None:
    """Stop with one line that says what to do where the installed torch (or `version`, a version string) is older
    than TORCH_FLOOR: each notebook's first code cell calls this, so that an old torch is named there instead of
    failing later, in the middle of a chapter, on an API it lacks. A version that cannot be read is let through.
    ->  None, or raises TorchTooOld
    """
    installed = str(torch.__version__ if version is None else version)
    found = torch_release(installed)
    if found is not None and found < torch_release(TORCH_FLOOR):
        raise TorchTooOld(f"this course needs torch {TORCH_FLOOR} or newer, and torch {installed} is installed: "
                          f'upgrade it with  %pip install --upgrade "torch>={TORCH_FLOOR}"  and restart the kernel '
                          "(on Colab: Runtime > Restart session).")


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
    - the CPU (and any other device): bfloat16, CPU autocast's default, no scaler. It pays only on a CPU with
      AVX512-BF16 or AMX; elsewhere bfloat16 is emulated and slower than float32, many times so with AVX2 only
      (chapter 06 measures it).
    device: torch.device or str  ->  torch.bfloat16 or torch.float16
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if tuple(torch.cuda.get_device_capability(device)) >= (8, 0) else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16
