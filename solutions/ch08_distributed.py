"""Chapter 08: scaling out with torch.distributed. Data-parallel training: every rank (process) holds the same
model, reads its own part of each epoch's data, and the ranks average their gradients before each step, so that
all of them take the same step, the step one process would take on the whole batch.

Three exercises: averaging gradients with `all_reduce` (what DistributedDataParallel does for you), a sampler that
gives each rank its part of each epoch's shuffle (torch.utils.data.DistributedSampler's rule), and gradient
accumulation (one step from several micro-batches, the gradient of the whole batch). Then the given code the
notebook shows: `TRAINING_SCRIPT`, the notebook's data-parallel training script, which it launches with
`solutions.launching.launch`; and the practices of its section 6 (checkpoints, uneven inputs, batch normalization,
evaluation, the learning rate, unused parameters), functions that every rank of a process group calls, which
`practice_script` writes into one script between PRACTICE_HEAD and PRACTICE_FOOT.
"""
import inspect
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from solutions.models import mlp


def average_gradients(parameters):
    """Average each parameter's gradient over the ranks of the default process group, in place, as
    DistributedDataParallel does during backward.

    Every rank calls this after its backward pass with the same list of parameters. Afterwards each p.grad holds
    (g₀ + g₁ + … + g_{W−1}) / W, W = dist.get_world_size(), on every rank. all_reduce combines a tensor over the
    ranks in place, by default with a sum, which every backend and every torch this course allows can do. Assumed:
    the parameters whose grad is None (frozen, or not used by the forward pass) are the same on every rank; they are
    skipped, and their grad stays None.
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
    torchrun --standalone --nproc-per-node=2 train_ddp.py versus_ddp    # your all_reduce loop against DDP
    torchrun --standalone --nproc-per-node=2 train_ddp.py check bench versus_ddp   # all three, in one launch

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


def versus_ddp(batch=64, steps=10, warmup=3):
    """Milliseconds per training step (forward, backward, all_reduce, optimizer step) with your average_gradients,
    one all_reduce per parameter tensor once backward is done, and with DistributedDataParallel, one all_reduce per
    bucket of gradients, each started during backward as soon as its gradients are ready; float32, `batch` rows per
    rank, on bench's wide network (few large tensors) and on a deep one of many small tensors. With the all_reduce
    calls each makes per step (DDP's counted by ddp_calls)."""
    generator = torch.Generator().manual_seed(RANK)
    x = torch.randn(batch, 64, generator=generator).to(DEVICE)
    y = torch.randint(0, 10, (batch,), generator=generator).to(DEVICE)
    found = []
    for network, sizes in (("wide", [64, 1024, 1024, 10]), ("deep", [64] + [128] * 24 + [10])):
        yours = mlp(sizes, dtype=torch.float32).to(DEVICE)
        ddp = DistributedDataParallel(mlp(sizes, dtype=torch.float32).to(DEVICE))
        taken = [milliseconds_per_step(yours, x, y, steps, warmup, lambda: average_gradients(list(yours.parameters()))),
                 milliseconds_per_step(ddp, x, y, steps, warmup)]  # DDP reduces its buckets inside backward
        slowest = torch.tensor(taken, dtype=torch.float64, device=DEVICE)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)  # the slowest rank sets the pace
        tensors = list(yours.parameters())
        found.append({"network": network, "tensors": len(tensors), "parameters": sum(p.numel() for p in tensors),
                      "yours_ms": slowest[0].item(), "ddp_ms": slowest[1].item(), "yours_calls": len(tensors),
                      "ddp_calls": ddp_calls(sizes, x, y)})
    say(json.dumps({"versus_ddp": found}))


