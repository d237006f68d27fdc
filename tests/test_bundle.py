"""The learner's bundle: check() works from stored visible cases, with no reference importable."""
import subprocess
import sys
import sysconfig

import pytest

from autograder import bundle

SCRIPT = '''
import sys
sys.path[:0] = [{bundle!r}, {site!r}]
import numpy as np
from autograder import check
import autograder.registry as registry
print("references importable:", any(__import__("importlib").util.find_spec(name) for name in
      ("solutions.ch02_gradient_descent", "autograder.exercises")))
print("right:", check("ch02.mse_loss", lambda X, y, w, b: float(np.mean((X @ w + b - y) ** 2)), verbose=False))
print("hidden cases:", sum(case.hidden for e in registry.all_exercises() for case in e.cases))
check("ch02.mse_gradient", lambda X, y, w, b: (-2 / len(y) * X.T @ (X @ w + b - y), -2 / len(y) * (X @ w + b - y).sum()))
from autograder.questions import answer
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
    assert "autograder/stored_cases/ch02.json" in names and "solutions/data.py" in names
    assert not [name for name in names if name.startswith(("solutions/ch", "autograder/exercises"))]
