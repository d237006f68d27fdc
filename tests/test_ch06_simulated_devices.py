"""Chapter 06 on machines this one is not (issue 20), proven on a CPU by simulation: what torch reports about the
machine is patched (torch.cuda.is_available, get_device_name, get_device_capability, synchronize,
torch.backends.mps.is_available), and tensors that must lie elsewhere go to torch's "meta" device or to the course's
simulated CUDA device (autograder/learner/drivers.py). No test here measures a GPU or needs one.

The notebook's own helpers (synchronizer, peak_flops, make_loader, network) are taken from its code cells as written,
without running the cells: their functions and constants are defined in a fresh namespace and called there.
"""
import ast
import collections
import contextlib
import math
import os
import re
import statistics
import sys
import types

import numpy as np
import pytest
import torch

from autograder.instructor import notebooks
from autograder.learner import drivers, registry
from solutions import ch06_devices as ch06

NOTEBOOK = notebooks.chapter_notebook("ch06")


def notebook_definitions():
    """Every function and every constant (an UPPER_CASE name bound to a literal) that the chapter's code cells define
    at their top level, defined in a fresh namespace, nothing else of the cells run."""
    namespace = {"torch": torch, "os": os, "sys": sys, "math": math, "np": np, "statistics": statistics, "THREADS": 1,
                 "ENVIRONMENT_VARIABLE": ch06.ENVIRONMENT_VARIABLE}
    for cell in notebooks.read(NOTEBOOK).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.parse(cell.source).body:
            constant = (isinstance(node, ast.Assign) and all(isinstance(t, ast.Name) and t.id.isupper()
                                                             for t in node.targets))
            if constant:
                try:
                    ast.literal_eval(node.value)
                except ValueError:
                    constant = False
            if isinstance(node, ast.FunctionDef) or constant:
                exec(compile(ast.Module([node], type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace


def code_cells():
    return [cell.source for cell in notebooks.read(NOTEBOOK).cells if cell.cell_type == "code"]


def markdown():
    return "\n".join(cell.source for cell in notebooks.read(NOTEBOOK).cells if cell.cell_type == "markdown")


@pytest.fixture
def cuda_machine(monkeypatch):
    """A machine whose torch reports CUDA (and no MPS); nothing is allocated on it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.delenv(ch06.ENVIRONMENT_VARIABLE, raising=False)
    return monkeypatch


@pytest.fixture
def mac(monkeypatch):
    """An Apple MPS machine as torch reports it: MPS, no CUDA."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.delenv(ch06.ENVIRONMENT_VARIABLE, raising=False)
    return monkeypatch


# ---------------------------------------------------------------- 1. synchronizing the device being timed

def test_the_synchronizer_waits_for_the_device_it_is_given(cuda_machine):
    """torch.cuda.synchronize() without an argument waits for the *current* device (cuda:0 unless changed): with
    NNCOURSE_DEVICE=cuda:1 the work runs on cuda:1 and a timing would measure only the queueing."""
    waited = []
    cuda_machine.setattr(torch.cuda, "synchronize", lambda device=None: waited.append(device))
    cuda_machine.setattr(torch.mps, "synchronize", lambda: waited.append("mps"))
    synchronizer = notebook_definitions()["synchronizer"]
    device = ch06.pick_device({ch06.ENVIRONMENT_VARIABLE: "cuda:1"})
    median, times = ch06.time_function(lambda: None, warmup=1, repeats=3, synchronize=synchronizer(device))
    assert [torch.device(d) if d is not None else None for d in waited] == [torch.device("cuda", 1)] * 4
    for name in ("cuda:0", "cuda"):
        waited.clear()
        synchronizer(name)()
        assert [torch.device(d) if d is not None else None for d in waited] == [torch.device(name)]
    waited.clear()
    synchronizer("mps")()
    assert waited == ["mps"] and synchronizer("cpu") is None


# ---------------------------------------------------------------- 2. the mixed-precision dtype a device wants

@pytest.mark.parametrize("capability, expected", [
    ((7, 5), torch.float16),  # T4, Colab's free GPU: bfloat16 only emulated
    ((7, 0), torch.float16),  # V100
    ((8, 0), torch.bfloat16),  # A100
    ((8, 9), torch.bfloat16),  # L4
    ((9, 0), torch.bfloat16),  # H100
])
def test_autocast_dtype_on_simulated_cuda_gpus(cuda_machine, capability, expected):
    asked = []
    cuda_machine.setattr(torch.cuda, "get_device_capability", lambda device=None: asked.append(device) or capability)
    cuda_machine.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # a T4 says so too
    assert ch06.autocast_dtype(torch.device("cuda", 1)) == expected
    assert ch06.autocast_dtype("cuda:1") == expected
    assert asked and all(torch.device(d) == torch.device("cuda", 1) for d in asked)  # that device's capability


def test_autocast_dtype_on_the_cpu_and_on_a_mac(mac):
    assert ch06.autocast_dtype("cpu") == ch06.autocast_dtype(torch.device("cpu")) == torch.bfloat16
    assert ch06.autocast_dtype(ch06.pick_device()) == torch.float16  # torch's own autocast default on MPS


def test_the_notebook_imports_autocast_dtype_where_the_references_do():
    """One rule in one place: mixed_precision_step's default reads autocast_dtype from solutions.common, which a
    graded class's bundle ships too, in the notebook as in the reference; no cell defines a copy."""
    from solutions import common

    assert ch06.autocast_dtype is common.autocast_dtype
    assert not [source for source in code_cells() if "def autocast_dtype(" in source]
    assert any("from solutions.common import autocast_dtype" in source for source in code_cells())


def tiny_step_setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    return model, torch.randn(8, 4), torch.randint(0, 3, (8,))


@pytest.mark.parametrize("capability, expected", [((7, 5), torch.float16), ((8, 0), torch.bfloat16)])
def test_mixed_precision_step_defaults_to_the_dtype_of_the_device_of_x(cuda_machine, capability, expected):
    used = []
    cuda_machine.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    cuda_machine.setattr(torch, "autocast", lambda device_type, dtype=None, **options:
                         used.append((device_type, dtype)) or contextlib.nullcontext())
    model, x, y = tiny_step_setup()
    drivers._placed([*model.parameters(), x, y], "cpu")
    with drivers._simulated_device():
        model.to("cuda")
        x, y = x.to("cuda"), y.to("cuda")
        ch06.mixed_precision_step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.1),
                                  torch.nn.functional.cross_entropy)
    model, x, y = tiny_step_setup()
    ch06.mixed_precision_step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.1),
                              torch.nn.functional.cross_entropy)
    assert used == [("cuda", expected), ("cpu", torch.bfloat16)]


