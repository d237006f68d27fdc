"""Chapter 06 exercises: choosing a device, moving a nested batch, timing device work, a device-agnostic training
epoch and a mixed-precision step.

No case needs a GPU. The device chooser gets a made-up environment and availability probes; the timer gets the
clock and synchronize of a made-up asynchronous device whose calls take given durations; moving a batch and the
training epoch run on a CUDA device simulated on the CPU (autograder/learner/drivers.py, `_simulated_device`), where a
tensor moved to "cuda" is tagged as being there and mixing it with a CPU tensor raises torch's own error; the
mixed-precision step runs bfloat16 and float16 autocast, and a GradScaler, on the CPU, and on a simulated GPU whose
torch reports CUDA (`_a_machine_with_a_gpu`), where what is judged is which device's autocast the model ran under.
"""
import statistics

import numpy as np
import torch

from autograder.learner import drivers, wire
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch06_devices as ref

VARIABLE = ref.ENVIRONMENT_VARIABLE


# ---------------------------------------------------------------- pick_device

def _machine(cuda, mps, **variables):
    return lambda: {"variables": dict(variables), "cuda": cuda, "mps": mps}


def _pick_variant(kind):
    def pick_device(environ=None, cuda_available=None, mps_available=None):
        chosen = environ.get(VARIABLE, "")
        if kind == "empty" and VARIABLE in environ:
            return torch.device(environ[VARIABLE])
        if chosen and kind != "ignored":
            return torch.device(chosen)
        order = [("mps", mps_available), ("cuda", cuda_available)] if kind == "mps_first" else \
            [("cuda", cuda_available), ("mps", mps_available)]
        for name, available in order:
            if (available if kind == "not_called" else available()):
                return torch.device(name)
        return torch.device("cpu")
    return pick_device


def _pick_by_name(environ=None, cuda_available=None, mps_available=None):
    if environ is None:
        import os
        environ = os.environ
    override = environ.get(VARIABLE) or None
    return override or ("cuda" if cuda_available() else "mps" if mps_available() else "cpu")


def _pick_from_list(environ=None, cuda_available=None, mps_available=None):
    present = [name for name, probe in (("cuda", cuda_available), ("mps", mps_available)) if probe()] + ["cpu"]
    return torch.device((environ or {}).get(VARIABLE) or present[0])


register(Exercise(
    id="ch06.pick_device", points=1, reference=ref.pick_device, call=drivers.with_fake_devices,
    cases=(
        Case("CUDA and MPS both present: CUDA", _machine(True, True)),
        Case("only MPS (a Mac)", _machine(False, True)),
        Case("nothing but the CPU", _machine(False, False)),
        Case(f"{VARIABLE}=cpu on a CUDA machine", _machine(True, False, **{VARIABLE: "cpu"})),
        Case(f"{VARIABLE} set but empty", _machine(True, True, **{VARIABLE: ""})),
        Case("only CUDA", _machine(True, False), hidden=True),
        Case(f"{VARIABLE}=cuda:1 beside other variables", _machine(True, True, HOME="/root", **{VARIABLE: "cuda:1"}),
             hidden=True),
        Case(f"{VARIABLE}=mps on a machine with both", _machine(True, True, **{VARIABLE: "mps"}), hidden=True),
    ),
    mistakes=(
        Mistake("environment override ignored", f"A non-empty environ[{VARIABLE!r}] wins over what is available: "
                "it is how a run is forced onto the CPU without editing the code.", _pick_variant("ignored")),
        Mistake("MPS before CUDA", "Try CUDA first, then MPS, then the CPU: a machine with both (rare, but a test "
                "machine may fake it) should use CUDA.", _pick_variant("mps_first")),
        Mistake("availability probe not called", "cuda_available is a function: `if cuda_available:` is always true "
                "(a function is truthy); call it, `if cuda_available():`.", _pick_variant("not_called")),
        Mistake("an empty override taken as a device", f"{VARIABLE}= (set, but empty) means no override: test the "
                "value, not whether the name is present (torch.device('') raises).", _pick_variant("empty")),
    ),
    alternatives=(_pick_by_name, _pick_from_list),
))


# ---------------------------------------------------------------- to_device

def _tensors(seed):
    generator = torch.Generator().manual_seed(seed)
    return lambda *shape, dtype=torch.float32: (torch.randn(*shape, generator=generator).to(dtype)
                                                if dtype.is_floating_point else
                                                torch.randint(0, 10, shape, generator=generator).to(dtype))


