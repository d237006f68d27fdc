"""Chapter 09 on machines this one is not, proven on a CPU by simulation; no test here measures a GPU or needs one.

- The FSDP script (a string in the notebook) chooses its backend and device with chapter 08's `pick_backend` and
  names them to `fully_shard` in a device mesh. Without a mesh, `fully_shard` builds one on the accelerator torch was
  built for (CUDA for a CUDA build, on any machine) while gloo and the data stay on the CPU (PyTorch issue 132471):
  shown in this process with a patched torch._C._get_accelerator, and, launched, the script runs on a simulated
  Colab machine (one GPU for two ranks, a CUDA build of torch) with gloo on the CPU, where a script without its mesh
  fails.
- The exercises magnitude_prune and dp_sgd_gradient on a simulated GPU (the drivers' `_on_a_simulated_gpu_machine`): the
  references give the CPU's values on the GPU; the simulation refuses what a GPU refuses.
- The notebook's allocator reading (`allocator_peak`) on a simulated GPU whose allocator statistics are made up: it
  resets the peak before the step and reads it after the GPU has finished.
"""
import ast
import os
import time

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F

from autograder.instructor import notebooks
from autograder.instructor.exercises import ch09 as exercises
from autograder.learner import drivers
from solutions import ch09_deployment as ch09
from solutions import launching
from solutions.models import mlp

NOTEBOOK = notebooks.chapter_notebook("ch09")


def code_cells():
    return [cell.source for cell in notebooks.read(NOTEBOOK).cells if cell.cell_type == "code"]


