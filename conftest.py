"""Settings for the whole test session: one thread per numerical library in every test process.

pytest-xdist runs one worker per core, and each worker starts kernels, sandboxes and torchrun ranks. Left alone,
numpy's OpenBLAS and torch's OpenMP and MKL each start one thread per core in every one of those processes, so a
2-core machine runs 4 or more busy threads on 2 cores: every parallel step waits for a thread that lost its core
(chapter 06 shows it). Chapter 03's notebook took 112 s beside one busy core with two OpenBLAS threads, and 26 s
with one. The variables are read when a library starts, so they are set here, before the workers and everything
they start exist; a value set by the caller is kept.
"""
import os

# The `isolation` fixture: a test of the sandbox's isolation fails, not skips, where the host can isolate.
pytest_plugins = ["tests.isolation_required"]

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")


def pytest_collection_modifyitems(items):
    """The notebooks run on a simulated CPU first (tests/test_other_cpus.py: three single tests of about 40 s),
    then everything else in the order collected. pytest-xdist hands out whole modules, classes and notebooks in
    that order (`--no-loadscope-reorder`), so the longest single tests start at once; in its default order (by
    number of tests, most first) they came last, and one of them ran alone on an otherwise idle machine."""
    items.sort(key=lambda item: "OnAnotherCPU" not in item.nodeid)
