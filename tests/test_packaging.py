"""One pinned set of versions: every installed distribution is in constraints.txt, at that version; conda's
environment.yml asks for the same set; bootstrap.py installs it again only when it changes."""
import re
import sysconfig
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
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


def test_the_installed_torch_is_the_2_13_0_cpu_build():
    """The README's promise, of the build installed here (not of the pin): no CUDA, version 2.13.0."""
    import torch

    assert torch.__version__.startswith("2.13.0") and torch.version.cuda is None, (torch.__version__,
                                                                                   torch.version.cuda)


def requested(pip_arguments, base: Path) -> tuple[set, set]:
    """What a `pip install` argument list asks for: (constraint files, resolved; requirements as (project name,
    extras)), an editable or local path read as the project found there."""
    constraints, requirements = set(), set()
    arguments = iter(pip_arguments)
    for argument in arguments:
        if argument in ("-c", "--constraint"):
            constraints.add((base / next(arguments)).resolve())
        elif argument in ("-e", "--editable") or not argument.startswith("-"):
            target = next(arguments) if argument.startswith("-") else argument
            path, _, extras = target.partition("[")
            project = tomllib.loads((base / path / "pyproject.toml").read_text())["project"]["name"]
            requirements.add((canonical(project), frozenset(extras.rstrip("]").split(",")) - {""}))
    return constraints, requirements


def test_conda_environment_installs_the_same_pinned_set(monkeypatch, tmp_path):
    """environment.yml asks pip for what bootstrap.py's install asks: the same requirements under the same
    constraints (so the same resolved set); conda itself supplies only Python and pip, at a Python the project
    accepts."""
    import yaml
    from packaging.specifiers import SpecifierSet

    import bootstrap

    conda = yaml.safe_load((ROOT / "environment.yml").read_text())
    packages = [entry for entry in conda["dependencies"] if isinstance(entry, str)]
    pip_arguments = [part for entry in conda["dependencies"] if isinstance(entry, dict) for line in entry["pip"]
                     for part in line.split()]
    assert {package.split("=")[0] for package in packages} == {"python", "pip"}, packages
    python = next(package.split("=", 1)[1] for package in packages if package.startswith("python="))
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python + ".0" in SpecifierSet(requires)

    installs = stub_bootstrap(monkeypatch, tmp_path, bootstrap)
    bootstrap.ensure_environment()
    (command,) = installs
    assert command[1:4] == ["-m", "pip", "install"]
    bootstrap_asks = requested([argument.replace(str(tmp_path), str(ROOT)) for argument in command[4:]
                                if argument not in ("-qq", "--disable-pip-version-check")], ROOT)
    assert requested(pip_arguments, ROOT) == bootstrap_asks == ({ROOT / "constraints.txt"},
                                                                {("nncourse", frozenset({"dev"}))})


def stub_bootstrap(monkeypatch, root: Path, bootstrap) -> list[list[str]]:
    """bootstrap.py pointed at a copy of the two files it hashes under `root`, with a virtual environment that
    exists; each pip install it would run is recorded, not run."""
    for name in ("pyproject.toml", "constraints.txt"):
        (root / name).write_bytes((ROOT / name).read_bytes())
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    monkeypatch.setattr(bootstrap, "ROOT", root)
    monkeypatch.setattr(bootstrap, "VENV", venv)
    monkeypatch.setattr(bootstrap, "BIN", venv / "bin")
    monkeypatch.setattr(bootstrap, "STAMP", venv / "nncourse-installed.sha256")
    monkeypatch.setattr(bootstrap.venv, "create", lambda *args, **kwargs: pytest.fail("made a second venv"))
    installs = []

    def run(command, check):
        assert check, "a failed install must stop bootstrap"
        installs.append(list(map(str, command)))
    monkeypatch.setattr(bootstrap.subprocess, "run", run)
    return installs


def test_bootstrap_reinstalls_only_when_pyproject_or_constraints_change(monkeypatch, tmp_path):
    """The README: later runs reuse the environment, and reinstall only when pyproject.toml or constraints.txt
    change (bootstrap.py keeps their hash in a stamp file once an install succeeded)."""
    import bootstrap

    installs = stub_bootstrap(monkeypatch, tmp_path, bootstrap)
    bootstrap.ensure_environment()
    assert len(installs) == 1 and bootstrap.STAMP.read_text() == bootstrap.wanted_hash()
    bootstrap.ensure_environment()
    (tmp_path / "README.md").write_text("another file changed")
    bootstrap.ensure_environment()
    assert len(installs) == 1, "reinstalled with neither file changed"
    for name, edit in [("constraints.txt", "\n# a comment\n"), ("pyproject.toml", "\n# a comment\n")]:
        with open(tmp_path / name, "a") as file:
            file.write(edit)
        bootstrap.ensure_environment()
        bootstrap.ensure_environment()
        assert len(installs) == {"constraints.txt": 2, "pyproject.toml": 3}[name], f"{name} changed: one install"


def test_bootstrap_installs_again_after_an_install_that_failed(monkeypatch, tmp_path):
    import subprocess

    import bootstrap

    installs = stub_bootstrap(monkeypatch, tmp_path, bootstrap)

    def failing(command, check):
        installs.append(command)
        raise subprocess.CalledProcessError(1, command)
    monkeypatch.setattr(bootstrap.subprocess, "run", failing)
    with pytest.raises(subprocess.CalledProcessError):
        bootstrap.ensure_environment()
    assert not bootstrap.STAMP.exists()
    with pytest.raises(subprocess.CalledProcessError):
        bootstrap.ensure_environment()
    assert len(installs) == 2


def test_every_run_reports_its_skips_and_slowest_tests():
    """`python3 bootstrap.py test` and plain pytest both read these options: a skip always says why, and the
    slowest tests are always listed, next to the failures and errors pytest names by default."""
    import shlex

    options = shlex.split(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["addopts"])
    reports = [option[2:] for option in options if option.startswith("-r")]
    assert reports and set("fEs") <= set(reports[-1]), reports
    assert any(option.startswith("--durations=") and int(option.split("=")[1]) >= 10 for option in options)
