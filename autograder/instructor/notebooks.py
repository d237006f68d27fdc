"""Where things are, and how the course's notebooks are read and written.

Layout: `solutions/chNN_topic.py` holds the references of chapter NN and `course/chNN/` its one
notebook, `course/chNN/chNN_topic.ipynb`. nbgrader sees each `course/chNN/` as an assignment.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

from autograder.instructor.errors import CourseError

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "course"
LEARNER = ROOT / "learner"  # the course in learner form (see learner_copy.py), written by `nncourse sync`
SOLUTIONS = ROOT / "solutions"
CHAPTER_MODULE = re.compile(r"^ch(\d\d)_\w+\.py$")


class CourseLayoutError(CourseError):
    """The repository's files do not have the shape the course expects; the message says how to fix it."""


def chapter_modules(solutions_dir: Path = SOLUTIONS) -> dict[str, Path]:
    """{'ch02': Path('solutions/ch02_gradient_descent.py'), ...}"""
    return {f"ch{m.group(1)}": path for path in sorted(solutions_dir.glob("ch*.py"))
            if (m := CHAPTER_MODULE.match(path.name))}


def chapter_notebook(chapter: str, course_dir: Path = COURSE) -> Path:
    """The one notebook of a chapter, `course/chNN/chNN_*.ipynb`."""
    found = sorted((course_dir / chapter).glob(f"{chapter}_*.ipynb"))
    if not found and not (course_dir / chapter).is_dir():
        chapters = sorted(path.name for path in course_dir.glob("ch[0-9][0-9]") if path.is_dir())
        raise CourseLayoutError(f"the course has no chapter {chapter!r}; its chapters are {', '.join(chapters)}")
    if len(found) != 1:
        raise CourseLayoutError(f"expected one notebook {course_dir / chapter}/{chapter}_*.ipynb, found {len(found)}")
    return found[0]


def all_notebooks(course_dir: Path = COURSE) -> list[Path]:
    return sorted(path for path in course_dir.glob("ch*/ch*_*.ipynb") if ".ipynb_checkpoints" not in path.parts)


def read(path: Path) -> nbformat.NotebookNode:
    import nbformat  # here, not at the top: the course's base install (Colab's) has no nbformat

    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:
        raise CourseLayoutError(f"{path} is not a readable notebook: {error}") from error


def write(notebook: nbformat.NotebookNode, path: Path) -> None:
    import nbformat

    nbformat.write(notebook, path)


def as_text(notebook: nbformat.NotebookNode) -> str:
    """The notebook exactly as `write` stores it."""
    import nbformat

    return nbformat.writes(notebook) + "\n"


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cells_by_grade_id(notebook) -> dict[str, nbformat.NotebookNode]:
    return {gid: cell for cell in notebook.cells if (gid := grade_id(cell))}


def _project(pyproject: Path = ROOT / "pyproject.toml") -> dict:
    return tomllib.loads(pyproject.read_text())["project"]


def repository_url() -> str:
    """The course's repository, kept once in pyproject.toml's [project.urls]."""
    return _project()["urls"]["Repository"]


def colab_url(learner_notebook: Path) -> str:
    """The address that opens a learner notebook of the repository's main branch in Colab."""
    repository = repository_url().removeprefix("https://github.com/").removesuffix(".git")
    return (f"https://colab.research.google.com/github/{repository}/blob/main/"
            f"{learner_notebook.relative_to(ROOT).as_posix()}")


def project_version() -> str:
    return _project()["version"]
