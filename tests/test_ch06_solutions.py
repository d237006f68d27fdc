"""Chapter 06's references against torch: a nested batch moved to a real second device (torch's "meta" device,
present on every machine) keeps its structure; the timer's calls to an injected clock and synchronize come in the
right order; the device chooser follows the environment; the training epoch equals a loop written out by hand;
the bfloat16 autocast step, and float16 with a GradScaler, stay near a float32 step written out (on the CPU, and on
CUDA where present). The simulated device the checks use behaves as a second device does, and through the checks'
drivers the references keep the device contracts there: namedtuples rebuilt, the caller's batch left where it was,
autocast on the GPU the tensors are on. Tests marked gpu run only where CUDA is present: float16 with a GradScaler
there, and moves to cuda."""
import copy

import numpy as np
import pytest
import torch

from autograder.learner import drivers
from solutions import ch06_devices as ch06
from solutions.common import available_devices

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def nested_batch():
    return {"x": torch.randn(3, 2), "pair": (torch.ones(2), [torch.zeros(1, dtype=torch.int64), "tag", 4]),
            "raw": np.arange(3.0), "none": None}


def test_to_device_moves_every_tensor_and_keeps_everything_else():
    batch = nested_batch()
    before = copy.deepcopy(batch)
    moved = ch06.to_device(batch, "meta")
    assert type(moved["pair"]) is tuple and type(moved["pair"][1]) is list and list(moved) == list(batch)
    assert moved["x"].device.type == moved["pair"][0].device.type == moved["pair"][1][0].device.type == "meta"
    assert moved["pair"][1][0].dtype == torch.int64 and moved["pair"][1][0].shape == (1,)
    assert moved["raw"] is batch["raw"] and moved["pair"][1][1:] == ["tag", 4] and moved["none"] is None
    assert batch["x"].device.type == "cpu" and torch.equal(batch["x"], before["x"])  # the input is untouched


def test_time_function_synchronizes_around_every_timed_call():
    events, now = [], [0.0]

    def fn():
        events.append("fn")
        now[0] += 1.0

    def clock():
        events.append("clock")
        return now[0]

    median, times = ch06.time_function(fn, warmup=2, repeats=3, clock=clock, synchronize=lambda: events.append("sync"))
    assert events == ["fn", "fn", "sync"] + ["clock", "fn", "sync", "clock"] * 3
    assert times == [1.0, 1.0, 1.0] and median == 1.0


def test_time_function_on_the_cpu_with_the_real_clock():
    median, times = ch06.time_function(lambda: torch.ones(200, 200) @ torch.ones(200, 200), warmup=1, repeats=3)
    assert len(times) == 3 and all(t > 0 for t in times) and min(times) <= median <= max(times)


def test_pick_device_follows_the_environment_and_this_machine(monkeypatch):
    monkeypatch.delenv(ch06.ENVIRONMENT_VARIABLE, raising=False)
    here = ch06.pick_device()
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert here.type == expected and torch.zeros(1, device=here).device.type == expected
    with monkeypatch.context() as machine:  # torch's own probes, as pick_device reads them when given none
        machine.setattr(torch.cuda, "is_available", lambda: False)
        machine.setattr(torch.backends.mps, "is_available", lambda: False)
        assert ch06.pick_device() == torch.device("cpu")
        machine.setattr(torch.backends.mps, "is_available", lambda: True)
        assert ch06.pick_device() == torch.device("mps")
        machine.setattr(torch.cuda, "is_available", lambda: True)
        machine.setattr(torch.cuda, "device_count", lambda: 1)
        assert ch06.pick_device().type == "cuda"  # CUDA before MPS; nothing is allocated there
    monkeypatch.setenv(ch06.ENVIRONMENT_VARIABLE, "cpu")
    assert ch06.pick_device() == torch.device("cpu")
    assert ch06.pick_device({}, lambda: False, lambda: True) == torch.device("mps")


def test_the_shipped_helpers_are_not_the_exercise(monkeypatch):
    monkeypatch.setenv(ch06.ENVIRONMENT_VARIABLE, "meta")
    assert "meta" not in available_devices() and available_devices()[0] == "cpu"  # no override: pick_device's


def small_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def batches(sizes, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, 4, generator=generator), torch.randint(0, 3, (n,), generator=generator)) for n in sizes]


def test_train_epoch_equals_a_loop_written_out():
    data = batches([5, 5, 2])
    ours, theirs = small_model(), small_model()
    ours.eval()
    mean = ch06.train_epoch(ours, data, torch.optim.SGD(ours.parameters(), lr=0.1, momentum=0.9),
                            torch.nn.functional.cross_entropy, "cpu")
    optimizer, losses = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9), []
    theirs.train()
    for x, y in data:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item() * len(y))
    assert mean == pytest.approx(sum(losses) / 12, rel=1e-6)  # summed in float32 on the device, not in Python
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()):
        assert torch.equal(a, b)


