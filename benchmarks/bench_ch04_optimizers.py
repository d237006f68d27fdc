"""Chapter 04: one optimizer step on a 10M-parameter float32 vector, from scratch in numpy against torch.optim's fastest CPU path.

SGD with momentum, RMSprop, Adam and AdamW: the chapter's pure step functions (new arrays out, inputs untouched)
against torch.optim with foreach=True and, where torch has a CPU kernel for it (SGD, Adam, AdamW; not RMSprop),
fused=True; the faster of the two is the peer. Every step is memory-bound, so each is also reported as the bytes it
must move at least (every array it reads and writes once: Adam reads param, grad, m, v and writes param, m, v,
7 x 4 bytes x 10M) per second, against this machine's memory bandwidth measured in the same run (np.copyto of a
256 MB float32 array on one thread, torch's in-place mul_ on it with its threads; reads and writes counted). `_adam_step_fewer_passes` is Adam written with `out=` into
the new arrays, to measure what the reference's temporaries cost; it is used for that measurement only.
"""
import math

import numpy as np
import torch

from benchmarks.harness import Comparison, compare, median_time
from solutions import ch04_optimizers as ch04

SIZE = 10_000_000
WARMUP_STEPS = 3
COPY_BYTES = 256 * 2**20
LR = 1e-3

# name -> (our step, its keyword arguments, torch class, torch keyword arguments, arrays read + written at least,
#          passes the reference makes over 10M-element arrays in units of 4 bytes x SIZE, counted in the README)
OPTIMIZERS = {
    "SGD, momentum 0.9": (ch04.sgd_momentum_step, {"lr": LR, "momentum": 0.9}, torch.optim.SGD,
                          {"lr": LR, "momentum": 0.9}, 5, 17),
    "RMSprop": (ch04.rmsprop_step, {"lr": LR}, torch.optim.RMSprop, {"lr": LR}, 5, 28),
    "Adam": (ch04.adam_step, {"lr": LR}, torch.optim.Adam, {"lr": LR}, 7, 38),
    "AdamW, weight decay 0.01": (ch04.adamw_step, {"lr": LR, "weight_decay": 0.01}, torch.optim.AdamW,
                                 {"lr": LR, "weight_decay": 0.01}, 7, 40),
}
FUSED_ON_CPU = {torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW}


def _adam_step_fewer_passes(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """adam_step with the same operations in the same order (so the same bits), but written into the new arrays
    with `out=` instead of a fresh temporary per operation: three new arrays (param, m, v) and one scratch array.
    Still pure. The weight-decay term is skipped when weight_decay is 0 (grad + 0 · param is grad, up to the sign
    of a zero). For the measurement in this module only; the chapter's reference is `ch04.adam_step`."""
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    if weight_decay:
        grad = grad + weight_decay * param
    scratch = np.empty_like(param)
    exp_avg = np.multiply(beta1, state["exp_avg"]) if "exp_avg" in state else np.zeros_like(param)
    np.add(exp_avg, np.multiply(1 - beta1, grad, out=scratch), out=exp_avg)
    exp_avg_sq = np.multiply(beta2, state["exp_avg_sq"]) if "exp_avg_sq" in state else np.zeros_like(param)
    np.multiply(1 - beta2, grad, out=scratch)
    np.multiply(scratch, grad, out=scratch)
    np.add(exp_avg_sq, scratch, out=exp_avg_sq)
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    denom = np.sqrt(exp_avg_sq, out=scratch)
    np.divide(denom, math.sqrt(bias_correction2), out=denom)
    np.add(denom, eps, out=denom)
    new_param = np.multiply(lr / bias_correction1, exp_avg)
    np.divide(new_param, denom, out=new_param)
    np.subtract(param, new_param, out=new_param)
    return new_param, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}


