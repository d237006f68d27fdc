"""A prepared run on one NVIDIA GPU: `python -m benchmarks gpu`, one command that a machine with a GPU runs in under
8 minutes, and a one-page Markdown report of what it found.

    python -m benchmarks gpu --download-wheels .whl            # here, with a network: the wheels the GPU machine lacks
    python -m benchmarks gpu --wheels .whl --out DIR           # there, offline: install, test, execute, measure, report
    python -m benchmarks gpu --dry-run --out DIR               # any machine: every step that needs no GPU

The steps, in order; each is recorded in DIR/results.json and DIR/report.md as soon as it ends, and none stops the
run when it fails:
1. install: the wheels of --wheels (what executing a notebook and chapter 09's service need beside torch, numpy and
   pytest: nbclient, ipykernel, fastapi and what they import) and the course itself with --no-deps, into a folder
   of their own on PYTHONPATH, beside the machine's own torch, as on Colab; the machine's environment is not changed;
2. figures (CUDA only): chapter 06's matrix products against the device's peak and its 16-bit training step against
   float32, timed with CUDA events after a warm-up through the chapter's `time_function`; chapter 09's allocator
   peak of one training step next to the chapter's estimate `training_memory`;
3. the tests marked `gpu` (pytest -m gpu), each test's outcome read from a JUnit XML file;
4. chapters 06, 07, 08 and 09 executed with nbclient, each in a scratch folder with a per-cell timeout, each
   notebook's pass or fail and its first failing cell's error recorded.
Without a CUDA device the run refuses to start unless --dry-run is given; a dry run reports the CUDA-only figures as
"not measured: no GPU". Every number the report prints comes from the recorded results (write_report is a pure
function of them), so a report can be written again from results.json (`--report-from results.json`).
"""
from __future__ import annotations

import argparse
import ast
import datetime
import importlib
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from benchmarks.harness import fmt_seconds

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ("06", "07", "08", "09")
NOT_MEASURED = "not measured: no GPU"