def test_train_epoch_reads_the_loss_from_the_device_once_an_epoch(monkeypatch):
    """.item() waits for the device (a sync point, chapter 06 section 3): the reference sums the batch losses on the
    device and reads the sum once, however many batches the epoch has."""
    reads = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda tensor: reads.append(tensor.shape) or item(tensor))
    model = small_model()
    mean = ch06.train_epoch(model, batches([4, 4, 4, 2]), torch.optim.SGD(model.parameters(), lr=0.1),
                            torch.nn.functional.cross_entropy, "cpu")
    assert reads == [torch.Size([])] and np.isfinite(mean)


def test_the_simulated_device_behaves_as_a_second_device():
    model, (x, y) = small_model(), batches([4])[0]
    drivers._placed([*model.parameters(), *model.buffers(), x, y], "cpu")
    with drivers._simulated_device():
        model.to("cuda")
        assert next(model.parameters()).device == torch.device("cuda", 0) and next(model.parameters()).is_cuda
        with pytest.raises(RuntimeError, match="same device"):
            model(x)
        moved = x.to("cuda")
        assert moved is not x and x.device.type == "cpu" and moved.device.type == "cuda"
        out = model(moved)
        assert out.device.type == "cuda" and out.cpu().device.type == "cpu"
        with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
            out.detach().numpy()
        assert torch.zeros(2, device="cuda").device.type == "cuda"
    assert torch.equal(moved, x)  # all along, the numbers were computed on the CPU


def test_the_simulated_device_copies_when_asked_as_torch_does():
    """torch.amp.GradScaler copies its found-inf flag to each device with .to(device, non_blocking=True, copy=True),
    which torch's own argument parser for .to() does not take."""
    x = drivers._placed(torch.arange(3.0), "cpu")
    with drivers._simulated_device():
        copied = x.to(device="cuda", non_blocking=True, copy=True)
        same_place = x.to("cpu", copy=True)
        assert copied.device.type == "cuda" and same_place.device.type == "cpu"
    assert torch.equal(copied, x) and copied.data_ptr() != x.data_ptr() != same_place.data_ptr()


def test_a_machine_with_a_simulated_gpu_is_reported_while_it_runs_and_forgotten_after():
    before = (torch.cuda.is_available(), torch.cuda.device_count())
    with drivers._a_machine_with_a_gpu((7, 5)):
        assert torch.cuda.is_available() and torch.cuda.device_count() == 1
        assert torch.cuda.get_device_capability("cuda:0") == (7, 5) and ch06.autocast_dtype("cuda") == torch.float16
        assert torch.amp.GradScaler("cuda").is_enabled()  # off, with a warning, where torch reports no CUDA
    assert (torch.cuda.is_available(), torch.cuda.device_count()) == before


def step_setup(seed=0):
    model = small_model(seed)[:1].append(torch.nn.ReLU()).append(torch.nn.Linear(8, 3))
    x, y = batches([16], seed)[0]
    return model, x, y


def stepped(seed, step, device="cpu"):
    """(loss, gradients, updates) after step(model, x, y, optimizer) from step_setup(seed) on `device`, SGD at
    lr 0.1: the gradients as .grad holds them afterwards, the updates as the parameters moved, both on the CPU."""
    model, x, y = step_setup(seed)
    model, x, y = model.to(device), x.to(device), y.to(device)
    before = [p.detach().clone() for p in model.parameters()]
    loss = step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.1))
    grads = [p.grad.detach().cpu() for p in model.parameters()]
    return loss, grads, [(p.detach() - b).cpu() for p, b in zip(model.parameters(), before)]


def float32_step(model, x, y, optimizer):
    """The oracle: the same step in plain float32, written out."""
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def assert_near(ours, theirs, rel):
    """Every tensor of `ours` within ‖a − b‖ / ‖b‖ < rel of its counterpart: a gradient that is zero, doubled,
    sign-flipped or still scaled is off by 1 or more, whatever the size of its entries."""
    assert len(ours) == len(theirs) > 0
    for k, (a, b) in enumerate(zip(ours, theirs)):
        error = float((a.double() - b.double()).norm() / b.double().norm())
        assert error < rel, f"tensor {k}: relative error {error:.3g} (at most {rel})"


def mixed(dtype, scaler=None):
    return lambda model, x, y, optimizer: ch06.mixed_precision_step(
        model, x, y, optimizer, torch.nn.functional.cross_entropy, dtype=dtype, scaler=scaler)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bfloat16_autocast_step_stays_near_the_float32_step(seed):
    low, low_grads, low_updates = stepped(seed, mixed(torch.bfloat16))
    full, full_grads, full_updates = stepped(seed, float32_step)
    assert low == pytest.approx(full, rel=2e-2) and low != full  # bfloat16 keeps about 3 significant digits
    assert_near(low_grads, full_grads, rel=0.05)  # measured: at most 0.009 over seeds 0 to 7
    assert_near(low_updates, full_updates, rel=0.05)


