"""Chapter 08 exercises: averaging gradients over the ranks of a real gloo process group (each case forks one
process per rank), a sampler that shards each epoch's shuffle as torch's DistributedSampler does (every rank's
sampler made in one process: the sampler needs no group), and gradient accumulation over micro-batches (one
process)."""
import math

import torch
import torch.distributed as dist

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch08_distributed as ref


# ---------------------------------------------------------------- average_gradients

def _grads(shapes, ranks, seed, scale=1.0, dtype=torch.float64, none=()):
    """Case arguments: per-rank random gradients for parameters of `shapes`; those whose position is in `none` have
    no gradient (None) on every rank."""
    def make():
        generator = torch.Generator().manual_seed(seed)
        grads = [[None if i in none else torch.randn(shape, generator=generator, dtype=torch.float64).mul(scale)
                  .to(dtype) for i, shape in enumerate(shapes)] for _ in range(ranks)]
        return {"shapes": [list(shape) for shape in shapes], "grads": grads}
    return make


def _by_hand():
    return {"shapes": [[2, 2], [2]],
            "grads": [[torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64), torch.tensor([1.0, -1.0],
                                                                                                  dtype=torch.float64)],
                      [torch.tensor([[3.0, 0.0], [1.0, -4.0]], dtype=torch.float64), torch.tensor([0.0, 5.0],
                                                                                                  dtype=torch.float64)]]}


def _average_variant(kind):
    def average_gradients(parameters):
        world_size = dist.get_world_size()
        for p in parameters:
            if kind == "zeros" and p.grad is None:
                p.grad = torch.zeros_like(p)
            if p.grad is None and kind != "none_not_skipped":
                continue
            if kind == "weights_only" and p.dim() < 2:
                continue
            if kind == "twice":
                p.grad /= world_size
            if kind == "copy":
                summed = p.grad.clone()
                dist.all_reduce(summed)
                summed /= world_size
                continue
            dist.all_reduce(p.grad)
            if kind != "sum":
                p.grad /= 2 if kind == "two" else world_size
    return average_gradients


def _average_divided_first(parameters):
    """Each rank divides its own gradient first; the sum of the g_r / W is the average."""
    world_size = dist.get_world_size()
    for p in parameters:
        if p.grad is not None:
            p.grad.div_(world_size)
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)


def _average_in_one_bucket(parameters):
    """DDP's way: every gradient flattened into one buffer, one all_reduce, the averages copied back."""
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in with_grad])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for p in with_grad:
        p.grad.copy_(flat[offset:offset + p.grad.numel()].view_as(p.grad))
        offset += p.grad.numel()


def _average_by_avg_op(parameters):
    """all_reduce's own average, ReduceOp.AVG, which gloo has in the torch the checks run on (2.6 raised for it)."""
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)


def _average_by_all_gather(parameters):
    """Every rank gathers every rank's gradient and takes their mean itself."""
    for p in parameters:
        if p.grad is None:
            continue
        gathered = [torch.empty_like(p.grad) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, p.grad)
        p.grad = torch.stack(gathered).mean(dim=0)