def _dict_batch():
    t = _tensors(1)
    return {"batch": {"x": t(4, 3), "y": t(4, dtype=torch.int64), "ids": [3, 5, 8, 13]}, "device": "cuda"}


def _tuple_batch():
    t = _tensors(2)
    return {"batch": (t(2, 5), {"mask": t(2, 5, dtype=torch.bool), "lengths": [t(2, dtype=torch.int32)]}),
            "device": "cuda"}


def _other_values():
    t = _tensors(3)
    return {"batch": {"x": t(3), "name": "digits", "weight": 0.5, "note": None, "raw": np.arange(4.0),
                      "pair": (t(1), 7)}, "device": "cuda"}


def _deep():
    t = _tensors(4)
    return {"batch": [[[(t(2),), {"z": [t(1)]}]], ()], "device": "cuda"}


# namedtuples of the wire's own classes, so that a case comes back from the sandbox as the same type
Batch = wire.namedtuple_type("Batch", ("x", "y", "ids"))
Pair = wire.namedtuple_type("Pair", ("inputs", "mask"))


def _named():
    t = _tensors(9)
    return {"batch": Batch(t(3, 2), t(3, dtype=torch.int64), [7, 8, 9]), "device": "cuda"}


def _named_inside():
    t = _tensors(10)
    batch = Batch(t(2, 4, dtype=torch.float64), t(2, dtype=torch.int64), None)
    return {"batch": {"train": Pair(batch, t(2, 4, dtype=torch.bool)), "plain": (t(1), Pair(None, 2))},
            "device": "cuda"}


def _rebuilt(batch, items, one_iterable=False):
    """`items` in a container of batch's type: a namedtuple from one argument per field, unless `one_iterable`."""
    return type(batch)(*items) if hasattr(batch, "_fields") and not one_iterable else type(batch)(items)


def _move_variant(kind):
    def to_device(batch, device):
        if kind == "outer":
            if isinstance(batch, dict):
                return {key: value.to(device) if isinstance(value, torch.Tensor) else value
                        for key, value in batch.items()}
            if isinstance(batch, (list, tuple)):
                return _rebuilt(batch, [value.to(device) if isinstance(value, torch.Tensor) else value
                                        for value in batch])
            return batch.to(device) if isinstance(batch, torch.Tensor) else batch
        if isinstance(batch, torch.Tensor):
            return batch.to(device)
        if isinstance(batch, np.ndarray) and kind == "arrays":
            return torch.as_tensor(batch).to(device)
        if isinstance(batch, dict) and kind == "in_place":
            for key, value in batch.items():
                batch[key] = to_device(value, device)
            return batch
        if isinstance(batch, dict):
            return {key: to_device(value, device) for key, value in batch.items()}
        if isinstance(batch, (list, tuple)):
            moved = [to_device(value, device) for value in batch]
            return moved if kind == "list" else _rebuilt(batch, moved, one_iterable=kind == "one_iterable")
        return batch
    return to_device


def _move_by_pytree(batch, device):
    from torch.utils._pytree import tree_map

    return tree_map(lambda leaf: leaf.to(device) if isinstance(leaf, torch.Tensor) else leaf, batch)


def _move_by_abc(batch, device):
    from collections.abc import Mapping

    if torch.is_tensor(batch):
        return batch.to(device=device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)((key, _move_by_abc(value, device)) for key, value in batch.items())
    if isinstance(batch, tuple):
        moved = [_move_by_abc(value, device) for value in batch]
        return type(batch)(*moved) if hasattr(batch, "_fields") else tuple(moved)
    if isinstance(batch, list):
        return [_move_by_abc(value, device) for value in batch]
    return batch