# What executing the notebooks needs that the GPU machine's image lacks (KINDS.md of the device lends lists what it
# holds: torch, numpy, scipy, matplotlib, scikit-learn, tqdm, pytest, hypothesis, onnx, onnxruntime, ...): nbclient
# and a Jupyter kernel with everything they import, and chapter 09's prediction service (fastapi, uvicorn and theirs).
# Versions come from constraints.txt; `--download-wheels` fetches them for CPython 3.12 on x86-64 Linux.
WHEELS = (
    # nbclient and nbformat
    "nbclient", "nbformat", "fastjsonschema", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py",
    "jupyter-client", "jupyter-core", "platformdirs", "traitlets", "pyzmq", "tornado",
    # the kernel
    "ipykernel", "comm", "debugpy", "matplotlib-inline", "nest-asyncio2", "ipython", "ipython-pygments-lexers", "jedi",
    "parso", "pexpect", "ptyprocess", "prompt-toolkit", "wcwidth", "stack-data", "executing", "asttokens", "pure-eval",
    # chapter 09's service (the deploy extra's onnx and onnxruntime are on the machine already)
    "fastapi", "starlette", "pydantic", "pydantic-core", "typing-inspection", "annotated-types",
    "opentelemetry-api", "uvicorn",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_26_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")

# The exact call a session with a lent GPU makes (the device tool's `run`; 2,000 characters at most). `.whl` is
# ignored by git, so it travels only because `carry` names it; what the run writes under $OUT comes back.
DEVICE_COMMAND = ('set -o pipefail; PYTHONUNBUFFERED=1 timeout -k 10 570 python3 -m benchmarks gpu --wheels .whl '
                  '--out "$OUT" 2>&1 | tee "$OUT/log.txt"')
DEVICE_CARRY = (".whl",)
DEVICE_TIMEOUT_S = 600

# What is measured, and how big: recorded in the results before it is measured, so the report prints these values
# from the record. An 8192 x 8192 product is 1.1 TFLOP, milliseconds on any data-centre GPU; the training step and
# the memory step use solutions.models.mlp, the network of chapters 06 and 09, made GPU-sized.
MATMUL_N = 8192
STEP_SIZES, STEP_BATCH = [64, 4096, 4096, 10], 8192
MEMORY_SIZES, MEMORY_BATCH = [784, 4096, 4096, 10], 4096
WARMUP, REPEATS = 3, 10

# Dense tensor-core peaks in TFLOP/s (no sparsity: half the data sheets' "with sparsity" figures), keyed as chapter
# 06's float32 table is and matched by its own cuda_peak_tflops. TF32 and bfloat16 exist from compute capability
# 8.0; a T4 or V100 has float16 tensor cores only. Sources: NVIDIA's data sheets for each model.
TENSOR_PEAK_TFLOPS = {
    "H100 80GB HBM3": {"tf32": 494.5, "bfloat16": 989.5, "float16": 989.5},  # SXM: 989 / 1,979 with sparsity
    "H100 PCIe": {"tf32": 378.0, "bfloat16": 756.5, "float16": 756.5},
    "H100 NVL": {"tf32": 417.5, "bfloat16": 835.5, "float16": 835.5},
    "H200": {"tf32": 494.5, "bfloat16": 989.5, "float16": 989.5},  # SXM: the H100 SXM's tensor cores and clocks
    "H200 NVL": {"tf32": 417.5, "bfloat16": 835.5, "float16": 835.5},
    "A100": {"tf32": 156.0, "bfloat16": 312.0, "float16": 312.0},
    "L40S": {"tf32": 183.0, "bfloat16": 362.05, "float16": 362.05},
    "L4": {"tf32": 60.0, "bfloat16": 121.0, "float16": 121.0},
    "A10": {"tf32": 62.5, "bfloat16": 125.0, "float16": 125.0},
    "T4": {"float16": 65.0},
    "V100-SXM2": {"float16": 125.0},
    "V100-PCIE": {"float16": 112.0},
}


# ---------------------------------------------------------------------------------------------- the wheels to bring

def wheel_pins(constraints=ROOT / "constraints.txt", names=WHEELS):
    """["name==version", ...] for every wheel in `names`, the versions from constraints.txt (one source of pins).
    Raises ValueError naming the ones constraints.txt does not pin."""
    pinned = {}
    for line in Path(constraints).read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pinned[_canonical(name)] = version.strip()
    missing = [name for name in names if _canonical(name) not in pinned]
    if missing:
        raise ValueError(f"{constraints} pins no version of {', '.join(missing)}: add them (pip freeze) first")
    return [f"{name}=={pinned[_canonical(name)]}" for name in names]


def _canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def download_command(dest, python_version="3.12", python=sys.executable):
    """The pip command that downloads the pinned WHEELS, without their dependencies, as CPython `python_version`
    wheels for x86-64 Linux, into `dest`."""
    platforms = [arg for platform_tag in PLATFORMS for arg in ("--platform", platform_tag)]
    return [python, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", python_version,
            "--implementation", "cp", *platforms, "-d", str(dest), *wheel_pins()]


def download_wheels(dest, python_version="3.12"):
    """Download the wheels into `dest` (here, where pip reaches a package index); returns the wheel files there."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(download_command(dest, python_version))
    if done.returncode != 0:
        raise SystemExit(f"pip download failed (exit status {done.returncode}); nothing is installed anywhere")
    found = sorted(dest.glob("*.whl"))
    names = [_canonical(path.name.split("-")[0]) for path in found]
    missing = [name for name in WHEELS if _canonical(name) not in names]
    if missing:
        raise SystemExit(f"{dest} lacks wheels of {', '.join(missing)}")
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:  # pip refuses to install two versions of one package
        raise SystemExit(f"{dest} holds more than one version of {', '.join(twice)}: remove the old wheels")
    size = sum(path.stat().st_size for path in found)
    print(f"{len(found)} wheels, {size / 2**20:.1f} MiB, in {dest}")
    return found


# ---------------------------------------------------------------------------------------------- the machine

def machine_facts():
    """Python, torch and CUDA versions, and the GPU's name, compute capability, memory and driver when there is one."""
    import torch

    facts = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
             "cores": os.cpu_count(), "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0}
    if facts["gpus"]:
        properties = torch.cuda.get_device_properties(0)
        facts.update(device=properties.name, capability=[properties.major, properties.minor],
                     memory_bytes=properties.total_memory, sms=properties.multi_processor_count,
                     driver=_nvidia_smi("driver_version"))
    return facts


def _nvidia_smi(field):
    """One field of nvidia-smi --query-gpu for the first GPU, or None where nvidia-smi is missing or fails."""
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.splitlines()[0].strip() if done.returncode == 0 and done.stdout.strip() else None


# ---------------------------------------------------------------------------------------------- 1. install

def install(site, wheels=None):
    """Install the wheels in the folder `wheels` (if given) and the course, --no-deps and offline, into `site`, and
    put `site` on PYTHONPATH for every process started afterwards (kernels, torchrun's ranks, pytest) and at the end
    of this process's sys.path. The course is built from a copy of its sources, so the checkout is left as it was.
    ->  {"status": "installed" | "failed", "wheels": [file names], "detail": what failed, "seconds"}"""
    started, record = time.monotonic(), {"status": "installed", "site": str(site), "wheels": [], "detail": ""}
    Path(site).mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", "--no-compile",
           "--no-cache-dir", "--disable-pip-version-check", "--target", str(site)]
    if wheels is not None:
        found = sorted(Path(wheels).glob("*.whl"))
        record["wheels"] = [path.name for path in found]
        if not found:
            record.update(status="failed", detail=f"no wheels in {wheels}: run `python -m benchmarks gpu "
                                                  f"--download-wheels {wheels}` where pip reaches an index")
        else:
            done = subprocess.run([*pip, *map(str, found)], capture_output=True, text=True)
            if done.returncode != 0:
                record.update(status="failed", detail="the wheels: " + _tail(done.stderr or done.stdout))
    with tempfile.TemporaryDirectory(prefix="nncourse-source-") as source:
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, Path(source) / name)
        for package in ("autograder", "solutions"):
            shutil.copytree(ROOT / package, Path(source) / package, ignore=shutil.ignore_patterns("__pycache__"))
        done = subprocess.run([*pip, "--no-build-isolation", source], capture_output=True, text=True)
    from_checkout = ""
    if done.returncode != 0:  # the notebooks still run, importing the course from the checkout
        from_checkout = str(ROOT)
        record.update(status="failed", detail=(record["detail"] + "; " if record["detail"] else "")
                      + "the course (the notebooks import it from the checkout): " + _tail(done.stderr or done.stdout))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), from_checkout,
                                                             os.environ.get("PYTHONPATH", "")]))
    sys.path.append(str(site))
    importlib.invalidate_caches()
    record["seconds"] = time.monotonic() - started
    return record


