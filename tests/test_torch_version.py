"""The torch the course needs: pyproject.toml's floor is the oldest release with every torch API the course uses, and a
notebook opened with an older torch says so in its first code cell, in one line, instead of failing later on an API
that torch lacks. Older torches are simulated by patching torch.__version__; nothing else of torch is touched."""
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from autograder.instructor import notebooks
from autograder.instructor.sync import colab_cell_source
from solutions import common

ROOT = Path(__file__).resolve().parents[1]


def test_the_floor_in_pyproject_is_the_one_the_notebooks_name():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [d for d in dependencies if re.match(r"torch\b", d)] == [f"torch>={common.TORCH_FLOOR}"]


def test_the_floor_is_set_by_the_api_the_comment_names():
    """fully_shard is public from torch 2.6 (torch.distributed.fsdp, PyTorch pull request 141868): the chapter that
    imports it, and the comment beside the floor, say so."""
    assert common.TORCH_FLOOR == "2.6"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "from torch.distributed.fsdp import fully_shard" in pyproject and "public from 2.6" in pyproject
    chapter = "\n".join(cell.source for cell in notebooks.read(notebooks.chapter_notebook("ch09")).cells)
    assert "from torch.distributed.fsdp import fully_shard" in chapter


@pytest.mark.parametrize("version, release", [
    ("2.6.0", (2, 6, 0, 1)), ("2.6.0+cu124", (2, 6, 0, 1)), ("2.13.0a0+gitabc1234", (2, 13, 0, 0)),
    ("2.6", (2, 6, 0, 1)), ("2.6.0.dev20241112+cpu", (2, 6, 0, 0)), ("2.7.0rc1", (2, 7, 0, 0)),
    ("2.6.0.post1", (2, 6, 0, 1)), ("10.0.0", (10, 0, 0, 1)), ("unknown", None), ("", None),
])
def test_a_version_string_is_read_as_its_release(version, release):
    assert common.torch_release(version) == release


@pytest.mark.parametrize("version", ["2.6.0", "2.6.0+cu124", "2.6.1+cpu", "2.8.0+cu126", "2.10.0", "2.13.0",
                                     "2.13.0+cpu", "2.13.0a0+gitabc1234", "3.0.0", "unknown"])
def test_a_torch_as_new_as_the_floor_passes_silently(monkeypatch, capsys, version):
    """2.10 is newer than 2.6 (numbers, not text, are compared); a local build of a later release passes; a version
    that cannot be read is let through, since it cannot be said to be too old."""
    monkeypatch.setattr(torch, "__version__", version)
    assert common.require_torch() is None
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("version", ["2.5.1+cu121", "2.5.1", "2.3.0", "1.13.1+cu117", "2.6.0a0+git1234",
                                     "2.6.0.dev20241112"])
def test_an_older_torch_stops_with_one_line_that_says_what_to_do(monkeypatch, version):
    """A pre-release of 2.6 (a nightly, a source build) comes before 2.6 and may lack what 2.6 has."""
    monkeypatch.setattr(torch, "__version__", version)
    with pytest.raises(common.TorchTooOld) as stopped:
        common.require_torch()
    line = str(stopped.value)
    assert "\n" not in line
    assert f"needs torch {common.TORCH_FLOOR} or newer" in line and f"torch {version} is installed" in line
    assert f'%pip install --upgrade "torch>={common.TORCH_FLOOR}"' in line and "restart the kernel" in line
    assert stopped.value._render_traceback_() == [f"TorchTooOld: {line}"]


def test_a_version_passed_in_is_judged_in_place_of_the_installed_one():
    with pytest.raises(common.TorchTooOld, match="torch 2.4.0 is installed"):
        common.require_torch("2.4.0")
    common.require_torch(torch.__version__)


def test_every_notebooks_first_cell_checks_the_torch_after_installing_the_course():
    """The Colab cell, which `nncourse sync` writes into every chapter: on Colab the check runs once the course is
    installed (its module comes with it); elsewhere at once. The course's install leaves Colab's torch as it is."""
    for extras in ((), ("deploy",)):
        source = colab_cell_source("https://example.org/course", extras)
        install, check = source.index("pip"), source.index("require_torch()")
        assert install < check and "from solutions.common import require_torch" in source
        assert "torch>=" not in source and '"torch' not in source  # the cell never installs torch itself
    for chapter in ("ch00", "ch01", "ch02", "ch03", "ch04", "ch05", "ch06", "ch07", "ch09"):
        first = next(c for c in notebooks.read(notebooks.chapter_notebook(chapter)).cells if c.cell_type == "code")
        assert "colab-setup" in first.metadata.get("tags", []) and "\nrequire_torch()" in first.source, chapter


def test_the_first_cell_of_a_notebook_on_an_old_torch_shows_that_line_alone_and_runs_no_further():
    """In the shell a Jupyter kernel runs (IPython's): the cell's output is the one line, no traceback, and Run All
    stops there (the cell failed)."""
    cell = colab_cell_source("https://example.org/course")
    program = (
        "import torch\n"
        "from traitlets.config import Config\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "config = Config()\n"
        "config.HistoryManager.enabled = False\n"
        "shell = InteractiveShell(config=config)\n"
        "torch.__version__ = '2.4.1+cu121'\n"
        f"result = shell.run_cell({cell!r})\n"
        "print('failed:', not result.success)\n")
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT)
    shown = ran.stdout.rstrip().splitlines()
    assert shown[-2].startswith("TorchTooOld: this course needs torch 2.6 or newer, and torch 2.4.1+cu121 is "
                                "installed: upgrade it with"), ran.stdout + ran.stderr
    assert shown[-1] == "failed: True" and len(shown) == 2
    assert "Traceback" not in ran.stdout + ran.stderr
