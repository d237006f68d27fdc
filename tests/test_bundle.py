"""The learner's bundle: check() works from stored visible cases, with no reference importable."""
import subprocess
import sys
import sysconfig

import pytest

from autograder.instructor import bundle

SCRIPT = '''
import sys
sys.path[:0] = [{bundle!r}, {site!r}]
import numpy as np
from autograder import check
import autograder.learner.registry as registry
print("references importable:", any(__import__("importlib").util.find_spec(name) for name in
      ("solutions.ch02_gradient_descent", "autograder.instructor")))
print("right:", check("ch02.mse_loss", lambda X, y, w, b: float(np.mean((X @ w + b - y) ** 2)), verbose=False))
print("hidden cases:", sum(case.hidden for e in registry.all_exercises() for case in e.cases))
check("ch02.mse_gradient", lambda X, y, w, b: (-2 / len(y) * X.T @ (X @ w + b - y), -2 / len(y) * (X @ w + b - y).sum()))
from autograder import answer
answer("ch02.bias_gradient", "a")
'''


@pytest.fixture(scope="module")
def learner_bundle(tmp_path_factory):
    return bundle.build(tmp_path_factory.mktemp("bundle") / "nncourse-learner")


def test_check_from_stored_cases_names_mistakes_without_references(learner_bundle, tmp_path):
    code = SCRIPT.format(bundle=str(learner_bundle), site=sysconfig.get_paths()["purelib"])
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "references importable: False" in result.stdout
    assert "right: True" in result.stdout
    assert "hidden cases: 0" in result.stdout
    assert "known mistake: gradient sign flipped." in result.stdout
    assert "✓ right, a:" in result.stdout  # concept questions work in a graded class's copy too


def test_bundle_is_an_installable_package(learner_bundle, tmp_path):
    text = (learner_bundle / "pyproject.toml").read_text()
    assert 'name = "nncourse-learner"' in text and "stored_cases/*.json" in text
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path), str(learner_bundle)], capture_output=True, text=True)
    assert wheel.returncode == 0, wheel.stderr
    import zipfile

    names = zipfile.ZipFile(next(tmp_path.glob("nncourse_learner-*.whl"))).namelist()
    assert "autograder/learner/stored_cases/ch02.json" in names and "solutions/data.py" in names
    assert not [name for name in names if name.startswith(("solutions/ch", "autograder/instructor"))]
    metadata = zipfile.ZipFile(next(tmp_path.glob("nncourse_learner-*.whl"))).read(
        next(name for name in names if name.endswith("METADATA"))).decode()
    required = {line.split(": ", 1)[1].split(">")[0].split("<")[0].split("=")[0].strip()
                for line in metadata.splitlines() if line.startswith("Requires-Dist: ")}
    # What the bundle's README promises: `jupyter lab`, the Assignment List, progress bars, the chapters' imports.
    assert {"numpy", "scipy", "torch", "matplotlib", "scikit-learn", "tqdm", "jupyterlab", "ipykernel", "nbformat",
            "ipywidgets", "nbgrader"} <= required
    assert not required & {"pytest", "distributed", "onnx", "fastapi"}  # the instructor's and the suite's tools


def _course_imports(path):
    """The course modules a notebook's code cells import, as paths relative to the repository:
    `from solutions.models import mlp` -> solutions/models.py, `from solutions import ch04_optimizers`
    -> solutions/ch04_optimizers.py, `from autograder import check` -> autograder/learner/check.py if that is a module."""
    import ast

    import nbformat

    from autograder.instructor import notebooks

    def module_file(dotted):
        base = notebooks.ROOT.joinpath(*dotted.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.exists():
                return candidate.relative_to(notebooks.ROOT).as_posix()
        return None

    found = set()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            for name in names:
                if name.split(".")[0] in ("solutions", "autograder") and (file := module_file(name)):
                    found.add(file)
    return found


@pytest.mark.parametrize("chapter", sorted(path.parent.name for path in
                                           (bundle.notebooks.ROOT / "course").glob("ch*/ch*.ipynb")))
def test_a_notebook_imports_only_what_a_graded_class_bundle_ships(chapter):
    """A notebook that imports a reference module (solutions/chNN_*.py) runs in self-study, where the whole
    package is installed, and fails in a graded class, whose bundle has no references."""
    shipped = {path.as_posix() for path in bundle.shipped_files()}
    notebook = bundle.notebooks.chapter_notebook(chapter)
    missing = sorted(_course_imports(notebook) - shipped)
    assert not missing, f"{notebook.name} imports {missing}, which a graded class's bundle does not have"


def test_the_import_finder_sees_a_reference_import(tmp_path):
    import nbformat

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import numpy\nfrom solutions import ch04_optimizers\nfrom solutions.models import mlp\nfrom autograder import check")])
    path = tmp_path / "n.ipynb"
    nbformat.write(notebook, path)
    assert _course_imports(path) == {"solutions/ch04_optimizers.py", "solutions/models.py", "solutions/__init__.py",
                                     "autograder/__init__.py"}


def _imported_modules(path):
    """Every module `path` imports, by its dotted name (relative imports resolved against the package)."""
    import ast

    package = ".".join(path.relative_to(bundle.notebooks.ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found += [module] + [f"{module}.{alias.name}" for alias in node.names]
    return found


def test_the_learner_half_never_imports_the_instructor_half():
    """learner/ is shipped whole to a graded class; an import of instructor/ there would fail in the bundle,
    or worse, work in self-study and hide that it fails."""
    learner_side = bundle.LEARNER_SIDE
    offending = {path.relative_to(learner_side).as_posix(): name for path in learner_side.rglob("*.py")
                 for name in _imported_modules(path) if name.startswith("autograder.instructor")}
    assert not offending, f"learner modules import the instructor's half: {offending}"


def test_the_import_direction_test_sees_an_instructor_import(tmp_path, monkeypatch):
    fake_root = tmp_path
    module = fake_root / "autograder" / "learner" / "x.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..instructor import grading\nimport autograder.instructor.sandbox\n")
    monkeypatch.setattr(bundle.notebooks, "ROOT", fake_root)
    assert {"autograder.instructor.grading", "autograder.instructor.sandbox"} <= set(_imported_modules(module))


def test_the_bundle_ships_the_learner_half_whole_and_nothing_of_the_instructors(learner_bundle):
    shipped = {path.relative_to(learner_bundle).as_posix() for path in learner_bundle.rglob("*.py")}
    learner = {path.relative_to(bundle.notebooks.ROOT).as_posix() for path in bundle.LEARNER_SIDE.rglob("*.py")}
    assert learner <= shipped
    assert not [name for name in shipped if name.startswith(("autograder/instructor", "solutions/ch"))]
