"""Chapter 08: data-parallel training on 2 processes against 1 (torchrun, gloo, CPU), and the share of all_reduce.

The notebook's training script (`solutions.ch08_distributed.TRAINING_SCRIPT`, bench mode) trains a 64 -> 1024 -> 1024
-> 10 network (1.1 million float32 parameters) with SGD, one thread per process, the same batch per rank (weak
scaling: 2 processes process twice the rows per step). Each step is timed in two parts on every rank: compute
(forward, backward, optimizer step) and all_reduce (the reference `average_gradients`: one all_reduce per parameter
tensor through the loopback, 4.5 MB per step, and any time spent waiting there for the slower rank); the slowest
rank's figures are reported. Ours is 2 processes, the peer 1 process, both as seconds per training sample: below 1x,
2 processes are faster; 0.5x would be perfect scaling. Each launch includes torchrun's start (seconds), which is not
timed; only the 30 steps after 5 warm-up steps are.
"""
import inspect
import json
import tempfile
from pathlib import Path

from benchmarks.harness import Comparison
from solutions import ch08_distributed as ch08
from solutions import launching

BATCHES = (64, 256)


def measure(folder, processes, batch):
    """The bench mode's figures (samples_per_s, compute_ms, allreduce_ms, ...) from rank 0, on `processes`."""
    out = launching.launch(folder / "train_ddp.py", nproc=processes, args=["bench"], timeout=300,
                      env={"BENCH_BATCH": str(batch)})
    return next(json.loads(line) for line in out.splitlines() if line.startswith("{"))


def run():
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ch08-") as name:
        folder = Path(name)
        (folder / "my_ch08.py").write_text("import torch\nimport torch.distributed as dist\n\n\n" +
                                           inspect.getsource(ch08.average_gradients))
        (folder / "train_ddp.py").write_text(ch08.TRAINING_SCRIPT)
        for batch in BATCHES:
            one, two = measure(folder, 1, batch), measure(folder, 2, batch)
            shares = [f["allreduce_ms"] / (f["compute_ms"] + f["allreduce_ms"]) for f in (one, two)]
            result = Comparison(f"training step, batch {batch} per rank, {one['parameters'] / 1e6:.1f}M params",
                                "2 processes", "1 process", 1 / two["samples_per_s"], 1 / one["samples_per_s"])
            result.note = (f"{two['samples_per_s']:.0f} vs {one['samples_per_s']:.0f} samples/s, a "
                           f"{two['samples_per_s'] / one['samples_per_s']:.2f}x speed-up (2x is perfect). Per step: "
                           f"compute {one['compute_ms']:.1f} ms on 1 process, {two['compute_ms']:.1f} ms on 2; "
                           f"all_reduce {one['allreduce_ms']:.1f} ms on 1 (a local copy), {two['allreduce_ms']:.1f} ms "
                           f"on 2: {shares[0]:.0%} and {shares[1]:.0%} of the step.")
            results.append(result)
    return results
