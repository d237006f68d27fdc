"""Find and read a submission: the notebook in its folder, checked as nbformat (and so nbgrader) reads it.

Whatever a learner hands in is untrusted: a folder named like the notebook, a renamed notebook, a
file that is not JSON, a notebook nbformat rejects. Each gives a reason in the instructor's words
(`no_notebook_reason`, `read_cells`' ValueError), which grading turns into that submission's own
row; nothing here raises anything else on a bad submission.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from autograder.instructor import notebooks
from autograder.instructor.results import graded_exercises


def find_notebook(folder: Path, chapter: str) -> tuple[Path | None, list[str]]:
    """The submitted notebook in `folder` (a file, never a folder named like one), with notes about
    anything unusual there."""
    expected = notebooks.chapter_notebook(chapter).name
    if (folder / expected).is_file():
        others = [p.name for p in folder.iterdir() if p.name != expected]
        return folder / expected, [f"extra files ignored: {', '.join(sorted(others)[:5])}"] if others else []
    candidates = sorted(p for p in folder.glob("*.ipynb") if p.is_file()) if folder.is_dir() else []
    if len(candidates) == 1:
        return candidates[0], [f"the notebook was renamed to {candidates[0].name}; graded it anyway"]
    return None, []


def no_notebook_reason(folder: Path, chapter: str) -> str:
    """Why `find_notebook` found nothing, in the instructor's words."""
    expected = notebooks.chapter_notebook(chapter).name
    if (folder / expected).is_dir():
        return f"{expected} in the submission folder is a folder, not a notebook"
    return f"no {expected} in the submission folder"


def notebook_sha256(path: Path | None) -> str:
    """The notebook file's SHA-256, or "" when there is none or it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


def read_cells(path: Path) -> list[dict]:
    """The notebook's cells as plain dicts; ValueError with a readable reason if it is not a notebook
    that nbformat (and so nbgrader) accepts."""
    try:
        data = json.loads(path.read_bytes())
    except OSError as error:
        raise ValueError(f"the notebook could not be read ({error.strerror or error})") from error
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ValueError(f"the notebook is not valid JSON ({str(error)[:200]})") from error
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ValueError("the file has no list of cells: it is not a Jupyter notebook")
    _validate(data)
    return cells


def _validate(data: dict) -> None:
    """ValueError unless nbformat accepts the notebook: nbgrader's gradebook and formgrader read it with
    nbformat, which rejects, for one, an unknown format version or a cell without metadata."""
    import nbformat

    if data.get("nbformat") != 4:
        raise ValueError(f"nbformat rejects the notebook (format version {str(data.get('nbformat'))[:20]}; "
                         "Jupyter notebooks of this course are version 4)")
    try:
        nbformat.validate(nbformat.from_dict(data))
    except Exception as error:  # nbformat raises several kinds (ValidationError, NBFormatError, KeyError, ...)
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ValueError(f"nbformat rejects the notebook ({first_line[:200]})") from error


def cell_source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def learner_cells(cells: list[dict], chapter: str) -> tuple[list[dict], list[str]]:
    """The code cells to run (every code cell but the graded test cells) and notes on the layout."""
    test_ids = {f"{e.grade_id}-test" for e in graded_exercises(chapter)}
    notes, seen, run = [], {}, []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        nbgrader = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if grade_id:
            seen[grade_id] = seen.get(grade_id, 0) + 1
        if grade_id in test_ids or (isinstance(nbgrader, dict) and nbgrader.get("grade") and not nbgrader.get("solution")):
            continue
        run.append({"index": index, "source": cell_source(cell)})
    for exercise in graded_exercises(chapter):
        count = seen.get(exercise.grade_id, 0)
        if count == 0:
            notes.append(f"the solution cell of {exercise.id} is missing; graded whatever defines {exercise.name}")
        elif count > 1:
            notes.append(f"the solution cell of {exercise.id} appears {count} times; the last definition counts")
    return run, notes
