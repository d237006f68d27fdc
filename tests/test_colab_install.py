"""Installing the course on Colab changes nothing Colab already has.

Colab comes with its own CUDA build of torch and its own Jupyter stack. The notebooks' first cell
installs the course with its dependencies (no `--no-deps`), so the base dependencies must be only
what the chapters import, at versions Colab already satisfies. This test builds a fresh environment
holding stand-ins of Colab's packages (empty distributions with Colab's names and versions, torch a
`+cu126` build), installs the course's wheel into it with no package index at all, and checks that
nothing else was installed, nothing was replaced and `pip check` is clean. A base dependency Colab
lacks (JupyterLab, nbgrader) would make the offline install fail.
"""
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import venv
import zipfile

import pytest

from autograder.instructor import notebooks
from autograder.instructor.sync import colab_cell_source

pytestmark = pytest.mark.slow

# What a Colab GPU runtime ships, by the names and versions pip sees there.
COLAB = {"torch": "2.8.0+cu126", "numpy": "2.0.2", "scipy": "1.16.3", "matplotlib": "3.10.0",
         "scikit-learn": "1.6.1", "tqdm": "4.67.1", "ipykernel": "6.17.1", "notebook": "6.5.7",
         "jupyter-server": "1.16.0", "jupyter-client": "7.4.9", "tornado": "6.4.2", "traitlets": "5.7.1"}


def stand_in_wheel(folder, name, version):
    """An installable wheel of an empty distribution `name` at `version`."""
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    files = {f"{dist}_stand_in.py": "", f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: stand-in\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},"
              f"{len(text.encode())}" for path, text in files.items()] + [f"{info}/RECORD,,"]
    with zipfile.ZipFile(folder / f"{dist}-{version}-py3-none-any.whl", "w") as wheel:
        for path, text in {**files, f"{info}/RECORD": "\n".join(record) + "\n"}.items():
            wheel.writestr(path, text)


def pip(python, *args):
    return subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check",
                           *args], capture_output=True, text=True)


def course_wheel(folder, tmp_path):
    """The course's wheel, built from a copy of its sources (the repository stays untouched)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(notebooks.ROOT / name, source / name)
    for package in ("autograder", "solutions"):
        shutil.copytree(notebooks.ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(folder), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr


@pytest.fixture(scope="module")
def colab(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("colab")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name, version in COLAB.items():
        stand_in_wheel(wheels, name, version)
    course_wheel(wheels, tmp_path)
    venv.create(tmp_path / "env", with_pip=False)
    python = tmp_path / "env" / "bin" / "python"
    preinstalled = pip(python, "install", "--no-index", "--find-links", str(wheels),
                       *(f"{name}=={version}" for name, version in COLAB.items()))
    assert preinstalled.returncode == 0, preinstalled.stderr
    installed = pip(python, "install", "--no-index", "--find-links", str(wheels), "nncourse")
    return python, installed


def installed_versions(python):
    listing = pip(python, "list", "--format", "json")
    return {item["name"].lower(): item["version"] for item in json.loads(listing.stdout)}


def test_the_course_installs_with_nothing_colab_lacks(colab):
    _, installed = colab
    assert installed.returncode == 0, f"the course needs a package Colab does not have:\n{installed.stderr}"


def test_torch_and_the_jupyter_stack_are_left_as_they_were(colab):
    python, _ = colab
    versions = installed_versions(python)
    assert {name: versions.get(name) for name in COLAB} == COLAB
    assert set(versions) - set(COLAB) == {"nncourse"}


def test_pip_check_is_clean(colab):
    python, _ = colab
    result = pip(python, "check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_colab_cell_installs_with_dependencies_from_the_repository():
    source = colab_cell_source(notebooks.repository_url())
    assert f"nncourse @ git+{notebooks.repository_url()}" in source
    assert "--no-deps" not in source


def test_a_chapter_that_needs_an_extra_installs_it_on_colab():
    """Chapter 09's serving sections need the deploy extra; its Colab cell asks for it, the others do not."""
    from autograder.instructor.sync import CHAPTER_EXTRAS

    url = notebooks.repository_url()
    for path in notebooks.all_notebooks():
        chapter = path.parent.name
        cell = next(c for c in notebooks.read(path).cells if "colab-setup" in c.metadata.get("tags", []))
        extras = CHAPTER_EXTRAS.get(chapter, ())
        package = f"nncourse[{','.join(extras)}] @ git+{url}" if extras else f"nncourse @ git+{url}"
        assert f'"{package}"' in cell.source, chapter
    assert CHAPTER_EXTRAS["ch09"] == ("deploy",)
    import tomllib

    declared = tomllib.loads((notebooks.ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert all(extra in declared for extras in CHAPTER_EXTRAS.values() for extra in extras)