class RecordingScaler(torch.amp.GradScaler):
    """A GradScaler that notes which of its methods the step called."""

    def __init__(self, device):
        super().__init__(device)
        self.calls = []

    def scale(self, outputs):
        self.calls.append("scale")
        return super().scale(outputs)

    def step(self, optimizer, *args, **kwargs):
        self.calls.append("step")
        return super().step(optimizer, *args, **kwargs)

    def update(self, new_scale=None):
        self.calls.append("update")
        return super().update(new_scale)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, needs_cuda])])
@pytest.mark.parametrize("seed", [3, 4])
def test_float16_with_a_grad_scaler_stays_near_the_float32_step(seed, device):
    """torch 2.13's CPU autocast runs float16 and GradScaler("cpu") scales on the CPU, so this runs everywhere."""
    scaler = RecordingScaler(device)
    half, half_grads, half_updates = stepped(seed, mixed(torch.float16, scaler), device)
    full, full_grads, full_updates = stepped(seed, float32_step, device)
    assert scaler.calls == ["scale", "step", "update"] and scaler.get_scale() == 2.0 ** 16  # no inf: stepped
    assert half == pytest.approx(full, rel=1e-3) and half != full  # float16 ran; the loss comes back unscaled
    assert_near(half_grads, full_grads, rel=0.01)  # .grad unscaled; measured: at most 0.002 over seeds 0 to 7
    assert_near(half_updates, full_updates, rel=0.01)


@pytest.mark.gpu
@needs_cuda
def test_moving_to_cuda_and_an_epoch_there():
    moved = ch06.to_device(nested_batch(), "cuda")
    assert moved["x"].is_cuda and moved["pair"][1][0].is_cuda and isinstance(moved["raw"], np.ndarray)
    assert ch06.pick_device({}).type == "cuda"
    model = small_model()
    mean = ch06.train_epoch(model, batches([5, 3]), torch.optim.SGD(model.parameters(), lr=0.1),
                            torch.nn.functional.cross_entropy, "cuda")
    assert np.isfinite(mean) and next(model.parameters()).is_cuda
    median, times = ch06.time_function(lambda: torch.ones(512, 512, device="cuda") @ torch.ones(512, 512, device="cuda"),
                                       warmup=2, repeats=3, synchronize=torch.cuda.synchronize)
    assert len(times) == 3 and median > 0


# ---------------------------------------------------------------- the device contracts, on a simulated GPU

def test_to_device_rebuilds_namedtuples_and_leaves_the_callers_batch_where_it_was():
    """Through the check's own driver: the result's layout, and the batch passed in as it lies afterwards."""
    from autograder.learner import wire

    Batch, Pair = wire.namedtuple_type("Batch", ("x", "y", "ids")), wire.namedtuple_type("Pair", ("inputs", "mask"))
    batch = {"train": Pair(Batch(torch.ones(2, 3), torch.tensor([0, 1]), None), torch.ones(2, dtype=torch.bool)),
             "ids": [4, torch.zeros(1)]}
    layout, values, caller = drivers.onto_simulated_device(ch06.to_device, {"batch": batch, "device": "cuda"})
    assert layout == ("{'train': Pair(Batch(tensor on cuda, tensor on cuda, NoneType None), tensor on cuda), "
                      "'ids': [int 4, tensor on cuda]}")
    assert caller == layout.replace("cuda", "cpu") and len(values) == 6
    assert type(batch["train"].inputs) is Batch and batch["ids"][1].device.type == "cpu"


def test_mixed_precision_step_on_a_simulated_t4_autocasts_the_gpu_in_float16_with_a_scaler():
    """The check's driver on a simulated T4: the default dtype is float16, the autocast is CUDA's (which on the
    simulation leaves the CPU's arithmetic in float32), GradScaler("cuda") scales and unscales, and the step equals
    a float32 step written out."""
    model, x, y = step_setup(5)
    params = {name: value.detach().clone() for name, value in model.state_dict().items()}
    args = {"params": params, "x": x, "y": y, "lr": 0.1, "loss_weight": 1.0, "device": "cuda",
            "capability": [7, 5], "init_scale": 2.0 ** 16}
    autocast, loss, grads, after, scale = drivers.one_mixed_precision_step(ch06.mixed_precision_step, args)
    assert autocast == "cuda float16" and scale == 2.0 ** 16
    full, full_grads, _ = stepped(5, float32_step)
    assert loss == pytest.approx(full, rel=1e-6)
    assert_near(list(grads.values()), full_grads, rel=1e-5)
    on_the_cpu = drivers.one_mixed_precision_step(ch06.mixed_precision_step, {**args, "device": "cpu"})
    assert on_the_cpu[0] == "cpu bfloat16" and on_the_cpu[1] != loss  # the CPU's own dtype, in its arithmetic
