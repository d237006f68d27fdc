"""Stored outputs hold on another CPU: the notebooks whose compared outputs come from training runs, executed
by nbval with the kernels of a CPU of the other kind.

torch, oneDNN, MKL, OpenBLAS and numpy each pick their kernels by the CPU's instruction set, so a float32 sum
rounds differently in the last bit on a CPU with AVX-512 than on one with only AVX2, and a training run
amplifies that into other printed digits. Each library has a switch that makes it run the kernels of a lesser
CPU in one process (tests/README.md lists them, and what each changes with the pinned versions); this test runs
nbval with all of them set:

- on a CPU with AVX-512, as a CPU with AVX2 (the other common kind of x86-64 machine);
- on any other x86-64 CPU, with no vector kernels at all (torch's `default` capability, oneDNN at SSE4.1,
  MKL's compatible path, OpenBLAS's Nehalem kernels, numpy without its AVX2 loops).

So on either kind of CI machine the stored outputs are checked against that machine (nbval's own run) and
against a simulated machine of another kind (here). Only the notebooks with compared results of training runs
are run twice (NOTEBOOKS); `pytest -m extended tests/test_other_cpus.py` runs every notebook that way.
"""
import os
import platform
import subprocess
import sys

import pytest
import torch

from autograder.instructor import notebooks

# What each simulated CPU is called by torch (its capability), and the switches that make this machine one.
NO_VECTOR_KERNELS = "DEFAULT", {
    "ATEN_CPU_CAPABILITY": "default",  # torch's own kernels: elementwise, reductions, small products
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN: convolutions
    "MKL_CBWR": "COMPATIBLE",  # MKL: float32 and float64 matrix products
    "OPENBLAS_CORETYPE": "Nehalem",  # numpy's OpenBLAS: matrix products
    "NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR",  # numpy's own loops (exp, tanh, ...)
}
AVX2 = "AVX2", {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    "OPENBLAS_CORETYPE": "Haswell",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
}
SWITCHES = set(NO_VECTOR_KERNELS[1]) | set(AVX2[1])

# The notebooks whose compared outputs come from training runs (losses, accuracies, counts of test digits);
# the others print exact or bounded results, which a CPU of another kind does not change.
NOTEBOOKS = ["ch05", "ch07", "ch09"]

X86 = platform.machine().lower() in ("x86_64", "amd64")
NATIVE = torch.backends.cpu.get_cpu_capability()


def other_cpu():
    """(torch's name for a CPU of another kind than this one, the switches that make this machine compute as it)."""
    return AVX2 if NATIVE.startswith("AVX512") else NO_VECTOR_KERNELS


def environment(switches):
    env = {key: value for key, value in os.environ.items() if key not in SWITCHES}
    return {**env, **switches}


KERNELS_PROBE = """
import hashlib, numpy as np, torch, torch.nn.functional as F
torch.manual_seed(0); torch.set_num_threads(1)
a, b = torch.randn(300, 257), torch.randn(257, 129)
x, w = torch.randn(8, 3, 20, 20), torch.randn(6, 3, 3, 3)
r = np.random.default_rng(0)
na, nb = r.standard_normal((300, 257)), r.standard_normal((257, 129))
digest = lambda t: hashlib.sha256(np.ascontiguousarray(t).tobytes()).hexdigest()[:16]
print(torch.backends.cpu.get_cpu_capability())
print(digest(torch.cat([(a @ b).flatten(), a.sum(1), a.exp().flatten(), F.log_softmax(a, 1).flatten()]).numpy()))
print(digest(F.conv2d(x, w).numpy()))
print(digest(na @ nb))
"""


def probe(switches):
    result = subprocess.run([sys.executable, "-c", KERNELS_PROBE], env=environment(switches), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.skipif(not X86, reason="the switches simulate x86-64 CPUs; this machine is not one")
def test_the_simulated_cpu_runs_other_kernels():
    """The switches still work with the pinned versions: torch reports the other capability, and the probes' last
    bits change. Without vector kernels (measured on an AVX2 machine) each library's probe changes: torch's
    products, sums and exponentials, oneDNN's convolution, numpy's OpenBLAS product. Between AVX-512 and AVX2 kernels
    some of them may round alike, so there at least one must change."""
    capability, switches = other_cpu()
    native, simulated = probe({}), probe(switches)
    assert simulated[0] == capability, f"torch ignored ATEN_CPU_CAPABILITY: {simulated[0]}"
    assert native[0] == NATIVE
    assert simulated[1:] != native[1:], "every probe gave the same bits: the simulated CPU is not another one"
    if capability == "DEFAULT":
        assert simulated[1] != native[1], "torch's kernels gave the same bits: ATEN_CPU_CAPABILITY was ignored"
        assert simulated[2] != native[2], "oneDNN's convolution gave the same bits: ONEDNN_MAX_CPU_ISA was ignored"
        assert simulated[3] != native[3], "OpenBLAS gave the same bits: OPENBLAS_CORETYPE was ignored"


def run_nbval(path, switches):
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-o", "addopts=",
               "--nbval", "--nbval-current-env", "--nbval-cell-timeout=180", "-q", "--no-header", str(path)]
    return subprocess.run(command, env=environment(switches), capture_output=True, text=True, timeout=900,
                          cwd=notebooks.ROOT)


class _StoredOutputsOnTheOtherKindOfCPU:
    """One notebook under nbval on a simulated CPU of the other kind. One class per notebook below, so that
    pytest-xdist (which keeps a class on one worker) runs the notebooks on different workers."""

    chapter = ""

    @pytest.mark.slow
    @pytest.mark.skipif(not X86, reason="the switches simulate x86-64 CPUs; this machine is not one")
    def test_stored_outputs_hold_on_a_cpu_of_the_other_kind(self):
        path = notebooks.chapter_notebook(self.chapter)
        capability, switches = other_cpu()
        result = run_nbval(path, switches)
        simulated = " ".join(f"{key}={value}" for key, value in switches.items())
        assert result.returncode == 0, (
            f"{path.name}: stored outputs differ on a simulated {capability} CPU ({simulated}); "
            f"print fewer digits, or compute the run in float64, or mark the cell with a reason:\n"
            + result.stdout[-6000:])


for _chapter in notebooks.chapter_modules():
    _marks = [] if _chapter in NOTEBOOKS else [pytest.mark.extended]
    _name = f"TestStoredOutputsOf{_chapter.upper()}OnAnotherCPU"
    globals()[_name] = type(_name, (_StoredOutputsOnTheOtherKindOfCPU,), {"chapter": _chapter, "pytestmark": _marks})
