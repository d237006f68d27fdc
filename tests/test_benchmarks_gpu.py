"""The prepared run on one NVIDIA GPU (benchmarks/gpu.py): its report, written from recorded results, prints only
what was recorded; its dry run goes through every step on a machine without a GPU; the wheels it brings and the
command a lent GPU machine runs fit what that machine has."""
import copy
import importlib.metadata
import json
import re
import subprocess
import sys

import nbformat
import pytest
import torch
from packaging.requirements import Requirement

from benchmarks import gpu

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def recorded_gpu_run():
    """What run() records on a GPU machine, in its shape; the figures are made up, in plausible ranges."""
    return {
        "started": "2026-12-08 10:00 UTC", "dry_run": False, "seconds": 311.7,
        "machine": {"python": "3.12.3", "torch": "2.11.0+cu130", "cuda": "13.0", "cores": 16, "gpus": 1,
                    "device": "NVIDIA H100 80GB HBM3", "capability": [9, 0], "memory_bytes": 85_045_870_592,
                    "sms": 132, "driver": "580.159.04"},
        "settings": {"cell_timeout": 120, "notebook_limit": 150, "budget": 450},
        "install": {"status": "installed", "site": "/tmp/nncourse-site-abc", "wheels": ["a.whl", "b.whl", "c.whl"],
                    "detail": "", "seconds": 12.4},
        "figures": {
            "matmul": {"n": 8192, "warmup": 3, "repeats": 10, "seconds": 4.2, "rows": [
                {"dtype": "float32", "seconds": 0.0205, "times": [0.0205], "peak_tflops": 67.0,
                 "peak_source": "chapter 06's table"},
                {"dtype": "tf32", "seconds": 0.00291, "times": [0.00291], "peak_tflops": 494.5,
                 "peak_source": "dense tensor-core figure, data sheet"},
                {"dtype": "bfloat16", "seconds": 0.00139, "times": [0.00139], "peak_tflops": 989.5,
                 "peak_source": "dense tensor-core figure, data sheet"},
                {"dtype": "float16", "seconds": 0.00142, "times": [0.00142], "peak_tflops": None,
                 "peak_source": "no float16 peak known"}]},
            "step": {"sizes": [64, 4096, 4096, 10], "batch": 8192, "warmup": 3, "repeats": 10, "float32_s": 0.0121,
                     "low_dtype": "bfloat16", "low_s": 0.00212, "scaler": False, "seconds": 3.3},
            "memory": {**gpu.memory_estimate(), "base_bytes": 1_048_576, "before_bytes": 322_961_408,
                       "peak_bytes": 612_368_384, "seconds": 1.9}},
        "tests": {"files": ["tests/test_ch06_solutions.py"], "exit_code": 1, "seconds": 14.2,
                  "status": "1 passed, 1 failed", "cases": [
                      {"name": "test_ch06_solutions::test_moving_to_cuda_and_an_epoch_there", "outcome": "passed",
                       "message": ""},
                      {"name": "test_ch06_solutions::test_float16_with_a_grad_scaler[cuda]", "outcome": "failed",
                       "message": "AssertionError: half == full"}]},
        "notebooks": [
            {"name": "ch06_devices.ipynb", "status": "passed", "seconds": 41.5, "cells_run": 27, "code_cells": 27,
             "failing_cell": None, "error": "", "traceback": "", "cuda": {"cuda": True, "peak_bytes": 734_003_200},
             "device_lines": ["devices present: cpu, cuda; training on: cuda"]},
            {"name": "ch08_distributed.ipynb", "status": "failed", "seconds": 22.0, "cells_run": 11,
             "code_cells": 19, "failing_cell": 22, "error": "RuntimeError: rank one failed first", "traceback": "",
             "cuda": {"cuda": False, "peak_bytes": 0}, "device_lines": []},
            {"name": "ch09_deployment.ipynb", "status": "not run", "error": "out of time"}],
    }


def recorded_dry_run():
    """What run() records on a machine without a GPU."""
    record = recorded_gpu_run()
    record.update(dry_run=True,
                  machine={"python": "3.11.7", "torch": "2.13.0+cpu", "cuda": None, "cores": 2, "gpus": 0})
    record["figures"] = {"matmul": {"not_measured": gpu.NOT_MEASURED}, "step": {"not_measured": gpu.NOT_MEASURED},
                         "memory": {**gpu.memory_estimate(), "not_measured": gpu.NOT_MEASURED}}
    return record