register(Exercise(
    id="ch06.to_device", points=2, reference=ref.to_device, call=drivers.onto_simulated_device,
    outputs=("structure", "values", "the batch passed in, afterwards"),
    cases=(
        Case("a dict: x, y and a list of ids", _dict_batch),
        Case("a tuple (x, {mask, [lengths]})", _tuple_batch),
        Case("other values kept: a string, a number, None, a numpy array", _other_values),
        Case("one tensor alone", lambda: {"batch": _tensors(5)(2, 2), "device": "cuda"}),
        Case("nested four deep, and an empty tuple", _deep),
        Case("a namedtuple Batch(x, y, ids)", _named),
        Case("back to the CPU from the device", lambda: {**_tuple_batch(), "device": "cpu", "start": "cuda"},
             hidden=True),
        Case("empty containers", lambda: {"batch": {"a": [], "b": {}, "c": ()}, "device": "cuda"}, hidden=True),
        Case("a 1-tuple of a float64 tensor", lambda: {"batch": (_tensors(6)(3, dtype=torch.float64),),
                                                      "device": "cuda"}, hidden=True),
        Case("a list of (x, y) pairs", lambda: {"batch": [(_tensors(7)(2), _tensors(8)(2, dtype=torch.int64))] * 3,
                                               "device": "cuda"}, hidden=True),
        Case("namedtuples inside a dict and a tuple", _named_inside, hidden=True),
    ),
    mistakes=(
        Mistake("only the outer container moved", "Tensors inside a nested list, tuple or dict must move too: call "
                "the function on each item (recursion), not only .to() on the top-level tensors.",
                _move_variant("outer")),
        Mistake("a tuple rebuilt as a list", "Keep each container's type: type(batch)(...) for a tuple or list (a "
                "tuple comprehension does not exist; a list comprehension gives a list).", _move_variant("list")),
        Mistake("numpy arrays turned into tensors", "Move tensors and leave every other value as it is: a numpy "
                "array stays a numpy array (the caller may not want it on the device).", _move_variant("arrays")),
        Mistake("a namedtuple rebuilt from one iterable", "A namedtuple's constructor takes one argument per field: "
                "rebuild it with type(batch)(*items), where tuple and list take one iterable, type(batch)(items). "
                "A namedtuple is the tuple with the attribute _fields.", _move_variant("one_iterable")),
        Mistake("the batch passed in changed", "Return a new batch and leave the caller's as it was: build new dicts "
                "and lists ({key: to_device(value, device) for ...}) instead of assigning the moved tensors into the "
                "ones passed in (batch[key] = ...), which moves the caller's own batch too.",
                _move_variant("in_place")),
    ),
    alternatives=(_move_by_pytree, _move_by_abc),
))


# ---------------------------------------------------------------- time_function

LAUNCH = 2.0 ** -10  # seconds of the caller's time to queue one call on the made-up device


def _timing(durations, asynchronous=True, **options):
    return lambda: {"durations": list(durations), "launch": LAUNCH, "asynchronous": asynchronous, **options}


def _timer_variant(kind):
    def time_function(fn, warmup=1, repeats=5, clock=None, synchronize=None):
        wait = synchronize if synchronize is not None and kind != "no_sync" else (lambda: None)
        for _ in range(0 if kind == "no_warmup" else warmup):
            fn()
        if kind != "warmup_not_waited":
            wait()
        times = []
        for _ in range(repeats):
            start = clock()
            fn()
            wait()
            times.append(clock() - start)
        if kind == "sorted_in_place":
            times.sort()  # to read the median off the middle: the list returned is then sorted too
        return (statistics.fmean(times) if kind == "mean" else statistics.median(times)), times
    return time_function


def _timer_numpy(fn, warmup=1, repeats=5, clock=None, synchronize=None):
    sync = synchronize or (lambda: None)
    [fn() for _ in range(warmup)]
    times = []
    for _ in range(repeats):
        sync()
        begin = clock()
        fn()
        sync()
        times.append(clock() - begin)
    return float(np.median(times)), times


def _timer_sorted(fn, warmup=1, repeats=5, clock=None, synchronize=None):
    for _ in range(warmup):
        fn()
    if synchronize:
        synchronize()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        if synchronize:
            synchronize()
        times.append(clock() - t0)
    ordered, middle = sorted(times), repeats // 2
    median = ordered[middle] if repeats % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return median, times


