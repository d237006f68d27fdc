"""The learner's bundle for a graded class: the course package without references or hidden cases.

It holds the learner-side autograder (`check()` working from stored visible cases), the concept
questions (practice, not graded), the shared helpers (`solutions/common.py`, `solutions/data.py`,
`solutions/models.py`) and nothing else: no `solutions/chNN_*.py`, no `autograder/exercises/`, no
hidden case. The grading sandbox runs learners' code against the same bundle, so that their code
cannot import a reference there either; and a chapter's notebook imports nothing the bundle lacks
(tests/test_bundle.py), so that it runs in a graded class as it does in self-study.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from autograder import drivers, notebooks, registry, stored

LEARNER_MODULES = {
    "autograder": ["__init__.py", "check.py", "compare.py", "display.py", "drivers.py", "registry.py",
                   "stored.py", "wire.py", "sandbox_runner.py"],
    "solutions": ["__init__.py", "common.py", "data.py", "launching.py", "models.py", "serving.py"],
    # concept questions are practice, not graded: their explanations may travel with the learner
    "autograder/questions": sorted(path.name for path in (notebooks.ROOT / "autograder" / "questions").glob("*.py")),
}
README = """# The neural-network course: your copy for a graded class

Install it next to the chapter notebooks your instructor handed out, then open them in JupyterLab:

    pip install ./nncourse-learner
    jupyter lab

Under each exercise, `check("chNN.name", your_function)` runs your function on the exercise's
visible cases and tells you what differs, and which known mistake your answer looks like. This
copy has no reference solutions and no hidden cases: your instructor grades the notebook you hand
in, on the visible cases and on hidden ones of the same kind.
"""
PYPROJECT = """[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "nncourse-learner"
version = "{version}"
description = "The learner's copy of the neural-network course: checks for the visible cases, no references."
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["numpy", "torch", "matplotlib", "scikit-learn", "tqdm"]

[tool.setuptools.packages.find]
include = ["autograder*", "solutions*"]

[tool.setuptools.package-data]
autograder = ["stored_cases/*.json"]
"""


def build(destination: Path, chapters=None) -> Path:
    """Write the bundle into `destination` (replaced if present) and return it."""
    if destination.exists():
        shutil.rmtree(destination)
    for package, files in LEARNER_MODULES.items():
        (destination / package).mkdir(parents=True)
        for name in files:
            shutil.copy2(notebooks.ROOT / package / name, destination / package / name)
    cases_dir = destination / "autograder" / stored.CASES_DIR.name
    cases_dir.mkdir()
    by_chapter: dict[str, list] = {}
    for exercise in registry.all_exercises():
        if chapters is not None and exercise.chapter not in chapters:
            continue
        if drivers.DRIVERS.get(exercise.call.__name__) is not exercise.call:
            raise ValueError(f"{exercise.id}: its call, {exercise.call.__name__}, must be a driver in "
                             "autograder/drivers.py: the bundle and the grading sandbox have only those")
        by_chapter.setdefault(exercise.chapter, []).append(stored.to_json(exercise))
    for chapter, items in by_chapter.items():
        (cases_dir / f"{chapter}.json").write_text(json.dumps(items))
    version = notebooks.project_version()
    (destination / "pyproject.toml").write_text(PYPROJECT.format(version=version))
    (destination / "README.md").write_text(README)
    return destination