register(Exercise(
    id="ch08.average_gradients", points=3, reference=ref.average_gradients, call=drivers.gradients_averaged_on_ranks,
    rtol=1e-12, atol=1e-12,
    cases=(
        Case("2 ranks, a 2 x 2 weight and a bias, by hand", _by_hand),
        Case("3 ranks, a Linear(4, 3) layer's gradients", _grads([(3, 4), (3,)], 3, seed=1)),
        Case("a frozen parameter: no gradient (None) on any rank, and it stays None", _grads(
            [(2, 3), (4,), (3,)], 2, seed=2, none=(1,))),
        Case("1 rank: the average is the gradient itself", _grads([(2, 2), (2,)], 1, seed=3), hidden=True),
        Case("float32 gradients of size 1e6, 2 ranks", _grads([(5, 3), (5,)], 2, seed=4, scale=1e6,
                                                              dtype=torch.float32), hidden=True),
        Case("4 ranks, a scalar and a 3-d parameter", _grads([(), (2, 3, 2), (3,)], 4, seed=5), hidden=True),
    ),
    mistakes=(
        Mistake("all-reduce sum without dividing by the world size", "all_reduce adds the ranks' gradients: divide "
                "by dist.get_world_size() afterwards, or every step is W times too long (and the learning rate "
                "tuned on one process no longer fits).", _average_variant("sum")),
        Mistake("divided by the world size twice", "Divide once: either each rank divides its gradient and then "
                "all_reduce sums, or all_reduce sums and each rank divides the sum. Both divisions make it W "
                "times too small.", _average_variant("twice")),
        Mistake("all_reduce on a copy that is never written back", "all_reduce works in place on the tensor it is "
                "given: reduce p.grad itself (or copy the result into it), or the optimizer steps on the old, "
                "local gradient.", _average_variant("copy")),
        Mistake("only some parameters averaged", "Every parameter with a gradient needs it, the biases too: a "
                "parameter left out keeps its own gradient on each rank and the ranks' copies drift apart.",
                _average_variant("weights_only")),
        Mistake("a missing gradient (None) filled with zeros", "Leave a parameter without a gradient alone: torch's "
                "optimizers skip a parameter whose grad is None, but a zero gradient still gets momentum and "
                "weight decay applied.", _average_variant("zeros")),
        Mistake("a missing gradient (None) not skipped", "A frozen or unused parameter has p.grad None on every "
                "rank; skip it (if p.grad is not None) on every rank alike.", _average_variant("none_not_skipped")),
        Mistake("divided by 2, not the world size", "The number of ranks is dist.get_world_size(); with 3 or 4 "
                "processes dividing by 2 is wrong.", _average_variant("two")),
    ),
    alternatives=(_average_divided_first, _average_in_one_bucket, _average_by_avg_op, _average_by_all_gather),
))


# ---------------------------------------------------------------- ShardedSampler

def _sampler(n, replicas, epochs=2, **params):
    return lambda: {"n": n, "epochs": epochs, "params": {"num_replicas": replicas, **params}}


class _SamplerSameShard(ref.ShardedSampler):
    def __iter__(self):
        saved, self.rank = self.rank, 0
        try:
            return iter(list(ref.ShardedSampler.__iter__(self)))
        finally:
            self.rank = saved


class _SamplerNotReseeded(ref.ShardedSampler):
    def __iter__(self):
        saved, self.epoch = self.epoch, 0
        try:
            return iter(list(ref.ShardedSampler.__iter__(self)))
        finally:
            self.epoch = saved


def _order(sampler):
    if not sampler.shuffle:
        return list(range(sampler.n))
    generator = torch.Generator()
    generator.manual_seed(sampler.seed + sampler.epoch)
    return torch.randperm(sampler.n, generator=generator).tolist()


class _SamplerContiguous(ref.ShardedSampler):
    def __iter__(self):
        order, total = _order(self), len(self) * self.num_replicas
        while len(order) < total:
            order += order[:total - len(order)]
        return iter(order[self.rank * len(self):(self.rank + 1) * len(self)])


class _SamplerUnpadded(ref.ShardedSampler):
    def __iter__(self):
        order = _order(self)
        if self.drop_last:
            order = order[:len(self) * self.num_replicas]
        return iter(order[self.rank::self.num_replicas])


class _SamplerPaddedWithLast(ref.ShardedSampler):
    def __iter__(self):
        order, total = _order(self), len(self) * self.num_replicas
        order += order[-1:] * (total - len(order))
        return iter(order[self.rank:total:self.num_replicas])


class _SamplerLengthFloored(ref.ShardedSampler):
    def __len__(self):
        return self.n // self.num_replicas


class _SamplerModular(ref.ShardedSampler):
    """Entry i of this rank is order[(rank + i · W) mod n]: the wrap-around is the padding."""

    def __len__(self):
        return self.n // self.num_replicas if self.drop_last else -(-self.n // self.num_replicas)

    def __iter__(self):
        order = _order(self)
        return iter(order[(self.rank + i * self.num_replicas) % self.n] for i in range(len(self)))