def _tail(text, lines=6):
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- 2. figures

class EventStamp:
    """A clock for chapter 06's time_function that reads the GPU's own time: each call records a CUDA event on the
    current stream, and `later - earlier` waits for the later event and returns the GPU time between the two, in
    seconds. The events are recorded in stream order, right around the timed work, so no synchronize is needed
    between them (time_function's synchronize stays None) and the host's waiting is not in the figure."""

    def __init__(self):
        import torch

        self.event = torch.cuda.Event(enable_timing=True)
        self.event.record()

    def __sub__(self, earlier):
        self.event.synchronize()
        return earlier.event.elapsed_time(self.event) / 1e3


def gpu_time(fn, warmup=WARMUP, repeats=REPEATS):
    """(median seconds, every time) of fn() on the GPU: chapter 06's time_function with CUDA events as its clock."""
    from solutions.ch06_devices import time_function

    return time_function(fn, warmup=warmup, repeats=repeats, clock=EventStamp)


def chapter_peak_lookup():
    """Chapter 06's own float32 peak table and its lookup `cuda_peak_tflops(name)`, taken from the notebook's code
    cells (the chapter defines them in a demonstration cell, not in solutions/), executed in a fresh namespace."""
    notebook = ROOT / "course" / "ch06" / "ch06_devices.ipynb"
    wanted, namespace = {"CUDA_FP32_PEAK_TFLOPS", "cuda_peak_tflops"}, {}
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for node in ast.parse(source).body:
            names = ({node.name} if isinstance(node, ast.FunctionDef) else
                     {target.id for target in node.targets if isinstance(target, ast.Name)}
                     if isinstance(node, ast.Assign) else set())
            if names & wanted:
                exec(compile(ast.Module([node], type_ignores=[]), str(notebook), "exec"), namespace)
    if not wanted <= namespace.keys():
        raise RuntimeError(f"{notebook} no longer defines {', '.join(sorted(wanted - namespace.keys()))}; "
                           "benchmarks/gpu.py reads its peak table from there")
    return namespace["cuda_peak_tflops"]


def peak_tflops(name, dtype):
    """(peak TFLOP/s of GPU `name` for products in `dtype`, where it comes from), or (None, why not): float32 from
    chapter 06's table, tf32 / bfloat16 / float16 from TENSOR_PEAK_TFLOPS, both matched by the chapter's lookup."""
    lookup = chapter_peak_lookup()
    if dtype == "float32":
        found = lookup(name)
        return (found, "chapter 06's table") if found else (None, "not in chapter 06's table")
    tensor = types.FunctionType(lookup.__code__, {**lookup.__globals__, "CUDA_FP32_PEAK_TFLOPS": TENSOR_PEAK_TFLOPS})
    found = (tensor(name) or {}).get(dtype)
    return (found, "dense tensor-core figure, data sheet") if found else (None, f"no {dtype} peak known")