# ---------------------------------------------------------------------------------------------- the report

def test_the_report_shows_the_machine_every_notebook_and_test_and_the_figures_computed_from_the_record():
    results = recorded_gpu_run()
    report = gpu.write_report(results)
    assert "NVIDIA H100 80GB HBM3, compute capability 9.0" in report and "driver 580.159.04" in report
    assert "torch 2.11.0+cu130, CUDA 13.0, Python 3.12.3" in report
    assert "| ch06_devices.ipynb | passed |" in report and "yes, peak 700 MiB" in report
    assert "| ch08_distributed.ipynb | failed |" in report and "cell 22: RuntimeError: rank one failed first" in report
    assert "| ch09_deployment.ipynb | not run |" in report and "out of time" in report
    assert "test_moving_to_cuda_and_an_epoch_there | passed |" in report
    assert "test_float16_with_a_grad_scaler[cuda] | failed: AssertionError: half == full |" in report
    # 2 n³ / t against the peak: 2 · 8192³ / 20.5 ms = 53.6 TFLOP/s, 80 % of 67
    assert "| float32 (TF32 off) | 20.5 ms | 53.6 | 67 (chapter 06's table) | 80% |" in report
    assert "| bfloat16 | 1.39 ms | 791.0 | 989.5 (dense tensor-core figure, data sheet) | 80% |" in report
    assert "| float16 | 1.42 ms | 774.3 | no float16 peak known | |" in report
    assert "12.1 ms" in report and "2.12 ms" in report and "**5.71× faster** with autocast" in report
    estimate = results["figures"]["memory"]["estimate"]
    assert f"total **{estimate['total'] / 2**20:.1f} MiB**" in report
    held = (612_368_384 - 1_048_576) / 2**20
    assert f"**{held:.1f} MiB** above" in report and f"{held * 2**20 / estimate['total']:.2f} × the estimate" in report


def test_a_dry_runs_report_says_what_was_not_measured_and_gives_the_estimate():
    report = gpu.write_report(recorded_dry_run())
    assert "**A dry run**" in report and "device: none (no CUDA GPU visible)" in report
    assert report.count(gpu.NOT_MEASURED) == 4  # the device line, the products, the step, the allocator's peak
    assert "TFLOP/s |" not in report and "faster" not in report and "total **" in report


def test_a_report_of_a_run_that_stopped_early_says_so():
    results = recorded_gpu_run()
    del results["figures"], results["tests"], results["notebooks"], results["install"]
    results["seconds"] = None
    report = gpu.write_report(results)
    assert "did not finish" in report and report.lower().count("not run") == 5


NUMBER = re.compile(r"(?<![\w.+-])\d+(?:[.,]\d+)*(?![\w.+-]|[.,]\d)")


def numbers(text):
    return NUMBER.findall(text)


def perturbed(value, seed):
    """`value` with every number changed (floats scaled by a factor from a seeded generator, ints mapped to
    n (n + seed) + 1 + seed), every digit in every string shifted by `seed`, and a list of strings one longer (the
    report counts some): the same shape, other values everywhere."""
    import random

    rng = random.Random(seed)

    def change(item):
        if isinstance(item, bool) or item is None:
            return item
        if isinstance(item, int):
            return item * (item + seed) + 1 + seed  # not linear: a ratio of two ints changes too
        if isinstance(item, float):
            return item * rng.uniform(1.5, 3.0)
        if isinstance(item, str):
            return re.sub(r"\d", lambda digit: str((int(digit.group()) + seed) % 10), item)
        if isinstance(item, list):
            longer = item + item[-1:] if item and all(isinstance(element, str) for element in item) else item
            return [change(element) for element in longer]
        return {key: change(element) for key, element in item.items()}

    return change(copy.deepcopy(value))


@pytest.mark.parametrize("recorded", [recorded_gpu_run, recorded_dry_run])
def test_every_number_the_report_prints_comes_from_the_record(recorded):
    """Written again from two records whose every number (and every digit of every string) differs, each number of
    the report must differ from its place in one of them: a number written into the report's template would not."""
    results = recorded()
    original = numbers(gpu.write_report(results))
    others = [numbers(gpu.write_report(perturbed(results, seed))) for seed in (1, 2)]
    assert original and all(len(other) == len(original) for other in others)
    fixed = [number for number, *changed in zip(original, *others) if all(number == other for other in changed)]
    assert not fixed, f"numbers that do not come from the record: {fixed}"