def milliseconds_per_step(model, x, y, steps, warmup, reduce=lambda: None):
    """The mean milliseconds of a step of SGD on (x, y): forward, backward, reduce(), the optimizer's step; over
    `steps` steps, after `warmup` that are not timed."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    sync = torch.cuda.synchronize if DEVICE.type == "cuda" else (lambda: None)
    for step in range(warmup + steps):
        if step == warmup:
            sync()
            start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        reduce()
        optimizer.step()
    sync()
    return 1000 * (time.perf_counter() - start) / steps


def ddp_calls(sizes, x, y):
    """How many all_reduce calls DDP makes in one step of the network `sizes` (its second: DDP arranges its buckets
    anew after the first, in the order the gradients came), counted by a communication hook that only counts and
    then does what DDP does by default: divide by the world size, all_reduce the bucket (a sum)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    calls = []

    def counted(state, bucket):
        calls.append(bucket.index())
        return allreduce_hook(state, bucket)

    model = DistributedDataParallel(mlp(sizes, dtype=torch.float32).to(DEVICE))
    model.register_comm_hook(None, counted)
    for _ in range(2):
        calls.clear()
        torch.nn.functional.cross_entropy(model(x), y).backward()
    return len(calls)


for mode in sys.argv[1:]:  # check, bench, versus_ddp, or several in one launch
    {"check": check, "bench": bench, "versus_ddp": versus_ddp}[mode]()
dist.barrier()  # no rank leaves while another still talks to it
dist.destroy_process_group()
# Leave without the interpreter's teardown, where gloo's and DDP's C++ threads can be destroyed while still
# running and abort a rank that has finished its work ("terminate called without an active exception").
sys.stdout.flush()
os._exit(0)
'''


# ---------------------------------------------------------------- what a practitioner adds (the notebook's section 6)
# Each practice below is a function that every rank of a process group calls; the notebook shows them word for word
# and writes them into one script between PRACTICE_HEAD and PRACTICE_FOOT (practice_script), launched once.

PRACTICE_HEAD = '''"""What a data-parallel script adds to the averaging, a practice per mode; every rank runs this file:

    torchrun --standalone --nproc-per-node=2 practices.py checkpoint join batchnorm evaluate lr unused

Each practice is a function that every rank calls and that returns the lines rank 0 prints. pick_backend chooses
the backend and the device as in train_ddp.py.
"""
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from my_ch08 import average_gradients  # your function, written beside this file by the notebook
from solutions.data import digits
from solutions.launching import pick_backend
from solutions.models import mlp

BACKEND, DEVICE, WHY = pick_backend()
dist.init_process_group(BACKEND, timeout=timedelta(seconds=60))
if DEVICE.type == "cuda":
    torch.cuda.set_device(DEVICE)
torch.set_num_threads(1)  # one core per rank
DIGITS = [torch.tensor(part, device=DEVICE) for part in digits()]  # X_train, X_test, y_train, y_test
FOLDER = os.path.dirname(os.path.abspath(__file__))  # where rank 0 writes the checkpoint: every rank reads it there


'''

PRACTICE_FOOT = '''

PRACTICES = {"checkpoint": lambda: checkpoint_on_rank_0(DEVICE, DIGITS, os.path.join(FOLDER, "checkpoint.pt")),
             "join": lambda: uneven_inputs_with_join(DEVICE, DIGITS),
             "batchnorm": lambda: batch_norm_across_ranks(DEVICE, DIGITS),
             "evaluate": lambda: evaluate_each_digit_once(DEVICE, DIGITS),
             "lr": lambda: scaled_learning_rate(DEVICE, DIGITS),
             "unused": lambda: unused_parameters(DEVICE, DIGITS)}
if dist.get_rank() == 0:
    print(f"{BACKEND} on {DEVICE} (rank 0 of {dist.get_world_size()}): {WHY}", flush=True)
for name in sys.argv[1:]:
    for line in PRACTICES[name]():
        if dist.get_rank() == 0:
            print(line, flush=True)