register(Exercise(
    id="ch06.time_function", points=2, reference=ref.time_function, call=drivers.timed_on_a_fake_device,
    outputs=("(median, times)", "calls of fn"),
    cases=(
        Case("asynchronous device: 2 slow warm-up calls, 5 timed, one outlier",
             _timing([0.5, 0.5, 0.125, 0.125, 0.25, 0.125, 0.125], warmup=2, repeats=5)),
        Case("the CPU (no synchronize), the defaults: 1 warm-up, 5 timed",
             _timing([0.25, 0.0625, 0.0625, 0.125, 0.0625, 0.0625], asynchronous=False)),
        Case("asynchronous device, the defaults", _timing([1.0, 0.25, 0.25, 0.5, 0.25, 0.25])),
        Case("no warm-up, one timed call", _timing([0.75], warmup=0, repeats=1)),
        Case("4 timed calls: the median of an even count", _timing([0.5, 0.125, 0.25, 0.375, 0.125], warmup=1,
                                                                   repeats=4), hidden=True),
        Case("3 warm-up calls, 9 timed, two outliers", _timing([2.0] * 3 + [0.03125] * 4 + [1.0, 0.03125, 4.0] +
                                                               [0.03125] * 2, warmup=3, repeats=9), hidden=True),
        Case("the CPU, 2 timed calls", _timing([0.5, 0.25, 0.125], asynchronous=False, warmup=1, repeats=2),
             hidden=True),
    ),
    mistakes=(
        Mistake("timing without synchronizing", "On CUDA and MPS fn() returns as soon as its work is queued: call "
                "synchronize() after fn() and before reading the clock, or you time the queueing (here 1 ms), not "
                "the work.", _timer_variant("no_sync")),
        Mistake("no warm-up", "Make the `warmup` untimed calls first: the first calls pay for lazy initialisation, "
                "caches and kernel selection, which later calls do not.", _timer_variant("no_warmup")),
        Mistake("mean instead of median", "Return the median of the times: one slow run (another process, a "
                "garbage collection) moves the mean far more than the median.", _timer_variant("mean")),
        Mistake("warm-up not waited for", "synchronize() after the warm-up calls too: their queued work otherwise "
                "finishes inside the first timed call.", _timer_variant("warmup_not_waited")),
        Mistake("the times sorted in place", "Return the times in the order they were measured: times.sort() (to "
                "find the median) reorders the list you return too; take the median of a sorted copy, "
                "sorted(times), or with statistics.median.", _timer_variant("sorted_in_place")),
    ),
    alternatives=(_timer_numpy, _timer_sorted),
))


# ---------------------------------------------------------------- train_epoch

def _network(seed, d, h, c, norm=False):
    generator = torch.Generator().manual_seed(seed)
    params = {"0.weight": torch.randn(h, d, generator=generator) / d ** 0.5, "0.bias": 0.1 * torch.randn(h, generator=generator)}
    last = "2"
    if norm:
        params.update({"1.weight": 1 + 0.1 * torch.randn(h, generator=generator),
                       "1.bias": 0.1 * torch.randn(h, generator=generator),
                       "1.running_mean": torch.zeros(h), "1.running_var": torch.ones(h),
                       "1.num_batches_tracked": torch.tensor(0)})
        last = "3"
    params.update({f"{last}.weight": torch.randn(c, h, generator=generator) / h ** 0.5,
                   f"{last}.bias": 0.1 * torch.randn(c, generator=generator)})
    return params


def _epoch(seed, sizes, device, lr=0.1, d=3, h=6, c=3):
    def make():
        generator = torch.Generator().manual_seed(100 + seed)
        batches = [(2 * torch.randn(n, d, generator=generator) + 1, torch.randint(0, c, (n,), generator=generator))
                   for n in sizes]
        return {"params": _network(seed, d, h, c, norm=True), "batches": batches, "lr": lr, "device": device}
    return make


def _epoch_variant(kind):
    def train_epoch(model, batches, optimizer, loss_fn, device):
        if kind != "model_not_moved":
            model.to(device)
        if kind != "eval":
            model.train()
        losses, sizes = [], []
        for x, y in batches:
            x, y = x.to(device), y.to(device)
            if kind not in ("no_zero_grad", "zero_after_backward"):
                optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            if kind == "zero_after_backward":
                optimizer.zero_grad()
            optimizer.step()
            losses.append(loss.item())
            sizes.append(len(x))
        if kind == "unweighted":
            return sum(losses) / len(losses)
        return sum(loss * n for loss, n in zip(losses, sizes)) / sum(sizes)
    return train_epoch


def _epoch_on_device(model, batches, optimizer, loss_fn, device):
    model = model.to(device=device).train()
    total = torch.zeros((), device=device)
    count = 0
    for batch in batches:
        x, y = (t.to(next(model.parameters()).device, non_blocking=True) for t in batch)
        optimizer.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.detach() * x.shape[0]
        count += x.shape[0]
    return (total / count).item()


def _epoch_summed(model, batches, optimizer, loss_fn, device):
    model.train()
    model.to(device)
    summed, seen = 0.0, 0
    for x, y in batches:
        for p in model.parameters():
            p.grad = None
        output = model(x.to(device))
        loss = loss_fn(output, y.to(device))
        loss.backward()
        optimizer.step()
        summed += float(loss) * y.numel()
        seen += y.numel()
    return summed / seen