def matmul_figures(device, n=MATMUL_N):
    """n x n products of random matrices in float32 (TF32 off), TF32, bfloat16 and float16, each timed with CUDA
    events (median of REPEATS after WARMUP), with the peak they are measured against. Kinds the device cannot run
    natively (TF32 and bfloat16 before compute capability 8.0) are left out."""
    import torch

    name = torch.cuda.get_device_name(device)
    native = torch.cuda.get_device_capability(device) >= (8, 0)
    kinds = [("float32", torch.float32, False)] + ([("tf32", torch.float32, True)] if native else [])
    kinds += ([("bfloat16", torch.bfloat16, False)] if native else []) + [("float16", torch.float16, False)]
    generator = torch.Generator(device=device).manual_seed(0)
    rows, tf32_before = [], torch.backends.cuda.matmul.allow_tf32
    try:
        for label, dtype, tf32 in kinds:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            a = torch.randn(n, n, device=device, generator=generator).to(dtype)
            b = torch.randn(n, n, device=device, generator=generator).to(dtype)
            seconds, times = gpu_time(lambda: a @ b)
            peak, source = peak_tflops(name, label)
            rows.append({"dtype": label, "seconds": seconds, "times": times, "peak_tflops": peak,
                         "peak_source": source})
            del a, b
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
    return {"n": n, "warmup": WARMUP, "repeats": REPEATS, "rows": rows}


def step_figures(device, sizes=STEP_SIZES, batch=STEP_BATCH):
    """One SGD training step of mlp(sizes) on a batch of `batch` random examples: float32 (TF32 off) through chapter
    06's train_epoch on that one batch, against mixed precision through its mixed_precision_step in the dtype its
    autocast_dtype picks for the device (with a GradScaler for float16), each timed with CUDA events."""
    import torch
    import torch.nn.functional as F

    from solutions.ch06_devices import mixed_precision_step, train_epoch
    from solutions.common import autocast_dtype
    from solutions.models import mlp

    low = autocast_dtype(device)
    model = mlp(sizes, dtype=torch.float32).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(batch, sizes[0], device=device, generator=generator)
    y = torch.randint(0, sizes[-1], (batch,), device=device, generator=generator)
    scaler = torch.amp.GradScaler("cuda") if low == torch.float16 else None
    tf32_before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        full, _ = gpu_time(lambda: train_epoch(model, [(x, y)], optimizer, F.cross_entropy, device))
        mixed, _ = gpu_time(lambda: mixed_precision_step(model, x, y, optimizer, F.cross_entropy, low, scaler))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32_before
    return {"sizes": list(sizes), "batch": batch, "warmup": WARMUP, "repeats": REPEATS, "float32_s": full,
            "low_dtype": str(low).removeprefix("torch."), "low_s": mixed, "scaler": scaler is not None}


def memory_estimate(sizes=MEMORY_SIZES, batch=MEMORY_BATCH):
    """Chapter 09's training_memory for mlp(sizes) in float32 with Adam: what the memory figure is compared with."""
    from solutions.ch09_deployment import training_memory

    return {"sizes": list(sizes), "batch": batch, "optimizer": "adam",
            "estimate": training_memory(list(sizes), batch, "adam", dtype_bytes=4)}


def memory_figures(device, sizes=MEMORY_SIZES, batch=MEMORY_BATCH):
    """The allocator's peak over one training step of mlp(sizes) in float32 with Adam (foreach=False, as chapter 09's
    measured_memory), after one warm-up step (Adam's state, the gradients and cuBLAS's workspace exist), between
    torch.cuda.reset_peak_memory_stats and torch.cuda.max_memory_allocated; `base` is what was allocated before the
    model existed, `before` what the step started from."""
    import torch
    import torch.nn.functional as F

    from solutions.models import mlp

    record = memory_estimate(sizes, batch)
    torch.cuda.synchronize(device)
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated(device)
    model = mlp(sizes, dtype=torch.float32).to(device)
    optimizer = torch.optim.Adam(model.parameters(), foreach=False)
    generator = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(batch, sizes[0], device=device, generator=generator)
    y = torch.randint(0, sizes[-1], (batch,), device=device, generator=generator)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    step()
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    torch.cuda.synchronize(device)
    record.update(base_bytes=base, before_bytes=before, peak_bytes=torch.cuda.max_memory_allocated(device))
    return record


def figures():
    """Chapter 06's and chapter 09's figures on cuda:0, or NOT_MEASURED without a CUDA device (the estimate of
    chapter 09 is a formula, and is given either way). A figure that fails records its error and the others go on."""
    import torch

    if not torch.cuda.is_available():
        return {"matmul": {"not_measured": NOT_MEASURED}, "step": {"not_measured": NOT_MEASURED},
                "memory": {**memory_estimate(), "not_measured": NOT_MEASURED}}
    device, found = torch.device("cuda", 0), {}
    for key, measure in (("matmul", matmul_figures), ("step", step_figures), ("memory", memory_figures)):
        started = time.monotonic()
        print(f"figures: {key} ...", flush=True)
        try:
            found[key] = measure(device)
        except Exception as error:  # recorded; the next figure and the other steps still run
            found[key] = {"error": f"{type(error).__name__}: {error}"}
            if key == "memory":
                found[key].update(memory_estimate())
        found[key]["seconds"] = time.monotonic() - started
        torch.cuda.empty_cache()
    return found


