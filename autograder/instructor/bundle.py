"""The learner's bundle for a graded class: the course package without references or hidden cases.

It holds `autograder/learner/` whole (`check()` working from stored visible cases, the concept
questions, which are practice and not graded), `autograder/__init__.py`, and the shared helpers of
`solutions/`, every module there but the chapters' references (`solutions/chNN_*.py`). Nothing of
`autograder/instructor/` (the exercises' references and hidden cases, the grader) and no hidden case.
Which files travel is decided by where they lie in the tree, not by a list to keep in step with it.
The grading sandbox runs learners' code against the same bundle, so that their code cannot import a
reference there either; and a chapter's notebook imports nothing the bundle lacks
(tests/test_bundle.py), so that it runs in a graded class as it does in self-study.
"""
from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
from pathlib import Path

from autograder.instructor import notebooks
from autograder.learner import drivers, registry, stored

LEARNER_SIDE = notebooks.ROOT / "autograder" / "learner"
CHAPTER_REFERENCE = re.compile(r"ch\d\d_.*\.py")


def shipped_files() -> list[Path]:
    """The source files a bundle holds, relative to the repository: learner/ whole, the package's
    `__init__.py`, and every module of `solutions/` that is not a chapter's reference."""
    root = notebooks.ROOT
    learner = [path for path in LEARNER_SIDE.rglob("*.py") if "__pycache__" not in path.parts]
    shared = [path for path in (root / "solutions").glob("*.py") if not CHAPTER_REFERENCE.fullmatch(path.name)]
    return sorted(path.relative_to(root) for path in [root / "autograder" / "__init__.py", *learner, *shared])


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
dependencies = {dependencies}

[tool.setuptools.packages.find]
include = ["autograder*", "solutions*"]

[tool.setuptools.package-data]
"autograder.learner" = ["stored_cases/*.json"]
"""


def learner_dependencies() -> list[str]:
    """What `pip install ./nncourse-learner` installs: the course's own dependencies, with the ranges the course
    states, its `lab` extra (JupyterLab, ipykernel, nbformat, ipywidgets for the progress bars), and nbgrader,
    whose Assignment List a graded class fetches and hands in notebooks with. Read from the installed course's
    metadata, so that the two lists never drift apart."""
    wanted = []
    for requirement in importlib.metadata.requires("nncourse") or []:
        spec, _, marker = (part.strip() for part in requirement.partition(";"))
        if not marker or marker == 'extra == "lab"' or (spec.startswith("nbgrader") and "instructor" in marker):
            wanted.append(spec)
    return list(dict.fromkeys(wanted))


def build(destination: Path, chapters=None, lifted: frozenset[str] = frozenset()) -> Path:
    """Write the bundle into `destination` (replaced if present) and return it; the exercises the instructor
    `lifted` the "write it without" rule of (`classroom.lifted_rules`) are checked without it there."""
    if destination.exists():
        shutil.rmtree(destination)
    for relative in shipped_files():
        (destination / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(notebooks.ROOT / relative, destination / relative)
    cases_dir = destination / "autograder" / "learner" / stored.CASES_DIR.name
    cases_dir.mkdir()
    by_chapter: dict[str, list] = {}
    for exercise in registry.all_exercises():
        if chapters is not None and exercise.chapter not in chapters:
            continue
        if drivers.DRIVERS.get(exercise.call.__name__) is not exercise.call:
            raise ValueError(f"{exercise.id}: its call, {exercise.call.__name__}, must be a driver in "
                             "autograder/learner/drivers.py: the bundle and the grading sandbox have only those")
        by_chapter.setdefault(exercise.chapter, []).append(stored.to_json(exercise, lifted))
    for chapter, items in by_chapter.items():
        (cases_dir / f"{chapter}.json").write_text(json.dumps(items))
    version = notebooks.project_version()
    (destination / "pyproject.toml").write_text(PYPROJECT.format(version=version,
                                                                 dependencies=json.dumps(learner_dependencies())))
    (destination / "README.md").write_text(README)
    return destination