def copy_bandwidth():
    """Bytes per second over a COPY_BYTES float32 array, its read and its write counted: np.copyto into a second
    array (one thread, as numpy's ufuncs run) and torch's in-place `mul_` by 1 (torch's threads, as its optimizer
    steps use; in place, so no write-allocate read of a destination either)."""
    a = np.random.default_rng(0).standard_normal(COPY_BYTES // 4, dtype=np.float32)
    b = np.empty_like(a)
    b_t = torch.from_numpy(b)
    return (2 * a.nbytes / median_time(lambda: np.copyto(b, a)), 2 * a.nbytes / median_time(lambda: b_t.mul_(1.0)))


def numpy_stepper(step_fn, hyper, param, grad):
    """A pure step called on the same inputs every time, from the state after WARMUP_STEPS steps."""
    state = {}
    for _ in range(WARMUP_STEPS):
        param, state = step_fn(param, grad, state, **hyper)
    return lambda: step_fn(param, grad, state, **hyper)


def torch_stepper(cls, hyper, param, grad, **path):
    p = torch.nn.Parameter(torch.from_numpy(param.copy()))
    p.grad = torch.from_numpy(grad.copy())
    optimizer = cls([p], **hyper, **path)
    for _ in range(WARMUP_STEPS):
        optimizer.step()
    return optimizer.step


def gbps(n_arrays, seconds):
    return n_arrays * 4 * SIZE / seconds / 1e9


def run():
    rng = np.random.default_rng(0)
    param = rng.standard_normal(SIZE, dtype=np.float32)
    grad = rng.standard_normal(SIZE, dtype=np.float32)
    bandwidth, torch_bandwidth = (rate / 1e9 for rate in copy_bandwidth())
    results = []
    for name, (step_fn, hyper, cls, torch_hyper, n_arrays, passes) in OPTIMIZERS.items():
        paths = {"foreach": {"foreach": True}}
        if cls in FUSED_ON_CPU:
            paths["fused"] = {"fused": True}
        peers = {path: median_time(torch_stepper(cls, torch_hyper, param, grad, **kw)) for path, kw in paths.items()}
        fastest = min(peers, key=peers.get)
        result = compare(f"{name}, 10M float32",
                         ("numpy ch04 (pure)", numpy_stepper(step_fn, hyper, param, grad)),
                         (f"torch {cls.__name__} {fastest}=True", torch_stepper(cls, torch_hyper, param, grad,
                                                                              **paths[fastest])))
        result.note = (f"moves at least {n_arrays} x 40 MB = {n_arrays * 4 * SIZE / 1e6:.0f} MB per step; ours "
                       f"{gbps(n_arrays, result.ours_s):.1f} GB/s (the reference's {passes} array passes, "
                       f"{gbps(passes, result.ours_s):.1f} GB/s), torch {gbps(n_arrays, result.peer_s):.1f} GB/s; "
                       f"copy bandwidth {bandwidth:.1f} GB/s (np.copyto, one thread), {torch_bandwidth:.1f} GB/s (torch mul_, in place, {torch.get_num_threads()} threads). torch "
                       + ", ".join(f"{path} {seconds * 1e3:.1f} ms" for path, seconds in peers.items()) + ".")
        results.append(result)
        if cls is torch.optim.Adam:
            fewer = compare("Adam, out= into the new arrays, 10M float32",
                            ("numpy _adam_step_fewer_passes", numpy_stepper(_adam_step_fewer_passes, hyper, param, grad)),
                            (f"torch Adam {fastest}=True", torch_stepper(cls, torch_hyper, param, grad, **paths[fastest])))
            fewer.note = (f"same bits as ch04.adam_step; ours {gbps(n_arrays, fewer.ours_s):.1f} GB/s at the 7-array "
                          f"minimum (31 array passes: {gbps(31, fewer.ours_s):.1f} GB/s), torch "
                          f"{gbps(n_arrays, fewer.peer_s):.1f} GB/s.")
            results.append(fewer)
    results.append(Comparison(f"memory bandwidth: {COPY_BYTES >> 20} MB float32", "numpy np.copyto", "torch mul_(1.0)",
                              2 * COPY_BYTES / bandwidth / 1e9, 2 * COPY_BYTES / torch_bandwidth / 1e9,
                              note=f"np.copyto {bandwidth:.1f} GB/s (one thread; the write-allocate read of the destination is not "
                                   f"counted), torch in-place mul_ {torch_bandwidth:.1f} GB/s ({torch.get_num_threads()} "
                                   "threads); read + write counted."))
    return results
