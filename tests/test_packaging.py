"""One pinned set of versions: every installed distribution is in constraints.txt, at that version."""
import re
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins():
    found = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            found[canonical(name)] = version
    return found


def test_every_installed_distribution_is_pinned_at_its_version():
    pinned = pins()
    unpinned, different = [], []
    site_packages = {Path(sysconfig.get_paths()[key]).resolve() for key in ("purelib", "platlib")}
    for dist in metadata.distributions():
        if Path(dist._path).resolve().parent not in site_packages:
            continue  # copies vendored inside another package (setuptools/_vendor) are not installs
        name = canonical(dist.metadata["Name"])
        if name in {"nncourse", "pip"}:  # the course itself; pip comes with the virtual environment
            continue
        if name not in pinned:
            unpinned.append(name)
        elif pinned[name] != dist.version.split("+")[0]:
            different.append(f"{name} {dist.version} (pinned {pinned[name]})")
    assert not unpinned, f"installed but not in constraints.txt: {sorted(unpinned)}"
    assert not different, f"installed at another version than constraints.txt says: {different}"


def test_torch_is_pinned_to_the_cpu_wheel_version():
    assert pins()["torch"] == "2.13.0"


def test_every_declared_dependency_is_pinned():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    missing = [r for r in declared if canonical(Requirement(r).name) not in {*pins(), "nncourse"}]
    assert not missing  # nncourse[...] is an extra naming the course's own other extras


def test_the_base_install_is_only_what_the_chapters_import_at_run_time():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = {canonical(Requirement(r).name) for r in project["dependencies"]}
    assert base == {"numpy", "scipy", "torch", "matplotlib", "scikit-learn", "tqdm"}
    assert all(Requirement(r).specifier for r in project["dependencies"]), "each needs its lowest working version"


def test_conda_environment_installs_the_same_pinned_set():
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "-c constraints.txt" in text and "-e .[dev]" in text