# ---------------------------------------------------------------- 3. namedtuple batches

Batch = collections.namedtuple("Batch", ["x", "y", "ids"])
Pair = collections.namedtuple("Pair", ["inputs", "mask"])


def test_to_device_keeps_a_namedtuple():
    """The reference, the notebook's copy and every registered alternative, on namedtuples nested in a dict and a
    tuple (the exercise's own cases hold one too, carried to the grading sandbox by the wire; tests/test_wire.py)."""
    batch = Batch(torch.randn(3, 2), torch.tensor([0, 1, 1]), [7, 8, 9])
    nested = {"train": Pair(batch, torch.ones(3, dtype=torch.bool)), "plain": (torch.zeros(1), Pair(None, 2))}
    for fn in (ch06.to_device, notebook_definitions()["to_device"], *registry.get("ch06.to_device").alternatives):
        moved = fn(batch, "meta")
        assert type(moved) is Batch and moved.x.device.type == moved.y.device.type == "meta"
        assert moved.y.dtype == torch.int64 and moved.ids == [7, 8, 9] and batch.x.device.type == "cpu"
        deep = fn(nested, "meta")
        assert type(deep["train"]) is Pair and type(deep["train"].inputs) is Batch and type(deep["plain"]) is tuple
        assert deep["train"].inputs.x.device.type == deep["train"].mask.device.type == "meta"
        assert deep["plain"][1] == Pair(None, 2) and type(deep["plain"][1]) is Pair


# ---------------------------------------------------------------- 4. the GPU peak table

