"""Chapter 06: matrix products against the device's estimated peak, training-step throughput against the batch size, float32 against 16-bit autocast.

Every figure is a ratio measured in one run on one device (CUDA when present, else the CPU, with all its cores):
- a float32 n x n product (n = 256 and 2048) against the time it would take at the estimated float32 peak, 2n³ / peak.
  The CPU's peak is cores x clock x FLOPs per cycle (clock from /proc/cpuinfo's "cpu MHz", the highest core's, else
  3 GHz assumed; 64 FLOPs per cycle with AVX-512, 32 with AVX2 + FMA, else 16: a rough rule, which chapter 06
  refines per microarchitecture); a GPU's is chapter 06's float32 table, by whole words of its name (a GPU not in
  it gets no product rows);
- one SGD step of the chapter's digits network (64 -> 512 -> 512 -> 10) per sample, at batch 32 against batch 1024:
  how much of a small batch's step is fixed cost;
- the same step at batch 1024 with torch.autocast (bfloat16 on the CPU, float16 on CUDA) against float32.
"""
import os

import torch

from benchmarks.harness import Comparison, median_time
from solutions.common import timing_threads

def peak_flops(device):
    """(estimated float32 peak FLOP/s of `device`, how it was estimated). A GPU's is chapter 06's own table, matched
    by whole words of its name (`benchmarks.gpu.chapter_peak_lookup`); one not in it gets none, and the product's
    row says so."""
    if device.type == "cuda":
        from benchmarks.gpu import chapter_peak_lookup

        name = torch.cuda.get_device_name(device)
        tflops = chapter_peak_lookup()(name)
        return (tflops * 1e12, f"{name}, {tflops} TFLOP/s (chapter 06's table)") if tflops else \
            (None, f"{name}: not in chapter 06's table")
    text = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    mhz = [float(line.split(":")[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    clock = max(mhz) * 1e6 if mhz else 3e9
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "").split()
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags and "fma" in flags else 16
    cores = torch.get_num_threads()
    return cores * clock * per_cycle, (f"{cores} threads x {clock / 1e9:.2f} GHz{'' if mhz else ' (assumed)'} x "
                                       f"{per_cycle} FLOPs/cycle")


def _timed(fn, device):
    """Median seconds of fn(), synchronizing a GPU after each call."""
    if device.type == "cuda":
        def synced():
            fn()
            torch.cuda.synchronize()
        return median_time(synced, repeats=5, min_time=0.05)
    return median_time(fn, repeats=5, min_time=0.05)


def _network(width=512):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, width), torch.nn.ReLU(), torch.nn.Linear(width, width),
                               torch.nn.ReLU(), torch.nn.Linear(width, 10))


def _step(model, optimizer, x, y, dtype=None):
    optimizer.zero_grad()
    with torch.autocast(x.device.type, dtype=dtype or torch.bfloat16, enabled=dtype is not None):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()


def run():
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(timing_threads())  # one per usable core: more would oversubscribe the machine
    peak, how = peak_flops(device)
    results = []
    for n in (256, 2048) if peak else ():
        a = torch.randn(n, n, device=device)
        seconds = _timed(lambda: a @ a, device)
        ideal = 2 * n ** 3 / peak
        results.append(Comparison(f"{n} x {n} float32 product on {device.type}", "measured", "at the peak", seconds,
                                  ideal, f"{ideal / seconds:.0%} of the estimated peak ({how}); "
                                         f"{2 * n ** 3 / seconds / 1e9:.0f} GFLOP/s"))
    generator = torch.Generator().manual_seed(0)
    X = torch.rand(1024, 64, generator=generator).to(device)
    y = torch.randint(0, 10, (1024,), generator=generator).to(device)
    model = _network().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    small = _timed(lambda: _step(model, optimizer, X[:32], y[:32]), device)
    large = _timed(lambda: _step(model, optimizer, X, y), device)
    results.append(Comparison(f"training step per sample on {device.type}", "batch 32", "batch 1024", small / 32,
                              large / 1024, f"{32 / small:.0f} vs {1024 / large:.0f} samples/s"))
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    mixed = _timed(lambda: _step(model, optimizer, X, y, low), device)
    results.append(Comparison(f"training step, batch 1024, on {device.type}", f"{str(low)[6:]} autocast", "float32",
                              mixed, large, "mixed precision against float32, same network and batch"))
    return results