class _SamplerByTorch(ref.ShardedSampler):
    """torch's own DistributedSampler underneath."""

    def __len__(self):
        return len(self._torch())

    def __iter__(self):
        return iter(self._torch())

    def _torch(self):
        from torch.utils.data import DistributedSampler

        sampler = DistributedSampler(range(self.n), num_replicas=self.num_replicas, rank=self.rank,
                                     shuffle=self.shuffle, seed=self.seed, drop_last=self.drop_last)
        sampler.set_epoch(self.epoch)
        return sampler


register(Exercise(
    id="ch08.ShardedSampler", points=3, reference=ref.ShardedSampler, call=drivers.epochs_of_a_sampler,
    outputs=("len() on each rank", "indices of each rank, each epoch"),
    cases=(
        Case("10 indices on 2 ranks, shuffled, 2 epochs", _sampler(10, 2)),
        Case("10 indices on 3 ranks: 2 repeated to pad to 12", _sampler(10, 3, seed=7)),
        Case("10 indices on 3 ranks, drop_last", _sampler(10, 3, drop_last=True)),
        Case("7 indices on 2 ranks in order (no shuffle)", _sampler(7, 2, epochs=1, shuffle=False)),
        Case("2 indices on 5 ranks: padding repeats the order more than once", _sampler(2, 5, epochs=1, seed=3)),
        Case("1000 indices on 4 ranks, 3 epochs, seed 42", _sampler(1000, 4, epochs=3, seed=42), hidden=True),
        Case("1 rank: every index, the whole shuffle", _sampler(9, 1, seed=1), hidden=True),
        Case("5 indices on 8 ranks, drop_last: nothing for anyone", _sampler(5, 8, epochs=1, drop_last=True),
             hidden=True),
        Case("13 indices on 4 ranks, no shuffle, drop_last", _sampler(13, 4, epochs=1, shuffle=False, drop_last=True),
             hidden=True),
    ),
    mistakes=(
        Mistake("every rank reading the same shard", "Rank r reads the entries r, r + W, r + 2W, … of the epoch's "
                "order; a sampler that ignores its rank gives every rank the same data, and W processes do the work "
                "of one.", _SamplerSameShard),
        Mistake("sampler not reseeded per epoch", "Seed the generator with seed + epoch: with the seed alone every "
                "epoch repeats the first one's order (and set_epoch changes nothing).", _SamplerNotReseeded),
        Mistake("contiguous blocks instead of strided", "torch's DistributedSampler gives rank r every W-th entry "
                "from r (order[r::W]), not a block of consecutive ones; the same indices are covered, but not by "
                "the same ranks.", _SamplerContiguous),
        Mistake("padding missing", "Every rank must read the same number of indices, or the ranks run different "
                "numbers of steps and the last all_reduce waits forever: pad the order to W · ⌈n / W⌉ with indices "
                "from its start.", _SamplerUnpadded),
        Mistake("padded with the last index", "Pad by repeating the order from its start (order + order[:k]), as "
                "torch does, not the last index again.", _SamplerPaddedWithLast),
        Mistake("len() rounded down without drop_last", "Without drop_last each rank reads ⌈n / W⌉ indices (the "
                "order is padded); ⌊n / W⌋ is the drop_last count.", _SamplerLengthFloored),
    ),
    alternatives=(_SamplerModular, _SamplerByTorch),
))


# ---------------------------------------------------------------- accumulated_step

def _network_case(n, inputs, hidden, classes, micro_batches, seed, lr=0.1):
    def make():
        generator = torch.Generator().manual_seed(seed)
        params = {"0.weight": torch.randn(hidden, inputs, generator=generator, dtype=torch.float64) / math.sqrt(inputs),
                  "0.bias": torch.randn(hidden, generator=generator, dtype=torch.float64) * 0.1,
                  "2.weight": torch.randn(classes, hidden, generator=generator, dtype=torch.float64) / math.sqrt(hidden),
                  "2.bias": torch.zeros(classes, dtype=torch.float64)}
        x = torch.randn(n, inputs, generator=generator, dtype=torch.float64)
        y = torch.randint(0, classes, (n,), generator=generator)
        return {"params": params, "x": x, "y": y, "micro_batches": micro_batches, "lr": lr}
    return make