# ---------------------------------------------------------------------------------------------- 3. the gpu tests

def gpu_test_files():
    """The test files that mark a test `gpu` (pytest -m gpu collects only these, so the others' imports do not
    matter on a machine that lacks the development tools)."""
    return [path for path in sorted((ROOT / "tests").glob("test_*.py")) if "mark.gpu" in path.read_text()]


def run_gpu_tests(files, junit, timeout):
    """pytest -m gpu on `files` with the repository's markers and none of its default options (no nbval, no xdist),
    each test's outcome read from the JUnit XML file `junit`.
    ->  {"status": how many passed, failed, ..., "exit_code", "cases": [{"name", "outcome", "message"}], "seconds",
         "files"}"""
    started = time.monotonic()
    record = {"files": [str(Path(path).relative_to(ROOT)) if Path(path).is_relative_to(ROOT) else str(path)
                        for path in files], "cases": []}
    if not files:
        return {**record, "status": "no test file marks a test gpu", "seconds": 0.0}
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT),
               "-o", "addopts=", "-p", "no:cacheprovider", "-q", "-rfEs", f"--junitxml={junit}", *map(str, files)]
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        return {**record, "status": f"stopped after {timeout:.0f} s", "seconds": time.monotonic() - started}
    record.update(exit_code=done.returncode, seconds=time.monotonic() - started)
    record["cases"] = junit_cases(junit) if Path(junit).exists() else []
    outcomes = [case["outcome"] for case in record["cases"]]
    if not outcomes:
        record["status"] = f"no test ran (pytest exit status {done.returncode}): {_tail(done.stdout + done.stderr)}"
    else:
        record["status"] = ", ".join(f"{outcomes.count(outcome)} {outcome}" for outcome in
                                     ("passed", "failed", "error", "skipped") if outcome in outcomes)
    return record


def junit_cases(path):
    """[{"name": "module::test[params]", "outcome": passed | failed | error | skipped, "message": first line}]"""
    cases = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            found = case.find(tag)
            if found is not None:
                outcome = {"failure": "failed"}.get(tag, tag)
                message = (found.get("message") or found.text or "").strip().splitlines()[:1]
                message = message[0][:200] if message else ""
                break
        module = case.get("classname", "").rsplit(".", 1)[-1]
        cases.append({"name": f"{module}::{case.get('name')}" if module else case.get("name"), "outcome": outcome,
                      "message": message})
    return cases


# ---------------------------------------------------------------------------------------------- 4. the notebooks

def chapter_notebooks(chapters=CHAPTERS):
    """The course's notebook of each chapter (course/chNN/*.ipynb)."""
    found = []
    for chapter in chapters:
        paths = sorted((ROOT / "course" / f"ch{chapter}").glob("*.ipynb"))
        if not paths:
            raise FileNotFoundError(f"no notebook in course/ch{chapter}")
        found.append(paths[0])
    return found


# Run in each kernel after the notebook: whether this process used CUDA, and its allocator's peak.
PROBE = ("import json, sys\ntorch = sys.modules.get('torch')\n"
         "used = bool(torch and torch.cuda.is_available() and torch.cuda.is_initialized())\n"
         "print(json.dumps({'cuda': used, 'peak_bytes': torch.cuda.max_memory_allocated() if used else 0}))")
DEVICE_WORDS = re.compile(r"\b(cuda|nccl|gloo|gpu)\b", re.IGNORECASE)
# a check's verdict (it speaks of simulated devices), a question's choice
NOT_ABOUT_THIS_MACHINE = re.compile(r"^(✓|✗|[a-z]\) )")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def execute_notebook(path, cell_timeout, limit):
    """Execute the notebook at `path` with nbclient in a scratch folder (its working directory; removed afterwards),
    each cell allowed `cell_timeout` seconds and the whole notebook `limit`; stop at the first failing cell.
    ->  {"name", "status": passed | failed | timed out | kernel died | error, "seconds", "cells_run",
         "code_cells", "failing_cell" (its index among the notebook's cells), "error", "traceback", "kernel_log"
         (the kernel's stderr, when it did not pass), "cuda": {"cuda": bool, "peak_bytes": int} from the kernel,
         "device_lines": what it printed about devices}"""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    started = time.monotonic()
    deadline = started + limit
    notebook = nbformat.read(path, as_version=4)
    code = [index for index, cell in enumerate(notebook.cells) if cell.cell_type == "code"]
    record = {"name": Path(path).name, "status": "passed", "cells_run": 0, "code_cells": len(code),
              "failing_cell": None, "error": "", "traceback": "", "cuda": None, "device_lines": []}
    with tempfile.TemporaryDirectory(prefix="nncourse-notebook-") as scratch:
        client = NotebookClient(notebook, timeout=cell_timeout, kernel_name="python3",
                                timeout_func=lambda cell: max(1, int(min(cell_timeout, deadline - time.monotonic()))),
                                resources={"metadata": {"path": scratch}})
        client.reset_execution_trackers()
        log = open(Path(scratch) / "kernel.log", "w+")  # the kernel's own stderr: kept only for a notebook that fails
        try:
            with client.setup_kernel(stderr=log):
                try:
                    for index in code:
                        record["failing_cell"] = index
                        client.execute_cell(notebook.cells[index], index)
                        record["cells_run"] += 1
                    record["failing_cell"] = None
                except CellTimeoutError:
                    record.update(status="timed out", error=f"no reply within the cell's limit "
                                                            f"({min(cell_timeout, limit):.0f} s or the notebook's)")
                except CellExecutionError as error:
                    record.update(status="failed", error=f"{error.ename}: {error.evalue}"[:300],
                                  traceback=ANSI.sub("", error.traceback)[-2000:])
                if record["status"] in ("passed", "failed"):
                    record["cuda"] = _probe(client, notebook)
        except DeadKernelError as error:
            record.update(status="kernel died", error=str(error))
        except Exception as error:  # the kernel did not start, or nbclient broke: recorded, the run goes on
            record.update(status="error", error=f"{type(error).__name__}: {error}"[:300])
        finally:
            log.seek(0)
            if record["status"] != "passed":
                record["kernel_log"] = ANSI.sub("", log.read())[-2000:]
            log.close()
    record["device_lines"] = _device_lines(notebook)
    record["seconds"] = time.monotonic() - started
    return record