dist.barrier()  # no rank leaves while another still talks to it
dist.destroy_process_group()
sys.stdout.flush()
os._exit(0)  # as train_ddp.py leaves: without the interpreter's teardown
'''


def rank_batches(n, batch, epoch=0, rank=None, world=None):
    """The batches of `batch` row indices that rank `rank` of `world` reads in epoch `epoch` of n rows: its
    DistributedSampler part of that epoch's shuffle (seed 0, drop_last), cut into ⌊n / (world · batch)⌋ whole
    batches, the short rest left out, so that every rank runs as many steps. rank and world: this process's in the
    default group when None (rank 0 of 1 is one process alone).  ->  list of lists of ints"""
    rank = dist.get_rank() if rank is None else rank
    world = dist.get_world_size() if world is None else world
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, seed=0, drop_last=True)
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i * batch:(i + 1) * batch] for i in range(n // (world * batch))]


def largest_gap(a, b):
    """The largest |difference| between two lists of tensors, the largest over the ranks (the same on every rank)."""
    largest = max(float((x - y).detach().abs().max()) for x, y in zip(a, b))
    gap = torch.tensor(largest, dtype=torch.float64, device=a[0].device)
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return gap.item()


def same_on_every_rank(tensors):
    """Whether every rank holds exactly rank 0's values in `tensors` (a list): rank 0's are broadcast and compared."""
    theirs = [t.detach().clone() for t in tensors]
    for t in theirs:
        dist.broadcast(t, src=0)
    return largest_gap(list(tensors), theirs) == 0


def checkpoint_on_rank_0(device, data, path, steps=5, batch=32):
    """Train a few steps with DDP, save a checkpoint from rank 0 alone, and load it on every rank.

    Rank 0 writes the model's and the optimizer's state to `path` (model.module's: the network inside DDP, whose
    names carry no "module." prefix, so that one process without DDP can load it too); every rank waits at a
    barrier until it has, then reads it with map_location=device, each onto its own device.
    data: (X_train, X_test, y_train, y_test) on device; path: a file every rank can read  ->  lines to print"""
    X, _, y, _ = data
    model = DistributedDataParallel(mlp([64, 32, 10]).to(device))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    taken = rank_batches(len(y), batch)[:steps]
    for rows in taken:
        optimizer.zero_grad()
        F.cross_entropy(model(X[rows]), y[rows]).backward()
        optimizer.step()
    if dist.get_rank() == 0:  # one writer: the ranks hold the same weights, and W writers of one file collide
        torch.save({"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "steps": len(taken)},
                   path)
    dist.barrier()  # nobody reads before rank 0 has written the whole file
    saved = torch.load(path, map_location=device, weights_only=True)  # rank 0's device's tensors onto this rank's
    resumed = mlp([64, 32, 10], seed=1).to(device)  # other weights, to be overwritten
    resumed_optimizer = torch.optim.SGD(resumed.parameters(), lr=0.1, momentum=0.9)
    resumed.load_state_dict(saved["model"])
    resumed_optimizer.load_state_dict(saved["optimizer"])
    momenta = [[optimizer.state[p]["momentum_buffer"] for p in model.parameters()],
               [resumed_optimizer.state[p]["momentum_buffer"] for p in resumed.parameters()]]
    return [f"checkpoint: rank 0 saved after {len(taken)} steps, every rank loaded it after the barrier",
            f"  names without the 'module.' prefix of DDP: {not any(k.startswith('module.') for k in saved['model'])}",
            f"  every rank's loaded weights equal its live ones: "
            f"{largest_gap(list(resumed.parameters()), list(model.parameters())) == 0}",
            f"  and its loaded momentum buffers too: {largest_gap(*momenta) == 0}"]


def uneven_rows(rank, n, batch):
    """Rank `rank`'s batches when the ranks hold unequal amounts of data: 3 + rank batches of `batch` rows, drawn
    from the n rows with a generator seeded with the rank.  ->  list of lists of ints"""
    generator = torch.Generator().manual_seed(rank)
    return torch.randperm(n, generator=generator)[:(3 + rank) * batch].view(3 + rank, batch).tolist()


def uneven_inputs_with_join(device, data, batch=16, lr=0.1):
    """Train with DDP where the ranks have unequal numbers of batches (uneven_rows), under model.join(): a rank that
    has run out of batches joins the all_reduces of the others with zeros, until every rank is done, and DDP then
    gives every rank the weights of the rank that finished last. Checked against one process that replays the run:
    at each step, the gradients of the ranks that still had a batch, summed and divided by W, the number of ranks
    DDP started with (its default, divide_by_initial_world_size=True).  ->  lines to print"""
    X, _, y, _ = data
    world, rank = dist.get_world_size(), dist.get_rank()
    model = DistributedDataParallel(mlp([64, 32, 10]).to(device))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with model.join():  # without it, the rank with more batches would wait in all_reduce for the ones that left
        for rows in uneven_rows(rank, len(y), batch):
            optimizer.zero_grad()
            F.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()
    replay = mlp([64, 32, 10]).to(device)
    every = [uneven_rows(r, len(y), batch) for r in range(world)]
    for step in range(max(map(len, every))):
        total = [torch.zeros_like(p) for p in replay.parameters()]
        for batches in every:
            if step < len(batches):
                grads = torch.autograd.grad(F.cross_entropy(replay(X[batches[step]]), y[batches[step]]),
                                            list(replay.parameters()))
                total = [t + g for t, g in zip(total, grads)]
        with torch.no_grad():
            for p, t in zip(replay.parameters(), total):
                p -= lr * t / world
    weights = [p.detach() for p in model.parameters()]
    counts = ", ".join(str(len(batches)) for batches in every)
    return [f"join: rank r has 3 + r batches of {batch} rows ({counts}), trained under model.join()",
            f"  finished, every rank with the same weights: {same_on_every_rank(weights)}",
            f"  weights against one process that sums the gradients of the ranks still training and divides by "
            f"{world}: largest |difference| below 1e-12: {largest_gap(weights, list(replay.parameters())) < 1e-12}"]


class AllReduceSum(torch.autograd.Function):
    """A tensor summed over the ranks (all_reduce), differentiably. Every rank's input counts in every rank's output,
    so the gradient for a rank's input is the sum of the ranks' output gradients: all_reduce again, in backward."""

    @staticmethod
    def forward(ctx, x):
        total = x.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad):
        total = grad.clone()
        dist.all_reduce(total)
        return total


class SyncedBatchNorm1d(torch.nn.BatchNorm1d):
    """BatchNorm1d that, in training, normalizes with the mean and variance of the rows of all ranks together, as
    one process would on their union, and keeps running statistics of those; in evaluation mode BatchNorm1d's own.
    What torch.nn.SyncBatchNorm computes, which this torch runs only on GPUs. momentum: a float (default 0.1).
    x: (B, C), B rows on this rank (the ranks may have different B)  ->  (B, C)"""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        count = torch.tensor(float(len(x)), dtype=x.dtype, device=x.device)
        dist.all_reduce(count)  # N, the rows of all ranks
        mean = AllReduceSum.apply(x.sum(0)) / count
        var = AllReduceSum.apply(((x - mean) ** 2).sum(0)) / count  # biased: what normalizes, as in BatchNorm1d
        with torch.no_grad():
            self.running_mean.lerp_(mean, self.momentum)  # (1 − momentum) · running + momentum · new
            self.running_var.lerp_(var * count / (count - 1), self.momentum)  # kept unbiased, as BatchNorm1d does
            self.num_batches_tracked += 1
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias


def normalized_net(norm, device):
    """Linear(64, 32), a batch normalization `norm(32)`, ReLU, Linear(32, 10), float64, the same weights on every
    rank (mlp's seed 0)."""
    first, last = mlp([64, 32, 10])[::2]
    return torch.nn.Sequential(first, norm(32, dtype=torch.float64), torch.nn.ReLU(), last).to(device)


def batch_norm_across_ranks(device, data, batch=8):
    """W ranks with `batch` rows each against one process with their W · batch rows, in training mode, with
    BatchNorm1d (each rank normalizes with its own rows' statistics) and with SyncedBatchNorm1d (with those of all
    rows): the network's outputs for each rank's rows, the gradients DDP averages, the running statistics. Then
    torch.nn.SyncBatchNorm on this device: the same as SyncedBatchNorm1d where it runs, its error where it does not.
    ->  lines to print"""
    X, _, y, _ = data
    world, rank = dist.get_world_size(), dist.get_rank()
    mine = slice(rank * batch, (rank + 1) * batch)
    alone = normalized_net(torch.nn.BatchNorm1d, device)
    outputs = alone(X[:world * batch])
    F.cross_entropy(outputs, y[:world * batch]).backward()
    found = {}
    for norm in (torch.nn.BatchNorm1d, SyncedBatchNorm1d):
        model = DistributedDataParallel(normalized_net(norm, device))
        theirs = model(X[mine])
        F.cross_entropy(theirs, y[mine]).backward()  # DDP averages the gradients over the ranks
        found[norm] = (largest_gap([theirs], [outputs[mine]]),
                       largest_gap([p.grad for p in model.parameters()], [p.grad for p in alone.parameters()]),
                       largest_gap(list(model.module[1].buffers())[:2], list(alone[1].buffers())[:2]), theirs)
    plain, synced = found[torch.nn.BatchNorm1d], found[SyncedBatchNorm1d]
    lines = [f"batch norm: {world} rank{'s' * (world > 1)} x {batch} rows against 1 process x {world * batch} rows, "
             f"largest |difference|",
             f"  BatchNorm1d, each rank its own rows' statistics: outputs {plain[0]:.2g}, gradients {plain[1]:.2g}, "
             f"running statistics {plain[2]:.2g}",
             f"  SyncedBatchNorm1d, statistics of all ranks' rows: outputs, gradients, running statistics below "
             f"1e-12: {max(synced[:3]) < 1e-12}"]
    try:
        torchs = DistributedDataParallel(normalized_net(torch.nn.SyncBatchNorm, device))(X[mine])
        lines.append(f"  torch.nn.SyncBatchNorm on {device}: the same outputs, below 1e-12: "
                     f"{largest_gap([torchs], [synced[3]]) < 1e-12}")
    except ValueError as error:  # raised on every rank alike, before any communication
        lines.append(f"  torch.nn.SyncBatchNorm on {device}: ValueError: {error}")
    return lines


def trained_net(device, X, y, steps=30, lr=0.5):
    """mlp([64, 32, 10]) after `steps` full-batch gradient steps on (X, y), the same on every rank (no
    communication: each rank computes it)."""
    model = mlp([64, 32, 10]).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(X), y).backward()
        optimizer.step()
    return model


def evaluate_each_digit_once(device, data, n=449):
    """Accuracy on the first n test digits, shared out among the ranks by DistributedSampler (shuffle=False), which
    pads the order to a multiple of W by repeating its first indices: counted as read, a padded digit counts twice;
    counted once each, the ranks' sums are one process's. A rank's i-th index stands at position rank + i · W of the
    padded order, and the positions from n on are the repeats.  ->  lines to print"""
    X_train, X_test, y_train, y_test = data
    X, y = X_test[:n], y_test[:n]
    world, rank = dist.get_world_size(), dist.get_rank()
    model = trained_net(device, X_train, y_train)
    mine = torch.tensor(list(DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=False)),
                        dtype=torch.int64, device=device)
    with torch.no_grad():
        right = model(X[mine]).argmax(1) == y[mine]
        alone = int((model(X).argmax(1) == y).sum())
    once = rank + world * torch.arange(len(mine), device=device) < n  # False at the padding's repeats
    counts = torch.stack([torch.tensor(len(mine), device=device), right.sum(), once.sum(), (right & once).sum()])
    dist.all_reduce(counts)  # each rank's counts, summed
    read, read_right, seen, seen_right = counts.tolist()
    return [f"evaluate: {n} test digits on {world} rank{'s' * (world > 1)}, {len(mine)} each, {read - n} of them "
            f"read twice",
            f"  every prediction counted: {read_right} right of {read}, accuracy {read_right / read:.4f}",
            f"  each digit counted once: {seen_right} right of {seen}, accuracy {seen_right / seen:.4f}",
            f"  one process: {alone} right of {n}, accuracy {alone / n:.4f}"]


def lr_losses(model, data, lr, epochs, batch, warmup=0, ranks=None):
    """Train `model` (DDP on the group's ranks, or a plain one) with SGD at `lr` for `epochs` epochs of rank_batches
    (`ranks`: (rank, world) of a plain model, to read as one process does; None: this rank's of the group), the
    learning rate raised linearly from lr / W to lr over the first `warmup` steps (torch's LinearLR) when warmup > 0,
    W the world size. ->  the training loss after each epoch, on all rows"""
    X, _, y, _ = data
    rank, world = ranks or (dist.get_rank(), dist.get_world_size())
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / dist.get_world_size(),
                                                 total_iters=warmup) if warmup else None
    losses = []
    for epoch in range(epochs):
        for rows in rank_batches(len(y), batch, epoch, rank, world):
            optimizer.zero_grad()
            F.cross_entropy(model(X[rows]), y[rows]).backward()
            optimizer.step()
            if schedule:
                schedule.step()
        with torch.no_grad():
            losses.append(F.cross_entropy(model(X), y).item())
    return losses


def scaled_learning_rate(device, data, batch=32, lr=0.1, epochs=3):
    """The linear scaling rule: W ranks of `batch` rows take W times fewer steps per epoch than one process with
    `batch` rows, each with the gradient of W · batch rows; at the same learning rate they progress less per epoch,
    at W · lr about as much (each step about W of the small ones), and a warm-up raises the rate from lr to W · lr
    over the first epoch. Last, what 16 ranks of `batch` rows would compute, which section 4 showed is one process
    with 16 · batch rows, with 16 · lr.  ->  lines to print"""
    _, _, y, _ = data
    world = dist.get_world_size()
    per_epoch, ranks = len(y) // (world * batch), f"{world} rank{'s' * (world > 1)}"

    def alone(rows, rate):  # one process, a plain network reading as rank 0 of 1
        return lr_losses(mlp([64, 32, 10]).to(device), data, rate, epochs, rows, ranks=(0, 1))

    def together(rate, warmup=0):  # this group's ranks, with DDP
        return lr_losses(DistributedDataParallel(mlp([64, 32, 10]).to(device)), data, rate, epochs, batch, warmup)

    runs = [(f"1 process x {batch} rows, lr {lr:g}", alone(batch, lr)),
            (f"{ranks} x {batch} rows, lr {lr:g}", together(lr)),
            (f"{ranks} x {batch} rows, lr {world * lr:g}", together(world * lr)),
            (f"{ranks} x {batch} rows, lr {world * lr:g} after a warm-up of {per_epoch} steps",
             together(world * lr, per_epoch)),
            (f"1 process x {16 * batch} rows (16 ranks x {batch}), lr {16 * lr:g}", alone(16 * batch, 16 * lr))]
    return [f"learning rate: training loss after each of {epochs} epochs of the {len(y)} digits"] + [
        f"  {name + ':':<62}" + "  ".join(f"{loss:.3f}" for loss in losses) for name, losses in runs]


class TwoBranches(torch.nn.Module):
    """Two Linear(64, 10) layers, a and b, of which a forward pass uses the one its argument names: control flow
    that depends on the data, so one rank may use a where another uses b."""

    def __init__(self):
        super().__init__()
        self.a, self.b = mlp([64, 10], seed=0)[0], mlp([64, 10], seed=1)[0]  # Linear layers

    def forward(self, x, branch):
        return self.a(x) if branch == "a" else self.b(x)


def unused_parameters(device, data, batch=16):
    """Even ranks use branch a of TwoBranches, odd ranks b, so each rank has gradients for one branch and None for
    the other. Your average_gradients then pairs, in its k-th all_reduce, the k-th gradient of each rank, whichever
    parameter it belongs to; DDP raises an error at the next forward; DDP(find_unused_parameters=True) finds the
    unused parameters after each forward and reduces a zero gradient for them.  ->  lines to print"""
    X, _, y, _ = data
    world, rank = dist.get_world_size(), dist.get_rank()
    branch, rows = "ab"[rank % 2], slice(rank * batch, (rank + 1) * batch)
    yours = TwoBranches().to(device)
    F.cross_entropy(yours(X[rows], branch), y[rows]).backward()
    own = [p.grad.clone() for p in yours.parameters() if p.grad is not None]
    gathered = [torch.zeros_like(own[0]) for _ in range(world)]
    dist.all_gather(gathered, own[0])  # every rank's first gradient: a.weight's on even ranks, b.weight's on odd
    average_gradients(list(yours.parameters()))
    first = yours.a.weight.grad if branch == "a" else yours.b.weight.grad
    paired = largest_gap([first], [sum(gathered) / world]) < 1e-12
    lines = ["unused parameters: even ranks use branch a, odd ranks branch b",
             f"  your average_gradients: each rank's first gradient is the average of every rank's first, a.weight's "
             f"and b.weight's mixed: {paired}"]
    ddp = DistributedDataParallel(TwoBranches().to(device))
    F.cross_entropy(ddp(X[rows], branch), y[rows]).backward()
    first = ddp.module.a.weight.grad if branch == "a" else ddp.module.b.weight.grad
    kept = largest_gap([first], [own[0]]) == 0
    try:
        ddp(X[rows], branch)
        lines.append("  DDP: the next forward ran")
    except RuntimeError as error:  # every rank has unused parameters, so every rank raises here
        lines.append(f"  DDP: each rank's gradients left as they were (not averaged): {kept}; the next forward "
                     f"raises RuntimeError: {str(error).split('. ')[0]}.")
    found = DistributedDataParallel(TwoBranches().to(device), find_unused_parameters=True)
    F.cross_entropy(found(X[rows], branch), y[rows]).backward()
    average = sum(gathered[0::2]) / world  # the a.weight gradients of the even ranks, zeros from the odd ones
    lines.append(f"  DDP(find_unused_parameters=True): a.weight's gradient on every rank is the sum over the ranks "
                 f"that used a, divided by {world}: {largest_gap([found.module.a.weight.grad], [average]) < 1e-12}")
    return lines


# The notebook's cells of section 6, each holding these functions and classes in this order.
PRACTICE_CELLS = ((rank_batches, largest_gap, same_on_every_rank), (checkpoint_on_rank_0,),
                  (uneven_rows, uneven_inputs_with_join),
                  (AllReduceSum, SyncedBatchNorm1d, normalized_net, batch_norm_across_ranks),
                  (trained_net, evaluate_each_digit_once), (lr_losses, scaled_learning_rate),
                  (TwoBranches, unused_parameters))


def cell_source(cell):
    """The text of the notebook cell that holds `cell` (functions and classes), two blank lines between them."""
    return "\n\n\n".join(inspect.getsource(part).strip() for part in cell)


def practice_script(cells=PRACTICE_CELLS):
    """The practices' script as the notebook writes it: PRACTICE_HEAD, the text of each cell, PRACTICE_FOOT."""
    return PRACTICE_HEAD + "\n\n".join(cell_source(cell) + "\n" for cell in cells) + PRACTICE_FOOT