def _accumulate_variant(kind):
    def accumulated_step(model, optimizer, loss_fn, x, y, micro_batches):
        if kind != "stale":
            optimizer.zero_grad()
        total = 0.0
        for x_part, y_part in zip(torch.tensor_split(x, micro_batches), torch.tensor_split(y, micro_batches)):
            if kind == "zero_each":
                optimizer.zero_grad()
            loss = loss_fn(model(x_part), y_part)
            if kind == "by_k":
                loss = loss / micro_batches
            elif kind != "not_divided":
                loss = loss * (len(x_part) / len(x))
            loss.backward()
            total += loss.item()
            if kind == "step_each":
                optimizer.step()
        if kind != "step_each":
            optimizer.step()
        return total
    return accumulated_step


def _accumulate_one_graph(model, optimizer, loss_fn, x, y, micro_batches):
    """The weighted micro-batch losses summed into one loss, one backward: the same gradients (without the memory
    saving, which is the point of accumulating)."""
    optimizer.zero_grad(set_to_none=False)
    parts = zip(x.tensor_split(micro_batches), y.tensor_split(micro_batches))
    loss = sum(loss_fn(model(xp), yp) * xp.shape[0] for xp, yp in parts) / x.shape[0]
    loss.backward()
    optimizer.step()
    return loss


def _accumulate_by_hand(model, optimizer, loss_fn, x, y, micro_batches):
    """torch.autograd.grad on each micro-batch, the weighted gradients summed by hand into p.grad."""
    params = [p for p in model.parameters() if p.requires_grad]
    sums = [torch.zeros_like(p) for p in params]
    total = 0.0
    for xp, yp in zip(torch.tensor_split(x, micro_batches), torch.tensor_split(y, micro_batches)):
        loss = loss_fn(model(xp), yp)
        share = xp.shape[0] / x.shape[0]
        for s, g in zip(sums, torch.autograd.grad(loss, params)):
            s += g * share
        total += float(loss) * share
    for p, s in zip(params, sums):
        p.grad = s
    optimizer.step()
    return total


register(Exercise(
    id="ch08.accumulated_step", points=2, reference=ref.accumulated_step, call=drivers.accumulated_on_a_network,
    outputs=("returned loss", "gradients after the step", "weights after the step"), rtol=1e-9, atol=1e-12,
    cases=(
        Case("8 samples in 4 micro-batches of 2", _network_case(8, 3, 5, 3, 4, seed=1)),
        Case("10 samples in 4 uneven micro-batches (3, 3, 2, 2)", _network_case(10, 4, 6, 3, 4, seed=2)),
        Case("1 micro-batch: a plain step", _network_case(6, 3, 4, 2, 1, seed=3)),
        Case("every sample its own micro-batch (5 of 1)", _network_case(5, 2, 3, 4, 5, seed=4), hidden=True),
        Case("64 samples in 8 micro-batches, lr 0.5", _network_case(64, 8, 16, 10, 8, seed=5, lr=0.5), hidden=True),
        Case("7 samples in 2 uneven micro-batches (4, 3)", _network_case(7, 3, 5, 3, 2, seed=6), hidden=True),
    ),
    mistakes=(
        Mistake("loss not divided by the number of micro-batches", "Each micro-batch's loss is a mean over its own "
                "rows; summing k of them gives k times the gradient of the whole batch. Scale each by its share, "
                "m_i / N (1 / k for equal micro-batches), before backward.", _accumulate_variant("not_divided")),
        Mistake("gradients zeroed before every micro-batch", "zero_grad once, before the first micro-batch: backward "
                "adds into p.grad, and zeroing in between keeps only the last micro-batch's share.",
                _accumulate_variant("zero_each")),
        Mistake("an optimizer step after every micro-batch", "Step once, after the last micro-batch: k steps on "
                "pieces of the batch are k small steps of plain SGD, not one step on the batch.",
                _accumulate_variant("step_each")),
        Mistake("stale gradients kept from the last step", "Start with optimizer.zero_grad(): backward adds to "
                "whatever p.grad already holds, here the previous step's gradients.", _accumulate_variant("stale")),
        Mistake("divided by k with uneven micro-batches", "When the micro-batches differ in size, each is weighted "
                "by its share of the rows, m_i / N: dividing every mean by k over-weights the small ones.",
                _accumulate_variant("by_k")),
    ),
    alternatives=(_accumulate_one_graph, _accumulate_by_hand),
))