def _probe(client, notebook):
    """PROBE's answer from the kernel that ran `notebook`, or None when it gives none."""
    import nbformat

    cell = nbformat.v4.new_code_cell(PROBE)
    notebook.cells.append(cell)  # nbclient stores the executed cell at its index in the notebook
    try:
        client.execute_cell(cell, len(notebook.cells) - 1)
        text = "".join(output.get("text", "") for output in cell.outputs if output.get("name") == "stdout")
        return json.loads(text.strip().splitlines()[-1])
    except Exception:
        return None
    finally:
        notebook.cells.remove(cell)


def _device_lines(notebook, most=3):
    """Up to `most` distinct lines the notebook printed that name cuda, nccl, gloo or a gpu, leaving out the checks'
    verdicts (they speak of simulated machines) and the questions' choices."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            for line in str(output.get("text", "")).splitlines():
                line = ANSI.sub("", line).strip()
                if (DEVICE_WORDS.search(line) and not NOT_ABOUT_THIS_MACHINE.match(line) and line not in found
                        and len(found) < most):
                    found.append(line[:160])
    return found


def run_notebooks(paths, cell_timeout, notebook_limit, deadline):
    """Each notebook in turn, none stopping the others; those that no longer fit before `deadline` are not run."""
    try:
        import nbclient  # noqa: F401 - only to say at once when it is missing
    except ImportError as error:
        return [{"name": Path(path).name, "status": "not run", "error": f"{error}: bring the wheels (--wheels)"}
                for path in paths]
    records = []
    for path in paths:
        left = deadline - time.monotonic()
        if left < 30:
            records.append({"name": Path(path).name, "status": "not run", "error": "out of time"})
            continue
        print(f"notebook {Path(path).name} ...", flush=True)
        records.append(execute_notebook(path, cell_timeout, min(notebook_limit, left)))
        print(f"  {records[-1]['status']} in {records[-1]['seconds']:.0f} s {records[-1]['error']}", flush=True)
    return records


# ---------------------------------------------------------------------------------------------- the report

def write_report(results):
    """The one-page Markdown report of `results` (what run() records). A pure function of it: every number it prints
    is a recorded value or computed from recorded values."""
    lines = ["# A prepared run on one NVIDIA GPU", ""] + _header(results)
    lines += ["", "## Notebooks", ""] + _notebooks(results)
    lines += ["", "## Tests marked gpu", ""] + _tests(results.get("tests"))
    figures = results.get("figures") or {}
    lines += ["", "## ch06: matrix products against the peak, and a 16-bit training step", ""]
    lines += _matmul(figures.get("matmul")) + [""] + _step(figures.get("step"))
    lines += ["", "## ch09: the allocator's peak over one training step, against the chapter's estimate", ""]
    lines += _memory(figures.get("memory"))
    return "\n".join(lines) + "\n"


def _header(results):
    machine = results.get("machine") or {}
    started, took = results.get("started", "?"), results.get("seconds")
    lines = [f"Started {started}" + (f", took {fmt_seconds(took)}" if took is not None else ", did not finish")
             + (". **A dry run**: every step that needs no GPU." if results.get("dry_run") else ".")]
    if machine.get("device"):
        major, minor = machine["capability"]
        lines.append(f"- device: {machine['device']}, compute capability {major}.{minor}, "
                     f"{machine['memory_bytes'] / 2**30:.1f} GiB, {machine['sms']} SMs, driver "
                     f"{machine.get('driver') or 'unknown'}; {machine['gpus']} GPU(s) visible")
    else:
        lines.append("- device: none (no CUDA GPU visible): the CUDA figures below are " + NOT_MEASURED)
    lines.append(f"- torch {machine.get('torch', '?')}, CUDA {machine.get('cuda') or 'none (a CPU build)'}, "
                 f"Python {machine.get('python', '?')}, {machine.get('cores', '?')} CPU cores")
    setup = results.get("install")
    if setup:
        wheels = f"{len(setup['wheels'])} wheels and " if setup.get("wheels") else ""
        lines.append(f"- install: {wheels}the course, --no-deps, into {setup['site']}: {setup['status']}"
                     + (f" ({setup['detail']})" if setup.get("detail") else "")
                     + f", {fmt_seconds(setup['seconds'])}")
    return lines


def _notebooks(results):
    records = results.get("notebooks")
    if not records:
        return ["Not run."]
    settings = results.get("settings", {})
    lines = [f"nbclient, each cell at most {settings.get('cell_timeout', '?')} s, each notebook at most "
             f"{settings.get('notebook_limit', '?')} s, in a scratch folder.", "",
             "| notebook | result | time | code cells run | first failing cell | CUDA in the kernel |",
             "| --- | --- | --- | --- | --- | --- |"]
    for record in records:
        took = fmt_seconds(record["seconds"]) if "seconds" in record else ""
        run = f"{record['cells_run']} of {record['code_cells']}" if "cells_run" in record else ""
        failing = (f"cell {record['failing_cell']}: " if record.get("failing_cell") is not None else "") + \
            _cell(record.get("error", ""))
        cuda = record.get("cuda")
        used = ("" if cuda is None else f"yes, peak {cuda['peak_bytes'] / 2**20:.0f} MiB" if cuda["cuda"] else "no")
        lines.append(f"| {record['name']} | {record['status']} | {took} | {run} | {failing} | {used} |")
    printed = [f"- {record['name']}: " + " / ".join(_cell(line) for line in record["device_lines"])
               for record in records if record.get("device_lines")]
    return lines + (["", "What the notebooks printed about their devices:", ""] + printed if printed else [])


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _tests(tests):
    if not tests:
        return ["Not run."]
    lines = [f"pytest -m gpu on {', '.join(tests['files']) or 'no file'}: {tests['status']}"
             + (f", {fmt_seconds(tests['seconds'])}" if tests.get("seconds") else "") + "."]
    if tests["cases"]:
        lines += ["", "| test | result |", "| --- | --- |"]
        lines += [f"| {_cell(case['name'])} | {case['outcome']}" + (f": {_cell(case['message'])}" if case["message"]
                                                                    else "") + " |" for case in tests["cases"]]
    return lines


def _matmul(matmul):
    if not matmul or "rows" not in matmul:
        return [f"Matrix products: {(matmul or {}).get('not_measured') or (matmul or {}).get('error', 'not run')}."]
    n = matmul["n"]
    lines = [f"{n} × {n} products of random matrices, median of {matmul['repeats']} after {matmul['warmup']} "
             "warm-up products, timed with CUDA events (ch06's time_function with an event clock):", "",
             "| dtype | time | TFLOP/s | peak TFLOP/s | of the peak |", "| --- | --- | --- | --- | --- |"]
    for row in matmul["rows"]:
        achieved = 2 * n ** 3 / row["seconds"] / 1e12
        peak = row["peak_tflops"]
        label = {"float32": "float32 (TF32 off)", "tf32": "float32 as TF32"}.get(row["dtype"], row["dtype"])
        lines.append(f"| {label} | {fmt_seconds(row['seconds'])} | {achieved:.1f} | "
                     + (f"{peak:g} ({row['peak_source']}) | {achieved / peak:.0%} |" if peak else
                        f"{row['peak_source']} | |"))
    return lines


def _step(step):
    if not step or "float32_s" not in step:
        return [f"Training step: {(step or {}).get('not_measured') or (step or {}).get('error', 'not run')}."]
    sizes = " → ".join(str(size) for size in step["sizes"])
    scaler = " and a GradScaler" if step["scaler"] else ""
    return [f"Training step of mlp({sizes}), batch {step['batch']}, SGD, median of {step['repeats']} after "
            f"{step['warmup']} warm-up steps: float32 (TF32 off, train_epoch) {fmt_seconds(step['float32_s'])}, "
            f"{step['low_dtype']} autocast{scaler} (mixed_precision_step, autocast_dtype's choice) "
            f"{fmt_seconds(step['low_s'])}: **{step['float32_s'] / step['low_s']:.2f}× faster** with autocast."]


def _memory(memory):
    if not memory or "estimate" not in memory:
        return ["Not run."]
    estimate, mib = memory["estimate"], 2 ** 20
    sizes = " → ".join(str(size) for size in memory["sizes"])
    parts = ", ".join(f"{kind} {estimate[kind] / mib:.1f} MiB" for kind in ("parameters", "gradients", "optimizer",
                                                                             "activations"))
    lines = [f"mlp({sizes}) in float32, batch {memory['batch']}, Adam (foreach=False). The chapter's estimate "
             f"(solutions.ch09_deployment.training_memory: what one step holds, by kind): {parts}; total "
             f"**{estimate['total'] / mib:.1f} MiB**."]
    if "peak_bytes" not in memory:
        return lines + ["", f"Allocator peak: {memory.get('not_measured') or memory.get('error', 'not run')}."]
    held = memory["peak_bytes"] - memory["base_bytes"]
    return lines + ["", f"Allocator peak (torch.cuda.max_memory_allocated over one step after a warm-up step, "
                        f"from reset_peak_memory_stats): **{held / mib:.1f} MiB** above what was allocated before the "
                        f"model ({(memory['before_bytes'] - memory['base_bytes']) / mib:.1f} MiB held between steps): "
                        f"{held / estimate['total']:.2f} × the estimate."]


# ---------------------------------------------------------------------------------------------- the run

def save(results, out):
    """results.json and report.md in `out`, written again after every step so that a stopped run leaves its report."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / "report.md").write_text(write_report(results))


