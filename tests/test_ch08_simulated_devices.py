"""Chapter 08 on machines this one is not (issue 20), proven on a CPU by simulation; no test here measures a GPU or
needs one.

`pick_backend` (solutions/launching.py), which the training script calls in every rank, is a pure function of the
environment torchrun gives a rank and two probes: it is called here with made-up machines (a laptop, Colab's one GPU,
a node of several GPUs, NNCOURSE_DEVICE=cpu). Then real launches whose ranks see a simulated machine: a
sitecustomize module (SHIM), on the ranks' PYTHONPATH, makes torch.cuda.is_available and torch.cuda.device_count
report NNCOURSE_SIMULATED_GPUS GPUs, and torch.distributed.is_nccl_available NCCL, in every process torchrun starts
(those that have a LOCAL_RANK), before the script runs. A script that took NCCL there would fail (this torch has no
NCCL in fact, and the GPUs do not exist), so a launch that trains on gloo, and says why, is the proof that the ranks
stayed on the CPU. The launches run the
training script's check on 3 and 4 ranks, and the notebook's own launch cells on a simulated Colab GPU.
"""
import inspect
import os

import nbclient
import pytest
import torch
import torch.distributed as dist

from autograder.instructor import notebooks
from solutions import ch08_distributed as ch08
from solutions import launching

CPU = torch.device("cpu")

SHIM = '''"""Imported by every Python process started with this folder on its PYTHONPATH, before its own code (see
tests/test_ch08_simulated_devices.py): in a rank that torchrun started (it has a LOCAL_RANK) while
NNCOURSE_SIMULATED_GPUS is set, torch reports that many CUDA GPUs, and NCCL with them."""
import os

if os.environ.get("NNCOURSE_SIMULATED_GPUS") and "LOCAL_RANK" in os.environ:
    import torch

    gpus = int(os.environ["NNCOURSE_SIMULATED_GPUS"])
    torch.cuda.is_available = lambda: gpus > 0
    torch.cuda.device_count = lambda: gpus
    torch.distributed.is_nccl_available = lambda: gpus > 0  # as on Linux with CUDA; NCCL itself is still missing
'''


def ranks(local_rank, local_world_size, **variables):
    """The environment torchrun gives a rank, with `variables` (NNCOURSE_DEVICE) added."""
    return {"LOCAL_RANK": str(local_rank), "LOCAL_WORLD_SIZE": str(local_world_size), **variables}


def machine(gpus, nccl=True):
    """The probes of a machine with `gpus` CUDA GPUs, and a torch with NCCL or without."""
    return {"cuda_device_count": lambda: gpus, "nccl_available": lambda: nccl}


# ---------------------------------------------------------------- the choice, a pure function

def test_a_laptop_without_a_gpu_runs_gloo_on_the_cpu():
    assert launching.pick_backend(ranks(1, 2), **machine(0)) == ("gloo", CPU, "no CUDA GPU on this machine")


def test_two_ranks_on_colabs_one_gpu_run_gloo_on_the_cpu_and_say_why():
    """What failed before: rank 1 took cuda:1 on a machine that has only cuda:0 ("invalid device ordinal"), and two
    NCCL ranks cannot share one GPU anyway."""
    for local_rank in (0, 1):
        assert launching.pick_backend(ranks(local_rank, 2), **machine(1)) == (
            "gloo", CPU, "1 CUDA GPU for 2 ranks on this machine, and NCCL needs one GPU per rank")
    assert launching.pick_backend(ranks(0, 1), **machine(1)) == (
        "nccl", torch.device("cuda", 0), "1 CUDA GPU for 1 rank on this machine, one each")  # nproc=1 on Colab


def test_four_ranks_on_four_gpus_take_nccl_and_a_gpu_each():
    for local_rank in range(4):
        backend, device, why = launching.pick_backend(ranks(local_rank, 4), **machine(4))
        assert (backend, device) == ("nccl", torch.device("cuda", local_rank))
        assert why == "4 CUDA GPUs for 4 ranks on this machine, one each"
    assert launching.pick_backend(ranks(1, 2), **machine(8))[:2] == ("nccl", torch.device("cuda", 1))  # spare GPUs
    assert launching.pick_backend(ranks(3, 4), **machine(3))[:2] == ("gloo", CPU)  # one short


