"""Chapter 08: scaling out with torch.distributed. Data-parallel training: every rank (process) holds the same
model, reads its own part of each epoch's data, and the ranks average their gradients before each step, so that
all of them take the same step, the step one process would take on the whole batch.

Three exercises: averaging gradients with `all_reduce` (what DistributedDataParallel does for you), a sampler that
gives each rank its part of each epoch's shuffle (torch.utils.data.DistributedSampler's rule), and gradient
accumulation (one step from several micro-batches, the gradient of the whole batch). Then the given code the
notebook shows: `TRAINING_SCRIPT`, the notebook's data-parallel training script, which it launches with
`solutions.launching.launch`.
"""
import math

import torch
import torch.distributed as dist


def average_gradients(parameters):
    """Average each parameter's gradient over the ranks of the default process group, in place, as
    DistributedDataParallel does during backward.

    Every rank calls this after its backward pass with the same list of parameters. Afterwards each p.grad holds
    (g₀ + g₁ + … + g_{W−1}) / W, W = dist.get_world_size(), on every rank: all_reduce sums a tensor over the ranks
    in place (gloo has no average), then divide by W. A parameter whose grad is None (frozen, or not used) is
    skipped on every rank and its grad stays None.
    parameters: list of tensors (e.g. list(model.parameters()))  ->  None
    """
    ### BEGIN SOLUTION
    world_size = dist.get_world_size()
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)  # a sum over the ranks, written into p.grad on every rank
            p.grad /= world_size
    ### END SOLUTION


class ShardedSampler:
    """The indices one rank reads in each epoch, as torch.utils.data.DistributedSampler gives them.

    Each epoch starts from one order of all n = len(dataset) indices, the same on every rank: with shuffle, a
    torch.randperm(n) drawn from a torch.Generator seeded with seed + epoch (set_epoch(epoch) before each epoch, so
    every epoch has its own order and every rank the same one); without, 0, 1, …, n − 1. Every rank must read the
    same number of indices, num_samples: ⌈n / W⌉ (W = num_replicas), the order padded to W · num_samples by
    repeating indices from its start (as often as needed); with drop_last, ⌊n / W⌋, the order cut to
    W · num_samples. Rank r then reads the entries r, r + W, r + 2W, … of that order (strided, so that the ranks'
    parts interleave), and each index is read by exactly one rank unless padding repeated it.
    dataset: anything with len(); num_replicas W >= 1; rank in 0 .. W − 1; seed: int
    """

    def __init__(self, dataset, num_replicas, rank, shuffle=True, seed=0, drop_last=False):
        self.n, self.num_replicas, self.rank = len(dataset), num_replicas, rank
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.epoch = 0

    def set_epoch(self, epoch):
        """Use epoch's order from now on (call it at the start of each epoch, on every rank)."""
        self.epoch = epoch

    def __len__(self):
        """num_samples: how many indices each rank reads in one epoch."""
        ### BEGIN SOLUTION
        return self.n // self.num_replicas if self.drop_last else math.ceil(self.n / self.num_replicas)
        ### END SOLUTION

    def __iter__(self):
        """Yield this rank's indices (Python ints) for the current epoch, in order."""
        ### BEGIN SOLUTION
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=generator).tolist()
        else:
            order = list(range(self.n))
        total = len(self) * self.num_replicas
        while len(order) < total:  # pad by repeating from the start
            order += order[:total - len(order)]
        return iter(order[self.rank:total:self.num_replicas])
        ### END SOLUTION


def accumulated_step(model, optimizer, loss_fn, x, y, micro_batches):
    """One optimizer step on the batch (x, y), computed as `micro_batches` smaller backward passes.

    Split x and y with torch.tensor_split(·, micro_batches) (sizes differ by at most 1). Start from zeroed
    gradients (optimizer.zero_grad()); for each micro-batch (x_i, y_i) of m_i rows, backward its loss scaled by its
    share of the batch, loss_fn(model(x_i), y_i) · m_i / N (N = len(x); that is loss / k when the k micro-batches
    are equal), so that the gradients add up to those of loss_fn(model(x), y) on the whole batch; then step once.
    loss_fn averages over its batch, as torch's losses do by default.
    x: (N, ...), y: (N, ...), 1 <= micro_batches <= N
    ->  the loss on the whole batch, a float (the sum of the scaled micro-batch losses)
    """
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    total = 0.0
    for x_part, y_part in zip(torch.tensor_split(x, micro_batches), torch.tensor_split(y, micro_batches)):
        loss = loss_fn(model(x_part), y_part) * (len(x_part) / len(x))
        loss.backward()
        total += loss.item()
    optimizer.step()
    return total
    ### END SOLUTION