register(Exercise(
    id="ch06.train_epoch", points=3, reference=ref.train_epoch, call=drivers.epoch_on_simulated_device,
    outputs=("mean loss", "model state afterwards", "where the model lies"),
    # the mean loss is a float32 quantity: summed on the device (the reference's way) or in Python, and computed with
    # another number of threads in the grading sandbox, it moves in the 7th digit; float32's tolerance, as the model
    # state's float32 tensors get
    rtol=1e-5,
    cases=(
        Case("simulated CUDA: 3 batches of 4", _epoch(1, [4, 4, 4], "cuda")),
        Case("the CPU: batches of 4, 4 and a short last one of 2", _epoch(2, [4, 4, 2], "cpu")),
        Case("simulated CUDA, batches of 6 and 2", _epoch(3, [6, 2], "cuda", lr=0.3)),
        Case("simulated CUDA: one batch of 8", _epoch(4, [8], "cuda"), hidden=True),
        Case("the CPU: 5 batches of 5 and one of 3, lr 0.5", _epoch(5, [5] * 5 + [3], "cpu", lr=0.5), hidden=True),
        Case("simulated CUDA: 4 inputs, 5 classes, batches of 7, 7, 3", _epoch(6, [7, 7, 3], "cuda", d=4, c=5),
             hidden=True),
    ),
    mistakes=(
        Mistake("model and data on different devices", "Move the model (model.to(device)) and every batch (x and y, "
                "x.to(device)) to the same device: an operation on tensors from two devices raises.",
                _epoch_variant("model_not_moved")),
        Mistake("forgetting zero_grad", "backward() adds to .grad: call optimizer.zero_grad() before each backward, "
                "or every step uses the sum of all the gradients so far.", _epoch_variant("no_zero_grad")),
        Mistake("zero_grad between backward and step", "Zero the gradients before backward(), not after it: the "
                "step then finds them all 0 and nothing learns.", _epoch_variant("zero_after_backward")),
        Mistake("mean of the batch losses, unweighted", "Weight each batch's loss by its number of samples: a short "
                "last batch would otherwise count as much as a full one.", _epoch_variant("unweighted")),
        Mistake("model left in eval mode", "Call model.train() at the start of the epoch: after an evaluation the "
                "model is in eval mode, where BatchNorm uses its running statistics and dropout does nothing.",
                _epoch_variant("eval")),
    ),
    alternatives=(_epoch_on_device, _epoch_summed),
))


# ---------------------------------------------------------------- mixed_precision_step

def _step(seed, loss_weight=1.0, n=8, d=4, h=6, c=3, lr=0.1, **options):
    def make():
        generator = torch.Generator().manual_seed(200 + seed)
        x = torch.randn(n, d, generator=generator)
        y = torch.randint(0, c, (n,), generator=generator)
        return {"params": _network(seed, d, h, c), "x": x, "y": y, "lr": lr, "loss_weight": loss_weight, **options}
    return make


def _on_gpu(step, capability=(8, 0), device="cuda"):
    """`step`'s arguments on a machine with a simulated CUDA GPU of this compute capability, the model, x and y on
    `device` ("cuda", that GPU, or "cpu")."""
    return lambda: {**step(), "device": device, "capability": list(capability)}


def _amp_variant(kind):
    def mixed_precision_step(model, x, y, optimizer, loss_fn, dtype=None, scaler=None):
        dtype = ref.autocast_dtype(x.device) if dtype is None else dtype
        if kind != "no_zero_grad":
            optimizer.zero_grad()
        with torch.autocast("cpu" if kind == "cpu_autocast" else x.device.type, dtype=dtype,
                            enabled=kind != "no_autocast"):
            loss = loss_fn(model(x), y)
        if scaler is None or kind == "no_scaler":
            loss.backward()
            optimizer.step()
            return loss.item()
        scaled = scaler.scale(loss)
        scaled.backward()
        if kind == "plain_step":
            optimizer.step()
        else:
            scaler.step(optimizer)
        if kind != "no_update":
            scaler.update()
        return (scaled if kind == "scaled_loss" else loss).item()
    return mixed_precision_step


def _amp_unscale_first(model, x, y, optimizer, loss_fn, dtype=None, scaler=None):
    dtype = ref.autocast_dtype(x.device) if dtype is None else dtype
    for p in model.parameters():
        p.grad = None
    with torch.amp.autocast(device_type=x.device.type, dtype=dtype):
        output = model(x)
        loss = loss_fn(output, y)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return float(loss)