def test_nncourse_device_cpu_keeps_the_ranks_on_the_cpu_of_a_gpu_machine():
    """Chapter 06's variable, read the same way: a non-empty value that is not a CUDA device puts the ranks on the CPU
    without asking the machine; a CUDA one ("cuda", "cuda:1") leaves each rank its own GPU; an empty one is none."""
    def no_probe():
        raise AssertionError("the machine was probed although NNCOURSE_DEVICE had decided")

    for value in ("cpu", "mps"):
        assert launching.pick_backend(ranks(1, 4, NNCOURSE_DEVICE=value), cuda_device_count=no_probe,
                                      nccl_available=no_probe) == (
            "gloo", CPU, f"NNCOURSE_DEVICE={value} keeps the ranks on the CPU")
    for value in ("cuda", "cuda:1", ""):
        assert launching.pick_backend(ranks(2, 4, NNCOURSE_DEVICE=value), **machine(4))[:2] == (
            "nccl", torch.device("cuda", 2))
    assert launching.pick_backend(ranks(1, 2, NNCOURSE_DEVICE="cuda"), **machine(1))[:2] == ("gloo", CPU)


def test_gpus_without_nccl_run_gloo_on_the_cpu():
    """torch on Windows has CUDA and no NCCL."""
    assert launching.pick_backend(ranks(0, 2), **machine(2, nccl=False)) == (
        "gloo", CPU, "2 CUDA GPUs for 2 ranks on this machine, but this torch has no NCCL (on Windows, for one)")


def test_by_default_it_reads_torchruns_environment_and_asks_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(dist, "is_nccl_available", lambda: True)
    monkeypatch.delenv("NNCOURSE_DEVICE", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert launching.pick_backend()[:2] == ("nccl", torch.device("cuda", 1))
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "3")
    assert launching.pick_backend()[:2] == ("gloo", CPU)
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.delenv("LOCAL_WORLD_SIZE")  # one process, not started by torchrun
    assert launching.pick_backend()[:2] == ("nccl", torch.device("cuda", 0))
    monkeypatch.setenv("NNCOURSE_DEVICE", "cpu")
    assert launching.pick_backend()[:2] == ("gloo", CPU)


def test_the_script_takes_its_backend_and_device_from_pick_backend_alone():
    script = ch08.TRAINING_SCRIPT
    assert "from solutions.launching import pick_backend" in script and "= pick_backend()" in script
    assert "dist.init_process_group(BACKEND" in script
    assert "is_available()" not in script and "LOCAL_RANK']" not in script


# ---------------------------------------------------------------- launches on simulated machines

@pytest.fixture
def simulated(tmp_path):
    """environment(gpus): the variables under which the ranks of a launch see a machine of `gpus` CUDA GPUs."""
    folder = tmp_path / "shim"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SHIM)

    def environment(gpus):
        path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH", "")]))
        return {"PYTHONPATH": path, "NNCOURSE_SIMULATED_GPUS": str(gpus)}
    return environment


def write_script(folder):
    (folder / "my_ch08.py").write_text("import torch\nimport torch.distributed as dist\n\n\n" +
                                       inspect.getsource(ch08.average_gradients))
    (folder / "train_ddp.py").write_text(ch08.TRAINING_SCRIPT)
    return folder / "train_ddp.py"


