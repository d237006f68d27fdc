"""Timing and reporting shared by every benchmark module (`benchmarks/bench_*.py`).

A benchmark module defines `run() -> list[Comparison]`. Each comparison times our code and a peer
doing the same work in the same process, one right after the other, and reports the ratio of
their median times (ours / peer: below 1 means ours is faster).
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class Comparison:
    name: str
    ours: str
    peer: str
    ours_s: float
    peer_s: float
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.ours_s / self.peer_s


def median_time(fn: Callable[[], object], repeats: int = 7, min_time: float = 0.05) -> float:
    """Median seconds per call of `fn`, each sample looping until it lasts at least `min_time`."""
    fn()  # warm up: imports, allocations, caches
    loops = 1
    while True:
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            break
        loops *= 2
    samples = [elapsed / loops]
    for _ in range(repeats - 1):
        start = time.perf_counter()
        for _ in range(loops):
            fn()
        samples.append((time.perf_counter() - start) / loops)
    return statistics.median(samples)


def compare(name: str, ours: tuple[str, Callable], peer: tuple[str, Callable], note: str = "", **timing) -> Comparison:
    return Comparison(name, ours[0], peer[0], median_time(ours[1], **timing), median_time(peer[1], **timing), note)


def machine() -> str:
    import numpy as np
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}; {os.cpu_count()} cores; Python {platform.python_version()}; numpy {np.__version__}; "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads)")


def fmt_seconds(seconds: float) -> str:
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def table(results: list[Comparison]) -> str:
    rows = [("benchmark", "ours", "time", "peer", "time", "ours/peer")]
    rows += [(r.name, r.ours, fmt_seconds(r.ours_s), r.peer, fmt_seconds(r.peer_s), f"{r.ratio:.2f}x")
             for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    notes = [f"  {r.name}: {r.note}" for r in results if r.note]
    return "\n".join(lines + (["", "notes:"] + notes if notes else []))
