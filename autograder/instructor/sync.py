"""`nncourse sync`: make every notebook agree with the one source of each piece of its mechanism.

- a solution cell (nbgrader grade_id `chNN-name`) holds exactly the function or class `name`
  of `solutions/chNN_*.py`, markers included;
- its test cell (grade_id `chNN-name-test`) runs the exercise's check and carries the registry's
  points;
- the Colab cell (tag `colab-setup`) installs the course from the repository URL in pyproject.toml, then
  stops with one line where the torch there is older than the course needs (`solutions.common.require_torch`);
- `learner/chNN/chNN_*.ipynb` is the notebook in learner form (`learner_copy.learner_form`);
- no cell keeps the execution times that running a notebook records in its metadata;
- `autograder/instructor/exercise_index.py` lists every exercise as `nncourse list` prints it
  (`sync_index`), so that the listing imports neither the exercises nor torch.

`sync(write=False)` and `sync_index(write=False)` only report; `nncourse sync --check` exits non-zero on any
difference.
"""
from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from pathlib import Path

from autograder.instructor import notebooks
from autograder.learner import registry
from autograder.instructor.learner_copy import learner_form, learner_path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
COLAB_TAG = "colab-setup"
# A module holding a literal, not a data file: it ships beside cli.py in every install of the course (Colab's
# wheel included) with nothing to declare in pyproject.toml.
INDEX = Path(__file__).resolve().with_name("exercise_index.py")
INDEX_HEADER = '''"""Every exercise as `nncourse list` prints it: its points, its visible and hidden cases, its known mistakes.

Written by `nncourse sync` from the registry (autograder/instructor/exercises/chNN.py); never edit it by hand.
`nncourse list` reads it instead of importing every chapter's exercises (and torch, scikit-learn) to count
them; `nncourse sync --check` and tests/test_sync.py fail when it no longer says what the registry does.
"""

'''


@dataclass(frozen=True)
class Difference:
    notebook: Path
    cell: str
    what: str

    def __str__(self):
        where = self.notebook.relative_to(notebooks.ROOT) if self.notebook.is_relative_to(notebooks.ROOT) \
            else self.notebook
        return f"{where}: cell {self.cell}: {self.what}"


def solution_sources(module: Path) -> dict[str, str]:
    """{name: source} for each top-level function or class of `module` that has solution markers."""
    text = module.read_text()
    lines = text.splitlines()
    sources = {}
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            end = node.end_lineno
            while end < len(lines) and lines[end].strip().startswith("#") and lines[end][:1].isspace():
                end += 1  # trailing indented comments, such as the END marker, belong to the body
            source = "\n".join(lines[start:end])
            if BEGIN in source:
                if END not in source:
                    raise notebooks.CourseLayoutError(f"{module}: {node.name} has {BEGIN} without {END}")
                sources[node.name] = source
    return sources


def test_cell_source(exercise: registry.Exercise) -> str:
    """The graded test cell: `check(..., graded=True)` on the visible cases, then on all of them in a
    hidden-tests block. A failing check prints its report and raises `ExerciseFailed`, whose one line
    ends the cell's output, and nbgrader scores a cell that raises 0."""
    call = f'check("{exercise.id}", {exercise.name}, graded=True'
    return (f"# Graded, {exercise.points} point{'s' if exercise.points != 1 else ''}: the visible cases here, "
            f"hidden ones when grading.\n"
            f"{call})\n### BEGIN HIDDEN TESTS\n{call}, hidden=True)\n### END HIDDEN TESTS")


# The extras a chapter's notebook needs beyond the base install, which its Colab cell installs too.
CHAPTER_EXTRAS = {"ch09": ("deploy",)}


def colab_cell_source(url: str, extras: tuple[str, ...] = ()) -> str:
    if extras:
        package = f"nncourse[{','.join(extras)}] @ git+{url}"
        why = (f"# On Colab, install the course package first, with the {', '.join(extras)} extra this chapter uses;\n"
               "# Colab's own torch (a CUDA build), numpy and Jupyter stay exactly as they are.\n")
    else:
        package = f"nncourse @ git+{url}"
        why = ("# On Colab, install the course package first. It needs nothing Colab lacks, so Colab's own torch\n"
               "# (a CUDA build), numpy and Jupyter stay exactly as they are.\n")
    return (why + "import sys\n\n"
            'if "google.colab" in sys.modules:\n'
            "    import subprocess\n\n"
            '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",\n'
            f'                    "{package}"], check=True)\n\n'
            "from solutions.common import require_torch\n\n"
            "require_torch()  # one line, and a stop here, where this torch is older than the course needs")


def sync(write: bool, course_dir: Path = notebooks.COURSE, solutions_dir: Path = notebooks.SOLUTIONS,
         learner_dir: Path = notebooks.LEARNER) -> list[Difference]:
    """Bring every chapter notebook in line with solutions/, the registry and pyproject.toml, and
    its learner form in `learner_dir` in line with it.

    Returns what differed (and, with write=True, was fixed). Problems that sync cannot fix,
    such as a missing cell, are returned too and are never written over."""
    differences = []
    for chapter, module in notebooks.chapter_modules(solutions_dir).items():
        path = notebooks.chapter_notebook(chapter, course_dir)
        notebook = notebooks.read(path)
        colab = colab_cell_source(notebooks.repository_url(), CHAPTER_EXTRAS.get(chapter, ()))
        found = _sync_notebook(notebook, path, chapter, solution_sources(module), colab)
        found += _drop_execution_times(notebook, path)
        differences += found
        if write and any(d.what.startswith("differs") for d in found):
            notebooks.write(notebook, path)
        differences += _sync_learner_form(notebook, learner_path(path, course_dir, learner_dir), write)
    return differences