@pytest.mark.slow
@pytest.mark.parametrize("world, gpus, variables, why, steps_per_epoch", [
    (3, 2, {"NNCOURSE_DEVICE": ""}, "2 CUDA GPUs for 3 ranks on this machine, and NCCL needs one GPU per rank", 14),
    (4, 4, {"NNCOURSE_DEVICE": "cpu"}, "NNCOURSE_DEVICE=cpu keeps the ranks on the CPU", 10),
], ids=["3 ranks, 2 GPUs", "4 ranks, 4 GPUs, NNCOURSE_DEVICE=cpu"])
def test_the_check_on_3_and_4_ranks_of_simulated_gpu_machines(tmp_path, simulated, world, gpus, variables, why,
                                                              steps_per_epoch):
    """World sizes other than 2 (the chapter suggests 4 and 16): every check compares True, where 4 ranks used to
    compare False after a short last batch, with the ranks on gloo and the CPU for the reason rank 0 gives. Quiet
    figures: 8 s for 3 ranks, 10 s for 4 (2 cores), mostly torchrun's start and each rank's import of torch."""
    out = launching.launch(write_script(tmp_path), world, ["check"], timeout=120, env={**simulated(gpus), **variables})
    lines = out.splitlines()
    assert lines[0] == f"gloo on cpu (rank 0 of {world}): {why}", out
    assert lines[1] == (f"{world} ranks x batch 32 against 1 process x batch {world * 32}, float64, "
                        f"{steps_per_epoch} steps per epoch of the 1347 digits"), out
    assert out.count("below 1e-12: True") == 2 and out.count("below 1e-10: True") == 2, out
    assert "False" not in out and "nan" not in out
    yours, alone = lines[-1].split(": ", 1)[1].split(", ")
    assert yours.split()[0] == alone.split()[0], lines[-1]  # the same training loss, printed to 4 decimals


@pytest.mark.slow
def test_the_notebooks_launches_on_a_simulated_colab_gpu(monkeypatch, simulated):
    """The notebook's code cells (not its graded checks and questions) run in a kernel whose launches start ranks
    that see one GPU, as on Colab: the 2-rank launch trains with gloo on the CPU and says why, where it used to take
    NCCL and cuda:1 and fail, and the next cell, which reads that launch's output, runs (it used to fail with a
    NameError) and times 1 process on the CPU too, where the 2 ranks ran, not with NCCL on the one GPU; section 6's
    practices, launched on 2 ranks, run on the CPU as well. Quiet figure 20 s (2 cores) before section 6's launch
    was added, which took 8.5 s of a 34 s run at load 7: a kernel's start and three launches."""
    for name, value in simulated(1).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NNCOURSE_DEVICE", raising=False)
    path = notebooks.chapter_notebook("ch08")
    notebook = notebooks.read(path)
    notebook.cells = [cell for cell in notebook.cells if cell.cell_type == "code" and "answer(" not in cell.source
                      and not cell.metadata.get("nbgrader", {}).get("grade")]  # the exercises' answers stay
    for cell in notebook.cells:
        cell.outputs = []
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()  # raises CellExecutionError at the first cell that fails
    printed = ["".join(output.get("text", "") for output in cell.outputs) for cell in notebook.cells]
    launched = next(text for cell, text in zip(notebook.cells, printed) if cell.source.startswith("two = launch("))
    assert launched.startswith("gloo on cpu (rank 0 of 2): 1 CUDA GPU for 2 ranks on this machine, and NCCL needs "
                               "one GPU per rank\n"), launched
    assert launched.count(": True") == 4 and "False" not in launched, launched
    table = next(text for cell, text in zip(notebook.cells, printed) if "figures = [json.loads" in cell.source)
    assert "speed-up with 2 processes:" in table, table
    rows = [line.split() for line in table.splitlines() if line.split()[1:2] in (["gloo"], ["nccl"])]
    assert [row[:2] for row in rows] == [["1", "gloo"], ["2", "gloo"]], table  # 1 process too, not NCCL on the GPU
    practiced = next(text for cell, text in zip(notebook.cells, printed) if "practiced = launch(" in cell.source)
    assert practiced.startswith("gloo on cpu (rank 0 of 2): 1 CUDA GPU for 2 ranks on this machine, and NCCL needs "
                                "one GPU per rank\n"), practiced
    assert ": True" in practiced and "False" not in practiced, practiced  # section 6's practices, on the CPU too