@pytest.mark.parametrize("name, tflops", [
    ("NVIDIA L4", 30.3), ("NVIDIA L40S", 91.6), ("Tesla T4", 8.1), ("NVIDIA A100-SXM4-80GB", 19.5),
    ("NVIDIA A100 80GB PCIe", 19.5), ("NVIDIA A10", 31.2), ("NVIDIA H100 80GB HBM3", 67.0), ("NVIDIA H100 PCIe", 51.0),
    ("NVIDIA H100 NVL", 60.0), ("NVIDIA H200", 67.0), ("NVIDIA H200 NVL", 60.0), ("Tesla V100-SXM2-16GB", 15.7),
    ("NVIDIA A10G", None), ("NVIDIA L40", None), ("NVIDIA GeForce RTX 4090", None), ("Some Future GPU", None),
])
def test_the_peak_of_a_simulated_gpu_is_its_own_or_none(cuda_machine, name, tflops):
    """Matched by whole model name: an L4 is not an L40S, an A10 not an A10G; a GPU not in the table gets no peak
    (never another GPU's, and never a guess from its number of multiprocessors)."""
    cuda_machine.setattr(torch.cuda, "get_device_name", lambda device=None: name)
    cuda_machine.setattr(torch.cuda, "get_device_properties",
                         lambda device=None: pytest.fail("a peak guessed from the device's properties"))
    peak, how = notebook_definitions()["peak_flops"](torch.device("cuda"))
    if tflops is None:
        assert peak is None and name in how
    else:
        assert peak == pytest.approx(tflops * 1e12) and name in how


@pytest.mark.parametrize("matmul, tf32", [
    (types.SimpleNamespace(fp32_precision="none"), False),  # torch's default: products in float32
    (types.SimpleNamespace(fp32_precision="ieee"), False),
    (types.SimpleNamespace(fp32_precision="tf32"), True),  # what set_float32_matmul_precision("high") sets
    (types.SimpleNamespace(allow_tf32=False), False),  # a torch older than fp32_precision
    (types.SimpleNamespace(allow_tf32=True), True),
])
def test_with_tf32_on_the_float32_peak_is_no_ceiling(cuda_machine, matmul, tf32):
    """An A100's 19.5 TFLOP/s hold for products computed in float32; with TF32 allowed torch runs them on the tensor
    cores, faster than that, and the chapter gives no float32 estimate."""
    cuda_machine.setattr(torch.cuda, "get_device_name", lambda device=None: "NVIDIA A100-SXM4-80GB")
    cuda_machine.setattr(torch.backends.cuda, "matmul", matmul)
    peak, how = notebook_definitions()["peak_flops"](torch.device("cuda"))
    assert (peak, "TF32" in how) == ((None, True) if tf32 else (pytest.approx(19.5e12), False))


# ---------------------------------------------------------------- feeding a GPU: pinned batches, forked workers

@pytest.mark.parametrize("platform, device, workers, pinned", [
    ("linux", "cuda", 2, True), ("linux", "cpu", 2, False), ("darwin", "mps", 0, False), ("darwin", "cuda", 0, True),
    ("win32", "cpu", 0, False),
])
def test_the_loader_pins_for_cuda_and_forks_its_workers_only_on_linux(cuda_machine, platform, device, workers, pinned):
    """Pinned memory only where the batches go to CUDA (it is what lets .to(device, non_blocking=True) overlap the
    copy); worker processes forked on Linux, where a dataset class defined in the notebook needs no import, and none
    elsewhere. The loader is built, not iterated: pinning needs a real GPU."""
    cuda_machine.setattr(sys, "platform", platform)
    dataset = torch.utils.data.TensorDataset(torch.zeros(10, 3), torch.zeros(10))
    loader = notebook_definitions()["make_loader"](dataset, device, workers=2, batch_size=4)
    assert (loader.num_workers, loader.pin_memory, loader.batch_size) == (workers, pinned, 4)
    assert (loader.multiprocessing_context is not None) == (workers > 0)
    if workers:
        assert loader.multiprocessing_context.get_start_method() == "fork"