TRAINING_SCRIPT = '''"""Data-parallel training of a small network on digits; every rank runs this same file, started by torchrun.

    torchrun --standalone --nproc-per-node=2 train_ddp.py check   # your averaging vs DDP vs one process
    torchrun --standalone --nproc-per-node=2 train_ddp.py bench   # throughput, and the share of all_reduce
    torchrun --standalone --nproc-per-node=2 train_ddp.py check bench   # both, in one launch

torchrun gives each process its RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE (its number, and the number of
ranks, on this machine), and a rendezvous (MASTER_ADDR, MASTER_PORT) that init_process_group reads. pick_backend
(solutions/launching.py) reads them: NCCL and one GPU each (cuda:LOCAL_RANK) when this machine has a GPU for each of
its ranks, else gloo on the CPU; rank 0 says which, and why.
"""
import json
import os
import sys
import time
from datetime import timedelta

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from my_ch08 import average_gradients  # your function, written beside this file by the notebook
from solutions.data import digits
from solutions.launching import pick_backend
from solutions.models import mlp

BACKEND, DEVICE, WHY = pick_backend()  # NCCL on cuda:LOCAL_RANK with a GPU for each rank here, else gloo on the CPU
dist.init_process_group(BACKEND, timeout=timedelta(seconds=60))
RANK, WORLD = dist.get_rank(), dist.get_world_size()
if DEVICE.type == "cuda":
    torch.cuda.set_device(DEVICE)
torch.set_num_threads(1)  # one core per rank
X_all, _, y_all, _ = digits()
X_all, y_all = torch.tensor(X_all, device=DEVICE), torch.tensor(y_all, device=DEVICE)


def say(*text):
    if RANK == 0:
        print(*text, flush=True)


say(f"{BACKEND} on {DEVICE} (rank 0 of {WORLD}): {WHY}")


def steps_of(n, rank, world, batch, steps):
    """The rows rank `rank` of `world` reads at each of `steps` steps, `batch` rows each, from n rows: the shard
    DistributedSampler gives it of one epoch after another (set_epoch), each cut into whole batches, the short rest
    of an epoch left out (as DataLoader's drop_last does). So every step's world · batch rows are those of one
    process's step with batch world · batch (rank 0, 1 process): no rank ever has a short batch, which would weigh
    its rows unlike one process's, or an empty one, whose mean loss is NaN.
    ->  a list of `steps` lists of `batch` row indices"""
    per_epoch = n // (world * batch)  # whole steps in one epoch, for every rank and for one process alike
    if per_epoch == 0:
        raise ValueError(f"{world} ranks x batch {batch} need {world * batch} rows a step, more than the {n} "
                         f"digits: use at most {n // batch} ranks, or a smaller batch")
    rows, epoch = [], 0
    while len(rows) < steps:
        sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, seed=0, drop_last=True)
        sampler.set_epoch(epoch)
        order = list(sampler)
        rows += [order[i * batch:(i + 1) * batch] for i in range(per_epoch)]
        epoch += 1
    return rows[:steps]


def largest_gap(a, b):
    """The largest |difference| between two lists of tensors, the same on every rank (the largest of theirs)."""
    gap = torch.tensor(max(float((x - y).abs().max()) for x, y in zip(a, b)), dtype=torch.float64, device=DEVICE)
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return gap.item()


def check(batch=32, steps=20, lr=0.1):
    """W ranks with batch B against one process with batch W·B: gradients at the first step, weights after `steps`
    steps of SGD; your average_gradients against DistributedDataParallel."""
    loss_fn = torch.nn.functional.cross_entropy
    mine, whole = steps_of(len(y_all), RANK, WORLD, batch, steps), steps_of(len(y_all), 0, 1, WORLD * batch, steps)
    yours, alone = mlp([64, 32, 10]).to(DEVICE), mlp([64, 32, 10]).to(DEVICE)  # the same starting weights
    ddp = DistributedDataParallel(mlp([64, 32, 10]).to(DEVICE))
    optimizers = [torch.optim.SGD(model.parameters(), lr=lr) for model in (yours, ddp, alone)]
    for step in range(steps):
        for optimizer in optimizers:
            optimizer.zero_grad()
        loss_fn(yours(X_all[mine[step]]), y_all[mine[step]]).backward()
        average_gradients(list(yours.parameters()))
        loss_fn(ddp(X_all[mine[step]]), y_all[mine[step]]).backward()  # DDP averages during backward
        loss_fn(alone(X_all[whole[step]]), y_all[whole[step]]).backward()
        if step == 0:
            grads = [[p.grad for p in model.parameters()] for model in (yours, ddp, alone)]
            say(f"{WORLD} ranks x batch {batch} against 1 process x batch {WORLD * batch}, float64, "
                f"{len(y_all) // (WORLD * batch)} steps per epoch of the {len(y_all)} digits")
            say(f"  step 1 gradients, yours vs one process:  max |difference| below 1e-12: "
                f"{largest_gap(grads[0], grads[2]) < 1e-12}")
            say(f"  step 1 gradients, DDP vs yours:          max |difference| below 1e-12: "
                f"{largest_gap(grads[1], grads[0]) < 1e-12}")
        for optimizer in optimizers:
            optimizer.step()
    weights = [list(model.parameters()) for model in (yours, ddp, alone)]
    say(f"  weights after {steps} steps, yours vs one process: max |difference| below 1e-10: "
        f"{largest_gap(weights[0], weights[2]) < 1e-10}")
    say(f"  weights after {steps} steps, DDP vs yours:         max |difference| below 1e-10: "
        f"{largest_gap(weights[1], weights[0]) < 1e-10}")
    with torch.no_grad():
        say(f"  training loss after {steps} steps: {loss_fn(yours(X_all), y_all).item():.4f} (yours), "
            f"{loss_fn(alone(X_all), y_all).item():.4f} (one process)")


def bench(batch=int(os.environ.get("BENCH_BATCH", "64")), steps=30, warmup=5, width=1024):
    """Seconds per training step, split into compute (forward, backward, optimizer step) and all_reduce (your
    average_gradients, including the time a rank waits there for a slower one), in float32; `batch` rows per rank
    (the environment's BENCH_BATCH, else 64)."""
    model = mlp([64, width, width, 10], dtype=torch.float32).to(DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    generator = torch.Generator().manual_seed(RANK)
    x = torch.randn(batch, 64, generator=generator).to(DEVICE)
    y = torch.randint(0, 10, (batch,), generator=generator).to(DEVICE)
    sync = torch.cuda.synchronize if DEVICE.type == "cuda" else (lambda: None)
    compute = communicate = 0.0
    for step in range(warmup + steps):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        sync()
        reduced = time.perf_counter()
        average_gradients(list(model.parameters()))
        sync()
        stepped = time.perf_counter()
        optimizer.step()
        sync()
        if step >= warmup:
            compute += reduced - start + time.perf_counter() - stepped
            communicate += stepped - reduced
    figures = torch.tensor([compute, communicate], dtype=torch.float64, device=DEVICE)
    dist.all_reduce(figures, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
    compute, communicate = figures.tolist()
    parameters = sum(p.numel() for p in model.parameters())
    say(json.dumps({"processes": WORLD, "backend": dist.get_backend(), "parameters": parameters,
                    "batch_per_rank": batch, "steps": steps,
                    "samples_per_s": WORLD * batch * steps / (compute + communicate),
                    "compute_ms": 1000 * compute / steps, "allreduce_ms": 1000 * communicate / steps}))


for mode in sys.argv[1:]:  # check, bench, or both in one launch
    {"check": check, "bench": bench}[mode]()
dist.barrier()  # no rank leaves while another still talks to it
dist.destroy_process_group()
# Leave without the interpreter's teardown, where gloo's and DDP's C++ threads can be destroyed while still
# running and abort a rank that has finished its work ("terminate called without an active exception").
sys.stdout.flush()
os._exit(0)
'''