def run(options):
    """Every step in turn (module docstring), the results saved after each; returns the results."""
    import torch

    started = time.monotonic()
    deadline = started + options.budget
    results = {"started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "dry_run": options.dry_run, "seconds": None, "machine": machine_facts(),
               "settings": {"cell_timeout": options.cell_timeout, "notebook_limit": options.notebook_limit,
                            "budget": options.budget}}
    if not torch.cuda.is_available() and not options.dry_run:
        raise SystemExit("no CUDA GPU is visible here: this run is for a machine with one. `--dry-run` runs every "
                         "step that needs none and reports the CUDA figures as not measured.")
    save(results, options.out)
    site = Path(tempfile.mkdtemp(prefix="nncourse-site-"))
    try:
        print("install ...", flush=True)
        results["install"] = install(site, options.wheels)
        print(f"  {results['install']['status']} {results['install']['detail']}", flush=True)
        save(results, options.out)
        results["figures"] = figures()
        save(results, options.out)
        print("tests marked gpu ...", flush=True)
        files = options.tests if options.tests is not None else gpu_test_files()
        results["tests"] = run_gpu_tests(files, Path(options.out) / "gpu-tests.xml",
                                         min(300, deadline - time.monotonic() - 60))
        print(f"  {results['tests']['status']}", flush=True)
        save(results, options.out)
        paths = options.notebook if options.notebook else chapter_notebooks()
        results["notebooks"] = []
        for record in run_notebooks(paths, options.cell_timeout, options.notebook_limit, deadline):
            results["notebooks"].append(record)
            save(results, options.out)
        results["seconds"] = time.monotonic() - started
    finally:
        save(results, options.out)
        shutil.rmtree(site, ignore_errors=True)
    return results