def test_the_report_can_be_written_again_from_a_saved_results_file(tmp_path):
    gpu.save(recorded_gpu_run(), tmp_path)
    again = gpu.write_report(json.loads((tmp_path / "results.json").read_text()))
    assert again == (tmp_path / "report.md").read_text() == gpu.write_report(recorded_gpu_run())


# ---------------------------------------------------------------------------------------------- pieces of the run

def test_the_float32_peak_is_chapter_06s_own_and_the_16_bit_peaks_match_by_whole_model_name():
    namespace = {}
    source = next(cell.source for cell in nbformat.read(gpu.ROOT / "course/ch06/ch06_devices.ipynb", 4).cells
                  if "CUDA_FP32_PEAK_TFLOPS = " in cell.source)
    exec(source, namespace)
    for name in ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "Tesla T4", "NVIDIA A100-SXM4-80GB", "NVIDIA A10G"):
        assert gpu.peak_tflops(name, "float32")[0] == namespace["cuda_peak_tflops"](name)
    assert gpu.peak_tflops("NVIDIA L4", "bfloat16")[0] == 121.0 and gpu.peak_tflops("NVIDIA L40S", "tf32")[0] == 183.0
    assert gpu.peak_tflops("NVIDIA H200", "bfloat16")[0] == 989.5
    assert gpu.peak_tflops("NVIDIA H200 NVL", "bfloat16")[0] == 835.5
    assert gpu.peak_tflops("Tesla T4", "bfloat16") == (None, "no bfloat16 peak known")
    assert gpu.peak_tflops("NVIDIA A10G", "float16")[0] is None  # an A10G is not an A10


def test_junit_cases_reads_each_outcome_and_its_first_line(tmp_path):
    xml = tmp_path / "j.xml"
    xml.write_text('<testsuites><testsuite>'
                   '<testcase classname="tests.test_x" name="test_a"/>'
                   '<testcase classname="tests.test_x" name="test_b[cuda]"><failure message="assert 1 == 2&#10;more"/>'
                   '</testcase><testcase classname="tests.test_x" name="test_c">'
                   '<skipped message="needs a CUDA device"/>'
                   '</testcase><testcase classname="tests.test_x" name="test_d"><error message="fixture broke"/>'
                   '</testcase></testsuite></testsuites>')
    assert gpu.junit_cases(xml) == [
        {"name": "test_x::test_a", "outcome": "passed", "message": ""},
        {"name": "test_x::test_b[cuda]", "outcome": "failed", "message": "assert 1 == 2"},
        {"name": "test_x::test_c", "outcome": "skipped", "message": "needs a CUDA device"},
        {"name": "test_x::test_d", "outcome": "error", "message": "fixture broke"}]


def test_the_gpu_tests_are_found_by_their_marker():
    files = [path.name for path in gpu.gpu_test_files()]
    assert "test_ch06_solutions.py" in files and "test_benchmarks.py" not in files


# The packages the GPU machine's image holds (the device tool's KINDS.md, read 2026-12) that the wheels need.
ON_THE_GPU_IMAGE = {"attrs", "packaging", "psutil", "pygments", "python-dateutil", "typing-extensions", "anyio",
                    "click", "h11", "idna", "annotated-doc", "six", "sniffio", "importlib-metadata", "zipp"}


def test_the_wheels_are_what_executing_the_notebooks_and_serving_need_beside_the_gpu_image():
    """Everything nbclient, ipykernel, fastapi and uvicorn require (for CPython 3.12 on Linux, as installed here) is a
    wheel brought along or a package the image has; each wheel is pinned by constraints.txt."""
    environment = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
                   "platform_system": "Linux", "os_name": "posix", "platform_machine": "x86_64",
                   "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
    brought = {gpu._canonical(name) for name in gpu.WHEELS}
    todo, seen = ["nbclient", "ipykernel", "fastapi", "uvicorn"], set()
    while todo:
        name = gpu._canonical(todo.pop())
        if name in seen or name in ON_THE_GPU_IMAGE:
            continue
        seen.add(name)
        assert name in brought, f"{name} is needed and neither brought as a wheel nor on the GPU image"
        for line in importlib.metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(requirement.name)
    pins = gpu.wheel_pins()
    assert len(pins) == len(gpu.WHEELS) and all("==" in pin for pin in pins)
    command = gpu.download_command("wheels")
    assert {"--no-deps", "--only-binary=:all:", "3.12", "cp"} <= set(command) and command[-len(pins):] == pins