def notebook_definitions():
    """Every function and class that the chapter's code cells define at their top level, and the imports beside
    them, run in a fresh namespace; nothing else of the cells runs (a definition whose defaults read the notebook's
    data, such as accuracy(model, X=X_test), is left out)."""
    namespace = {"torch": torch, "F": F, "np": np, "time": time, "mlp": mlp, "training_memory": ch09.training_memory}
    for source in code_cells():
        for node in ast.parse(source).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)):
                try:
                    exec(compile(ast.Module([node], type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
                except NameError:
                    pass
    return namespace


def fsdp_script():
    """The FSDP_SCRIPT string the notebook writes to a file and launches."""
    for source in code_cells():
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["FSDP_SCRIPT"]:
                return ast.literal_eval(node.value)
    raise AssertionError("no FSDP_SCRIPT in the notebook")


# ---------------------------------------------------------------- FSDP: the devices, named

@pytest.fixture
def one_process_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_fully_shard_without_a_mesh_takes_the_accelerator_torch_was_built_for(monkeypatch, one_process_group):
    """torch 2.13's fully_shard without a mesh calls init_device_mesh on torch._C._get_accelerator(): CUDA for a CUDA
    build of torch, whatever the process group's backend and the data's device. With the mesh the script names
    (init_device_mesh(DEVICE.type, ...), here "cpu"), the shards stay on the CPU."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.fsdp._fully_shard import _fsdp_init

    asked = []

    def mesh_refused(device_type, *args, **kwargs):
        asked.append(device_type)
        raise RuntimeError("no mesh here")

    monkeypatch.setattr(torch._C, "_get_accelerator", lambda: torch.device("cuda"))  # as a CUDA build says
    monkeypatch.setattr(_fsdp_init, "init_device_mesh", mesh_refused)
    with pytest.raises(RuntimeError, match="no mesh here"):
        fully_shard(torch.nn.Linear(4, 3))
    assert asked == ["cuda"]
    named = torch.nn.Linear(4, 3)
    fully_shard(named, mesh=init_device_mesh("cpu", (1,)))
    assert {(type(p).__name__, p.device.type) for p in named.parameters()} == {("DTensor", "cpu")}


def test_the_fsdp_script_takes_its_devices_from_pick_backend_and_names_its_mesh():
    script = fsdp_script()
    assert "from solutions.launching import pick_backend" in script and "= pick_backend()" in script
    assert "dist.init_process_group(BACKEND" in script and '"gloo"' not in script
    assert "MESH = init_device_mesh(DEVICE.type, (WORLD,))" in script
    calls = [line for line in script.splitlines() if "fully_shard(" in line and "import" not in line]
    assert len(calls) == 2 and all("mesh=MESH" in line for line in calls), calls
    assert "device=DEVICE" in script and ".to(DEVICE)" in script  # the data and the networks on the rank's device


SHIM = '''"""A simulated Colab machine for the ranks torchrun starts (they have a LOCAL_RANK), when NNCOURSE_SIMULATED_GPUS
is set: torch reports that many CUDA GPUs and NCCL, and, as a CUDA build of torch does, CUDA as its accelerator."""
import os

if os.environ.get("NNCOURSE_SIMULATED_GPUS") and "LOCAL_RANK" in os.environ:
    import torch

    gpus = int(os.environ["NNCOURSE_SIMULATED_GPUS"])
    torch.cuda.is_available = lambda: gpus > 0
    torch.cuda.device_count = lambda: gpus
    torch.distributed.is_nccl_available = lambda: gpus > 0
    torch._C._get_accelerator = lambda: torch.device("cuda")
'''


def launched_on_a_simulated_colab(tmp_path, script):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM)
    (tmp_path / "train_fsdp.py").write_text(script)
    path = os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH", "")]))
    return launching.launch(tmp_path / "train_fsdp.py", nproc=2, timeout=120,
                            env={"PYTHONPATH": path, "NNCOURSE_SIMULATED_GPUS": "1", "NNCOURSE_DEVICE": ""})


@pytest.mark.slow
def test_the_fsdp_script_trains_with_gloo_on_the_cpu_of_a_simulated_colab_gpu(tmp_path):
    """Two ranks on Colab's one GPU, with a CUDA build of torch: gloo on the CPU, said on the first line, and the
    same training as one process. Most of its time is torchrun's start and each rank's import of torch."""
    out = launched_on_a_simulated_colab(tmp_path, fsdp_script())
    lines = out.splitlines()
    assert lines[0] == ("gloo on cpu (rank 0 of 2): 1 CUDA GPU for 2 ranks on this machine, and NCCL needs one GPU "
                        "per rank"), out
    assert out.count("below 1e-10: True") == 2 and "False" not in out, out
    assert "rank 0 FSDP              parameters  39720" in out, out


@pytest.mark.extended
def test_without_its_mesh_the_script_fails_on_the_same_simulated_machine(tmp_path):
    """The control: the same script with mesh=MESH taken out of its fully_shard calls asks for a CUDA mesh on a
    machine whose torch has no CUDA, and the launch fails. Extended: the default run shows the same default mesh in
    one process (test_fully_shard_without_a_mesh_takes_the_accelerator_torch_was_built_for)."""
    script = fsdp_script().replace(", mesh=MESH)", ")")
    assert "mesh=MESH" not in script
    with pytest.raises(RuntimeError):
        launched_on_a_simulated_colab(tmp_path, script)


# ---------------------------------------------------------------- the exercises on a simulated GPU

def on_the_cpu_and_on_a_gpu(driver, fn, args):
    """What `fn` returns on the CPU, and on the simulated GPU: (where its tensors lie, the values inside)."""
    return driver(fn, args), driver(fn, {**args, "device": "cuda"})


def test_magnitude_prune_on_a_simulated_gpu_gives_the_cpus_masks_on_the_gpu():
    args = exercises._layers(60, (4, 6), (6,), (2, 3, 3), sparsity=0.6)()
    cpu, (layout, values) = on_the_cpu_and_on_a_gpu(drivers.keywords_on_a_device, ch09.magnitude_prune, args)
    assert layout == "[tensor on cuda, tensor on cuda, tensor on cuda]"
    assert all(torch.equal(a, b) for a, b in zip(cpu, values))


def test_dp_sgd_on_a_simulated_gpu_gives_the_cpus_gradient_on_the_gpu():
    """A generator on the CPU draws the same noise whether the parameters lie on the CPU or on the GPU."""
    args = exercises._dp_case(61, "two-layer tanh", 6, max_norm=0.5, noise_multiplier=1.0)()
    cpu, (layout, values) = on_the_cpu_and_on_a_gpu(drivers.dp_sgd_on_a_model, ch09.dp_sgd_gradient, args)
    assert layout == "{'W1': tensor on cuda, 'b1': tensor on cuda, 'W2': tensor on cuda, 'b2': tensor on cuda}"
    for (name, a), b in zip(cpu.items(), values, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14, msg=name)


def test_the_simulated_gpu_refuses_what_a_gpu_refuses():
    """A tensor a factory makes without a device lies on the CPU and cannot meet a GPU tensor; a CPU generator cannot
    draw on the GPU; a Parameter made of a GPU tensor lies on the GPU; and torch is as it was afterwards."""
    made = torch.nn.Parameter.__new__
    on_gpu = drivers._placed(torch.ones(3), "cuda")
    with drivers._on_a_simulated_gpu_machine():
        assert torch.cuda.is_available() and on_gpu.is_cuda and not torch.zeros(3).is_cuda
        with pytest.raises(RuntimeError, match="same device"):
            on_gpu + torch.zeros(3)
        with pytest.raises(RuntimeError, match="Expected a 'cuda' device type for generator but found 'cpu'"):
            torch.randn(3, generator=torch.Generator(), device="cuda")
        drawn = torch.randn(3, generator=torch.Generator().manual_seed(0)).to(on_gpu.device)
        assert drawn.is_cuda and (on_gpu + drawn).is_cuda
        assert torch.nn.Parameter(on_gpu.clone()).is_cuda and not torch.nn.Parameter(torch.ones(2)).is_cuda
    assert torch.nn.Parameter.__new__ is made


# ---------------------------------------------------------------- the allocator's peak, read on a simulated GPU

def test_allocator_peak_resets_before_the_step_and_reads_after_the_gpu_has_finished(monkeypatch):
    """The notebook's allocator_peak on a simulated GPU whose allocator reports made-up figures: the peak statistics
    are reset once the first step has finished, read at the second step's start and again after it has finished, on
    the device asked for; what comes back is the rise above the start."""
    events = []
    figures = {"allocated": 1000, "requested": 900}

    def say(name, value=None):
        def record(device=None):
            events.append((name, torch.device(device)))
            return value() if callable(value) else value
        return record

    monkeypatch.setattr(torch.cuda, "synchronize", say("synchronize"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", say("reset"))
    monkeypatch.setattr(torch.cuda, "memory_allocated", say("allocated", lambda: figures["allocated"]))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", say("peak", 5096))
    monkeypatch.setattr(torch.cuda, "memory_stats", say("stats", lambda: {
        "requested_bytes.all.current": figures["requested"], "requested_bytes.all.peak": 4000}))
    definitions = notebook_definitions()
    steps = []
    real_step = definitions["training_step"]

    def training_step(*args, **kwargs):
        steps.append(len(events))
        return real_step(*args, **kwargs)

    definitions["allocator_peak"].__globals__["training_step"] = training_step
    model = mlp([8, 6, 3], dtype=torch.float32)
    x, y = torch.rand(4, 8), torch.randint(0, 3, (4,))
    drivers._placed([*model.parameters(), x, y], "cpu")
    gpu = torch.device("cuda", 0)
    with drivers._on_a_simulated_gpu_machine():
        model.to(gpu)
        x, y = x.to(gpu), y.to(gpu)
        found = definitions["allocator_peak"](model, x, y, torch.optim.Adam(model.parameters(), foreach=False), gpu)
    assert found == (5096 - 1000, 4000 - 900)
    names = [name for name, _ in events]
    assert names == ["synchronize", "reset", "allocated", "stats", "synchronize", "peak", "stats"], names
    assert {device for _, device in events} == {gpu}
    assert steps == [0, 4]  # a first step before anything is read, the second between the start and the end


# ---------------------------------------------------------------- LiveBytes, the real peak on any device

def test_live_bytes_counts_each_storage_until_it_is_freed():
    definitions = notebook_definitions()
    x = torch.zeros(1000)
    with definitions["LiveBytes"]([x]) as counter:
        assert counter.now == 4000
        y = x.sqrt() / 2  # two new storages at once at the peak (sqrt's result, then the division's)
        assert counter.peak == 4000 + 8000 and counter.now == 4000 + 4000  # the sqrt's result is gone
        view = y[:10]
        assert counter.now == 8000  # a view is no new storage
        del y, view
        assert counter.now == 4000
    assert counter.peak == 12000


def test_the_real_peak_of_an_adam_step_is_the_held_state_and_two_temporaries_of_the_largest_weight():
    """What the chapter says of the batch of 64: the peak comes in the optimizer's step, at the memory held between
    steps plus two temporaries the size of the largest weight matrix (exp_avg_sq.sqrt() / bias_correction2_sqrt in
    torch.optim.Adam's single-tensor loop), and the memory held between steps is the parameters, their gradients,
    Adam's state and the batch."""
    definitions = notebook_definitions()
    sizes = [16, 64, 64, 10]
    model = mlp(sizes, dtype=torch.float32)
    x, y = torch.rand(8, 16), torch.randint(0, 10, (8,))
    start, peak, phase = definitions["real_peak"](model, x, y, torch.optim.Adam(model.parameters(), foreach=False))
    estimate = ch09.training_memory(sizes, 8)
    held = estimate["parameters"] + estimate["gradients"] + estimate["optimizer"] + x.nbytes + y.nbytes
    assert start == held
    # and, still named by Adam's loop while the next parameter's are made, the previous parameter's (a bias of 64)
    assert (peak, phase) == (held + 2 * 64 * 64 * 4 + 64 * 4, "the optimizer's step")


def test_the_allocator_cell_runs_on_a_simulated_gpu(monkeypatch, capsys):
    """The notebook's cell as a machine with a CUDA GPU runs it (the prepared GPU run executes the chapter there):
    the networks, batches and steps on the GPU, LiveBytes beside the allocator, one line per batch (smaller batches
    here, and an allocator whose figures are made up)."""
    source = next(cell for cell in code_cells() if cell.startswith("# NBVAL_IGNORE_OUTPUT\n# because it is a fact of "
                                                                   "the machine: whether it has a CUDA GPU"))
    source = source.replace("], 1024)]", "], 32)]").replace("], 64)", "], 8)")
    assert "32)]" in source and "8)," in source
    for name, value in {"synchronize": None, "reset_peak_memory_stats": None, "memory_allocated": 100,
                        "max_memory_allocated": 300, "get_device_name": "a simulated GPU"}.items():
        monkeypatch.setattr(torch.cuda, name, lambda device=None, value=value: value)
    monkeypatch.setattr(torch.cuda, "memory_stats", lambda device=None: {"requested_bytes.all.current": 90,
                                                                         "requested_bytes.all.peak": 250})
    namespace = notebook_definitions()
    with drivers._on_a_simulated_gpu_machine():
        exec(compile(source, str(NOTEBOOK), "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all("on a simulated GPU, peak above the step's start: LiveBytes" in line
                                   and "the allocator 0.000 MB allocated, 0.000 MB requested" in line
                                   for line in lines), lines