def parse(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="gpu-run", help="where results.json, report.md and gpu-tests.xml go")
    parser.add_argument("--wheels", help="a folder of wheels to install first (made by --download-wheels)")
    parser.add_argument("--dry-run", action="store_true", help="run without a CUDA GPU: its figures not measured")
    parser.add_argument("--notebook", action="append", help="a notebook to execute instead of chapters 06 to 09")
    parser.add_argument("--tests", nargs="*", help="test files for pytest -m gpu instead of those that mark gpu")
    parser.add_argument("--cell-timeout", type=int, default=120, help="seconds a notebook cell may run")
    parser.add_argument("--notebook-limit", type=int, default=150, help="seconds a notebook may run")
    parser.add_argument("--budget", type=float, default=450, help="seconds for the whole run (notebooks not started "
                                                                   "within it are reported as not run)")
    parser.add_argument("--download-wheels", metavar="DIR", help="only download the wheels into DIR, and stop")
    parser.add_argument("--python-version", default="3.12", help="for --download-wheels: the GPU machine's Python")
    parser.add_argument("--report-from", metavar="RESULTS", help="only write report.md again from a results.json")
    return parser.parse_args(argv)


def main(argv):
    options = parse(argv)
    if options.download_wheels:
        download_wheels(options.download_wheels, options.python_version)
        return
    if options.report_from:
        print(write_report(json.loads(Path(options.report_from).read_text())), end="")
        return
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(f"stopped by signal {number}; the report so far "
                                                                 f"is in {options.out}"))
    results = run(options)
    print("\n" + write_report(results), end="", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