def _amp_enabled_scaler(model, x, y, optimizer, loss_fn, dtype=None, scaler=None):
    dtype = ref.autocast_dtype(x.device) if dtype is None else dtype
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        output = model(x)
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        loss = loss_fn(output, y)
    (loss if scaler is None else scaler.scale(loss)).backward()
    optimizer.step() if scaler is None else scaler.step(optimizer)
    if scaler is not None:
        scaler.update()
    return loss.detach().cpu().item()


register(Exercise(
    id="ch06.mixed_precision_step", points=3, reference=ref.mixed_precision_step,
    call=drivers.one_mixed_precision_step,
    outputs=("autocast in the forward pass", "loss", "gradients afterwards", "parameters afterwards",
             "scale afterwards"),
    cases=(
        Case("bfloat16, no scaler (the CPU's choice), the default dtype", _step(1)),
        Case("a simulated T4 (CUDA, compute capability 7.5): the default dtype, float16, with a scaler",
             _on_gpu(_step(8, init_scale=2.0 ** 16), capability=(7, 5))),
        Case("a simulated A100 (CUDA, compute capability 8.0): the default dtype, bfloat16",
             _on_gpu(_step(9), capability=(8, 0))),
        Case("the CPU of a machine with a GPU (simulated): the CPU's autocast, bfloat16",
             _on_gpu(_step(12), device="cpu")),
        Case("float16 with a scaler, a loss weighted 1e-7: gradients below float16's range",
             _step(2, loss_weight=1e-7, dtype="float16", init_scale=2.0 ** 16)),
        Case("float16 with an initial scale of 2⁴⁰: gradients overflow, the step is skipped, the scale halves",
             _step(3, dtype="float16", init_scale=2.0 ** 40)),
        Case("float16 with a scaler, an ordinary loss", _step(4, dtype="float16", init_scale=2.0 ** 10)),
        Case("bfloat16 named, 16 samples, lr 0.5", _step(5, n=16, lr=0.5, dtype="bfloat16"), hidden=True),
        Case("bfloat16 with a scaler", _step(6, dtype="bfloat16", init_scale=2.0 ** 8), hidden=True),
        Case("float16, 5 classes, a loss weighted 1e-6", _step(7, loss_weight=1e-6, c=5, dtype="float16",
                                                                init_scale=2.0 ** 16), hidden=True),
        Case("simulated CUDA, bfloat16 named, 16 samples", _on_gpu(_step(10, n=16, dtype="bfloat16")), hidden=True),
        Case("simulated CUDA, float16 named, a scaler, 5 classes",
             _on_gpu(_step(11, c=5, dtype="float16", init_scale=2.0 ** 8), capability=(7, 0)), hidden=True),
    ),
    mistakes=(
        Mistake("fp16 without a gradient scaler", "float16 flushes gradients below about 6e-8 to 0: with a scaler, "
                "scaler.scale(loss).backward(), scaler.step(optimizer), scaler.update().", _amp_variant("no_scaler")),
        Mistake("forgetting zero_grad", "The gradients may hold an earlier step's: optimizer.zero_grad() first, or "
                "backward() adds to them.", _amp_variant("no_zero_grad")),
        Mistake("autocast forgotten", "Run the forward pass and the loss under torch.autocast(x.device.type, "
                "dtype=dtype): without it everything stays float32.", _amp_variant("no_autocast")),
        Mistake("optimizer.step() instead of scaler.step(optimizer)", "scaler.step unscales the gradients (divides "
                "by the scale) and skips the step when they hold inf or NaN; optimizer.step() steps with gradients "
                "thousands of times too large.", _amp_variant("plain_step")),
        Mistake("scaler.update() forgotten", "Call scaler.update() after scaler.step: it halves the scale after an "
                "overflow (and grows it after many clean steps); without it every later step overflows again.",
                _amp_variant("no_update")),
        Mistake("the scaled loss returned", "Return the loss itself, loss.item(), not scaler.scale(loss): the scale "
                "is only there to keep the gradients in float16's range.", _amp_variant("scaled_loss")),
        Mistake("autocast on the CPU while the tensors are on the GPU", "Autocast the device the tensors are on, "
                "torch.autocast(x.device.type, dtype=dtype): an autocast for another device changes nothing on "
                "this one, and the GPU runs the whole step in float32.", _amp_variant("cpu_autocast")),
    ),
    alternatives=(_amp_unscale_first, _amp_enabled_scaler),
))