def test_an_unpinned_wheel_is_named():
    with pytest.raises(ValueError, match="no-such-package"):
        gpu.wheel_pins(names=("nbclient", "no-such-package"))


def test_the_device_command_fits_the_tool_and_is_the_one_the_readme_gives():
    readme = (gpu.ROOT / "benchmarks" / "README.md").read_text()
    assert len(gpu.DEVICE_COMMAND) <= 2000 and gpu.DEVICE_TIMEOUT_S <= 600
    section = readme.split("## A prepared run on one NVIDIA GPU", 1)[1]
    assert gpu.DEVICE_COMMAND in section and json.dumps(list(gpu.DEVICE_CARRY)) in section
    assert f"timeout_s={gpu.DEVICE_TIMEOUT_S}" in section


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU machine the run would start for real")
def test_without_a_gpu_the_run_refuses_unless_it_is_a_dry_run(tmp_path):
    with pytest.raises(SystemExit, match="--dry-run"):
        gpu.run(gpu.parse(["--out", str(tmp_path)]))


@pytest.mark.gpu
@needs_cuda
def test_the_figures_measure_on_cuda_at_a_small_size():
    device = torch.device("cuda", 0)
    matmul = gpu.matmul_figures(device, n=512)
    assert matmul["rows"][0]["dtype"] == "float32" and all(row["seconds"] > 0 for row in matmul["rows"])
    step = gpu.step_figures(device, sizes=[64, 256, 10], batch=128)
    assert step["float32_s"] > 0 and step["low_s"] > 0
    memory = gpu.memory_figures(device, sizes=[64, 256, 10], batch=128)
    assert memory["peak_bytes"] - memory["base_bytes"] >= memory["estimate"]["parameters"]
    assert "rows" in gpu.matmul_figures(device, n=256)  # the event clock can be used again


# ---------------------------------------------------------------------------------------------- a dry run, whole

def write_notebook(path, *sources):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for source in sources])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    return path


@pytest.mark.slow
def test_a_dry_run_installs_tests_executes_and_reports_without_stopping_at_a_failure(tmp_path):
    """Two small notebooks (one passes and shows it imported the installed course, one fails at its second cell)
    and a small test file (a gpu test that passes, one that needs CUDA, one not marked) stand in for the chapters
    and the suite, to keep it quick."""
    ok = write_notebook(tmp_path / "ok.ipynb", "import solutions\nprint('gpu: none here; course from', "
                                               "solutions.__file__)")
    broken = write_notebook(tmp_path / "broken.ipynb", "x = 1", "raise ValueError('broken on purpose')", "x = 2")
    tests = tmp_path / "test_small.py"
    tests.write_text("import pytest, torch\n\n@pytest.mark.gpu\ndef test_marked():\n    pass\n\n"
                     "@pytest.mark.gpu\n@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')\n"
                     "def test_on_cuda():\n    pass\n\ndef test_not_marked():\n    pass\n")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "gpu", "--dry-run", "--out", str(out), "--notebook",
                           str(ok), "--notebook", str(broken), "--tests", str(tests), "--cell-timeout", "60"],
                          cwd=gpu.ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["install"]["status"] == "installed" and results["seconds"] > 0
    first, second = results["notebooks"]
    assert first["status"] == "passed" and "nncourse-site-" in first["device_lines"][0]  # the installed course
    assert second["status"] == "failed" and second["failing_cell"] == 1 and second["cells_run"] == 1
    assert second["error"] == "ValueError: broken on purpose"
    outcomes = {case["name"].split("::")[-1]: case["outcome"] for case in results["tests"]["cases"]}
    on_cuda = "passed" if torch.cuda.is_available() else "skipped"
    assert outcomes == {"test_marked": "passed", "test_on_cuda": on_cuda}  # test_not_marked: deselected
    report = (out / "report.md").read_text()
    assert report == gpu.write_report(results) and report in done.stdout
    if not torch.cuda.is_available():
        assert gpu.NOT_MEASURED in report