def index_rows(exercises: list[registry.Exercise]) -> list[dict]:
    """What `nncourse list` prints of each exercise: its id, points, visible and hidden cases, known mistakes."""
    return [{"id": exercise.id, "points": exercise.points, "visible": len(exercise.visible_cases()),
             "hidden": len(exercise.cases) - len(exercise.visible_cases()), "mistakes": len(exercise.mistakes)}
            for exercise in exercises]


def index_source(exercises: list[registry.Exercise]) -> str:
    """The text of the exercise index: one row per exercise, a Python literal that imports nothing."""
    rows = "".join(f"    {json.dumps(row)},\n" for row in index_rows(exercises))
    return f"{INDEX_HEADER}EXERCISES = (\n{rows})\n"


def sync_index(write: bool, path: Path = INDEX) -> list[Difference]:
    """The exercise index at `path` must be `index_source` of every registered exercise; with write=True a stale
    or missing one is rewritten."""
    wanted = index_source(registry.all_exercises())
    if path.is_file() and path.read_text() == wanted:
        return []
    if write:
        path.write_text(wanted)
    return [Difference(path, "(whole file)", "differs from the registry's exercises (stale or missing); sync "
                                             "rewrites it")]


def _drop_execution_times(notebook, path) -> list[Difference]:
    """Running a notebook stamps each cell's metadata with times (nbclient's `record_timing`); they
    would change every stored notebook at every run, so none is kept."""
    stamped = [cell for cell in notebook.cells if "execution" in cell.get("metadata", {})]
    for cell in stamped:
        del cell.metadata["execution"]
    return [Difference(path, "(cell metadata)", f"differs: {len(stamped)} cell(s) keep execution times; sync "
                                                "removes them")] if stamped else []


def _sync_learner_form(notebook, learner: Path, write: bool) -> list[Difference]:
    """The learner notebook must be exactly `learner_form` of the (synced) source notebook."""
    wanted = notebooks.as_text(learner_form(notebook))
    if learner.exists() and learner.read_text() == wanted:
        return []
    if write:
        learner.parent.mkdir(parents=True, exist_ok=True)
        learner.write_text(wanted)
    return [Difference(learner, "(whole notebook)", "differs from the learner form of its course/ notebook "
                                                    "(stale or missing); sync rewrites it")]


def _sync_notebook(notebook, path, chapter, sources, colab) -> list[Difference]:
    found = []
    cells = notebooks.cells_by_grade_id(notebook)
    exercises = {e.name: e for e in registry.all_exercises() if e.chapter == chapter}
    for name, source in sources.items():
        gid = registry.grade_id_of(f"{chapter}.{name}")
        found += _set_source(path, cells, gid, source, "a solution cell (nbgrader: solution, grade_id "
                                                       f"{gid!r}) for {name} from solutions/")
        exercise = exercises.get(name)
        if exercise is None:
            found.append(Difference(path, gid, f"solutions/ has {name} but no exercise {chapter}.{name} is "
                                               f"registered in autograder/instructor/exercises/{chapter}.py"))
        elif exercise.points:
            test_id = f"{gid}-test"
            found += _set_source(path, cells, test_id, test_cell_source(exercise),
                                 f"a graded test cell (nbgrader: grade, locked, grade_id {test_id!r})")
            if test_id in cells and cells[test_id].metadata.nbgrader.get("points") != exercise.points:
                found.append(Difference(path, test_id, f"differs: points {cells[test_id].metadata.nbgrader.get('points')}"
                                                       f" -> {exercise.points} (the registry's)"))
                cells[test_id].metadata.nbgrader["points"] = exercise.points
    for name in exercises.keys() - sources.keys():
        found.append(Difference(path, registry.grade_id_of(f"{chapter}.{name}"),
                                f"exercise {chapter}.{name} is registered but solutions/ has no {name} with "
                                f"{BEGIN} markers"))
    for gid, cell in cells.items():
        name = registry.exercise_id_of(gid).split(".", 1)[1].removesuffix("-test")
        if cell.metadata.nbgrader.get("solution") and name not in sources:
            found.append(Difference(path, gid, f"a solution cell with no {name} in solutions/"))
    colab_cells = [cell for cell in notebook.cells if COLAB_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(colab_cells) != 1:
        found.append(Difference(path, COLAB_TAG, f"expected one code cell tagged {COLAB_TAG!r}, found {len(colab_cells)}"))
    elif colab_cells[0].source != colab:
        found.append(Difference(path, COLAB_TAG, "differs from the install cell built from pyproject.toml's URL"))
        colab_cells[0].source = colab
    return found


def _set_source(path, cells, gid, source, description) -> list[Difference]:
    if gid not in cells:
        return [Difference(path, gid, f"missing: add {description}")]
    if cells[gid].source != source:
        cells[gid].source = source
        return [Difference(path, gid, "differs from its source; sync rewrites it")]
    return []