def test_a_loader_with_forked_workers_gives_every_sample_once():
    """On this (Linux) machine, two forked workers over a dataset the notebook defines: every sample once, shuffled
    with the loader's own generator, so the same order on every run."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the notebook forks its workers on Linux only")
    make_loader = notebook_definitions()["make_loader"]
    dataset = torch.utils.data.TensorDataset(torch.arange(20.0).reshape(10, 2), torch.arange(10))
    orders = [torch.cat([y for _, y in make_loader(dataset, "cpu", workers=2, batch_size=3)]) for _ in range(2)]
    assert sorted(orders[0].tolist()) == list(range(10)) and torch.equal(orders[0], orders[1])


# ---------------------------------------------------------------- 5. the model first, then its optimizer

def test_the_chapter_says_to_move_the_model_before_building_its_optimizer():
    text = " ".join(markdown().split())
    assert re.search(r"before (building|you build|making) (its|the) optimizer", text), \
        "the chapter should say: move the model to the device before building its optimizer, and why"
    for cell in code_cells():  # and the chapter's own code does so
        lines = cell.splitlines()
        made = [i for i, line in enumerate(lines) if re.search(r"optim\.\w+\(model\.parameters\(\)", line)]
        moved = [i for i, line in enumerate(lines) if "model = network(" in line and ".to(device)" in line]
        if made and moved:
            assert max(moved) < min(made), cell


def stepped_with_momentum(model):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    return optimizer


def test_a_move_keeps_the_parameters_and_leaves_the_optimizers_state_behind():
    """On the simulated CUDA device, as on a real one: module.to() assigns each parameter's data in place (torch
    2.13's Module._apply, `param.data = ...`, for tensors of the same kind: CPU, CUDA, MPS), so an optimizer built
    before the move still holds the model's parameters; its state (here the momentum) stays on the CPU, and the
    next step mixes two devices. An optimizer built after the move makes its state on the device."""
    model, x, y = tiny_step_setup()
    optimizer = stepped_with_momentum(model)
    buffers = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    drivers._placed([*model.parameters(), *buffers, x, y], "cpu")
    parameters = list(model.parameters())
    with drivers._simulated_device():
        model.to("cuda")
        assert all(a is b for a, b in zip(model.parameters(), parameters))
        assert all(p is q for p, q in zip(optimizer.param_groups[0]["params"], parameters))
        assert all(p.is_cuda for p in model.parameters()) and not any(b.is_cuda for b in buffers)
        x, y = x.to("cuda"), y.to("cuda")
        torch.nn.functional.cross_entropy(model(x), y).backward()
        with pytest.raises(RuntimeError, match="same device"):
            optimizer.step()
        fresh = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        fresh.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        fresh.step()
        assert all(fresh.state[p]["momentum_buffer"].is_cuda for p in model.parameters())


def test_a_move_that_replaces_the_parameters_leaves_an_earlier_optimizer_with_the_old_ones():
    """torch's own behaviour, no simulation: to the meta device (a tensor of another kind) Module._apply makes new
    Parameter objects; an optimizer built before then steps tensors the model no longer uses. A change of dtype on
    the CPU takes the in-place path that moves between CPU, CUDA and MPS take: the same Parameters, and Adam's
    moments stay as they were made (float32)."""
    model = tiny_step_setup()[0]
    optimizer = stepped_with_momentum(model)
    model.to("meta")
    held = optimizer.param_groups[0]["params"]
    assert not any(p is q for p in model.parameters() for q in held) and all(q.device.type == "cpu" for q in held)
    after = torch.optim.SGD(model.parameters(), lr=0.1).param_groups[0]["params"]
    assert all(p is q for p, q in zip(model.parameters(), after)) and all(q.device.type == "meta" for q in after)

    model = tiny_step_setup()[0]
    adam = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4)).sum().backward()
    adam.step()
    parameters = list(model.parameters())
    model.to(torch.float64)
    assert all(a is b and a.dtype == torch.float64 for a, b in zip(model.parameters(), parameters))
    assert all(adam.state[p]["exp_avg"].dtype == torch.float32 for p in model.parameters())


# ---------------------------------------------------------------- 6. MPS has no float64

def test_on_a_simulated_mac_the_chapter_uses_float32(mac):
    """MPS has no float64 (solutions.models.mlp's default, used by other chapters on the CPU). On a Mac, where
    pick_device gives "mps", every tensor the chapter puts on the device is float32 (or an integer type): its network
    is built in torch's default float32, its data converted to float32, its mixed precision is float16. No MPS tensor
    is made here."""
    definitions = notebook_definitions()
    device = definitions["pick_device"]()
    assert device == torch.device("mps") == ch06.pick_device()
    assert torch.get_default_dtype() == torch.float32
    assert {p.dtype for p in definitions["network"]().parameters()} == {torch.float32}
    assert ch06.autocast_dtype(device) == torch.float16
    source = "\n".join(code_cells())
    assert "X_all = torch.tensor(X_train, dtype=torch.float32)" in source
    assert not re.search(r"float64|\.double\(\)|set_default_dtype|solutions\.models", source)
