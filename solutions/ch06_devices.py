"""Chapter 06: CPU and GPU. Choosing a device, moving a nested batch to it, timing work on it correctly, a training
epoch that runs unchanged on any device, and a mixed-precision training step in the 16-bit dtype the device wants.

Everything that touches the machine comes in as an argument: the environment and the availability probes of
`pick_device`, the clock and the synchronize function of `time_function`, the device of `train_epoch`. So each
function can be checked on a CPU-only machine (the checks pass stand-ins and a simulated device), and runs on CUDA
or MPS, when present, without an edit.
"""
import os
import statistics

import torch

from solutions.common import autocast_dtype  # noqa: F401 - mixed_precision_step's default, shared with the notebook

ENVIRONMENT_VARIABLE = "NNCOURSE_DEVICE"


def pick_device(environ=None, cuda_available=None, mps_available=None):
    """The device to train on: CUDA if available, else Apple's MPS, else the CPU, unless the environment says.

    A non-empty environ["NNCOURSE_DEVICE"] ("cpu", "cuda", "cuda:1", "mps") is returned as given, whatever is
    available: it lets a run be forced onto the CPU (to compare speeds, or to debug) without an edit.
    environ: a mapping (os.environ when None); cuda_available, mps_available: functions of no argument returning
    bool (torch.cuda.is_available and torch.backends.mps.is_available when None)
    ->  torch.device
    """
    environ = os.environ if environ is None else environ
    cuda_available = torch.cuda.is_available if cuda_available is None else cuda_available
    mps_available = torch.backends.mps.is_available if mps_available is None else mps_available
    ### BEGIN SOLUTION
    chosen = environ.get(ENVIRONMENT_VARIABLE, "")
    if chosen:
        return torch.device(chosen)
    if cuda_available():
        return torch.device("cuda")
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")
    ### END SOLUTION


def to_device(batch, device):
    """The batch with every tensor in it moved to `device`, however deeply it is nested.

    Lists and tuples are rebuilt as the same type (a tuple stays a tuple, a namedtuple stays that namedtuple: it is
    rebuilt from its fields, type(batch)(*items), since its constructor takes one argument per field where tuple and
    list take one iterable), dicts as dicts with the same keys in the same order, every torch.Tensor inside becomes
    tensor.to(device), and anything else (numbers, strings, None, numpy arrays) is kept as it is. The batch itself is
    not changed.
    batch: a tensor, or dicts / lists / tuples (namedtuples too) of them and other values; device: torch.device or str
    ->  the same structure, its tensors on `device`
    """
    ### BEGIN SOLUTION
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {key: to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        items = [to_device(value, device) for value in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch
    ### END SOLUTION


def time_function(fn, warmup=1, repeats=5, clock=None, synchronize=None):
    """How long fn() takes, measured as GPU work must be: `warmup` untimed calls first (caches, lazy
    initialisation, kernel selection), then `repeats` timed calls, each between two synchronize() calls, so
    that the clock is read only once the device has finished the work queued before it.

    CUDA and MPS run work asynchronously: fn() returns as soon as its kernels are queued, and a clock read right
    after measures only the queueing. So: synchronize() after the warm-up, then for each timed call
    start = clock(); fn(); synchronize(); times.append(clock() − start).
    clock: a function of no argument returning seconds (time.perf_counter when None); synchronize: a function of
    no argument that waits for the device (nothing, as on the CPU, when None)
    ->  (the median of the times, the list of the `repeats` times in the order measured)
    """
    import time

    clock = time.perf_counter if clock is None else clock
    ### BEGIN SOLUTION
    wait = synchronize if synchronize is not None else (lambda: None)
    for _ in range(warmup):
        fn()
    wait()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        wait()
        times.append(clock() - start)
    return statistics.median(times), times
    ### END SOLUTION


def train_epoch(model, batches, optimizer, loss_fn, device):
    """One epoch of training on `device`, whatever device that is: the model is moved there and put in training
    mode, and for each batch (x, y), both moved to the device: zero the gradients, forward, loss, backward, step.

    Returns the epoch's mean loss per sample: each batch's loss (a mean over its samples) weighted by its number
    of samples, so that a short last batch counts for what it holds.
    model: torch.nn.Module; batches: iterable of (x: (B, ...), y: (B, ...)) tensors on any device;
    optimizer: over model's parameters; loss_fn(output, y) -> mean loss over the batch; device: torch.device or str
    ->  float
    """
    ### BEGIN SOLUTION
    model.to(device)
    model.train()
    total, count = 0, 0  # the losses are summed on the device and read once: .item() waits for the device
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        total = total + loss.detach() * len(x)
        count += len(x)
    return total.item() / count
    ### END SOLUTION


def mixed_precision_step(model, x, y, optimizer, loss_fn, dtype=None, scaler=None):
    """One training step in mixed precision on the device where x is, as torch.amp prescribes.

    The gradients are zeroed (they may hold an earlier step's), the forward pass and the loss run under
    torch.autocast(x.device.type, dtype=dtype) (matrix products in `dtype`, the weights kept in float32), the
    backward pass and the step outside it; dtype None means autocast_dtype(x.device), what that device wants.
    bfloat16 has float32's range and needs no scaling (CUDA's choice from compute capability 8.0, and CPU autocast's
    default, fast only on CPUs with bfloat16 instructions: AVX512-BF16 or AMX; elsewhere it is emulated, slower than
    float32). float16, the choice on older GPUs (Colab's T4), flushes gradients below about 6e-8 to zero, so with a
    torch.amp.GradScaler the loss is scaled up before backward: scaler.scale(loss).backward(), then
    scaler.step(optimizer) (which unscales the gradients, and skips the step when they hold inf or NaN) and
    scaler.update() (which adapts the scale). Without a scaler: loss.backward(), optimizer.step().
    Afterwards every parameter's .grad holds this step's gradient, unscaled.
    x: (B, ...) and y: (B, ...) tensors on the model's device; dtype: torch.bfloat16, torch.float16 or None;
    scaler: torch.amp.GradScaler or None
    ->  the loss, unscaled, as a float
    """
    dtype = autocast_dtype(x.device) if dtype is None else dtype
    ### BEGIN SOLUTION
    optimizer.zero_grad()
    with torch.autocast(x.device.type, dtype=dtype):
        loss = loss_fn(model(x), y)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    return loss.item()
    ### END SOLUTION
