"""The course in learner form, and a learner's own working copy of it.

`course/chNN/chNN_topic.ipynb` is nbgrader's *source* form: each reference between the solution
markers, the hidden tests, the stored outputs. A learner starts from the *learner* form, the same
notebook as `nbgrader generate_assignment` would release it:

- each region between `### BEGIN SOLUTION` and `### END SOLUTION` becomes
  `# YOUR CODE HERE` / `raise NotImplementedError()`, at the marker's indentation;
- each region between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` is removed;
- outputs and execution counts are cleared, and so are the execution timestamps that running a
  notebook leaves in its cells' metadata and the state of its output widgets (progress bars), which
  only the cleared outputs used.

`learner/chNN/chNN_topic.ipynb` holds that form in the repository (Colab opens it from there);
`nncourse sync` writes it and `nncourse sync --check` verifies it, so `course/` stays the one source.

`update_workspace` makes a learner's working folder (`work/`, ignored by git) from `learner/`: on the
first run every chapter is copied; later runs add new chapters, replace a chapter that changed
upstream only when the learner has not touched their copy, and otherwise put the new version beside
it and say so. A learner's edits are never overwritten.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from autograder.instructor.errors import CourseError

CODE_STUB = ("# YOUR CODE HERE", "raise NotImplementedError()")  # nbgrader's, as nbgrader_config.py sets it
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_TESTS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
MANIFEST = ".nncourse-workspace.json"
NEW_VERSION_SUFFIX = ".new.ipynb"


class MarkerError(CourseError, ValueError):
    """A cell whose BEGIN and END markers do not pair up."""


def learner_form(notebook):
    """A copy of a source notebook (nbformat v4) as a learner starts it; `notebook` is not changed."""
    blank = copy.deepcopy(notebook)
    blank.metadata.pop("widgets", None)
    for cell in blank.cells:
        if cell.cell_type != "code":
            continue
        source = _replace_regions(cell.source, SOLUTION, CODE_STUB)
        cell.source = _replace_regions(source, HIDDEN_TESTS, ())
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
    return blank


def _replace_regions(source: str, markers: tuple[str, str], stub: tuple[str, ...]) -> str:
    """Replace every `markers[0]` ... `markers[1]` region of `source`, both marker lines included,
    with the lines of `stub` indented like the opening marker."""
    begin, end = markers
    kept, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise MarkerError(f"{begin} inside another {begin} region:\n{source}")
            inside = True
            indent = re.match(r"\s*", line).group(0)
            kept += [indent + stub_line for stub_line in stub]
        elif end in line:
            if not inside:
                raise MarkerError(f"{end} without {begin}:\n{source}")
            inside = False
        elif not inside:
            kept.append(line)
    if inside:
        raise MarkerError(f"{begin} without {end}:\n{source}")
    return "\n".join(kept)


def learner_path(source: Path, course_dir: Path, learner_dir: Path) -> Path:
    """`course/ch02/ch02_x.ipynb` -> `learner/ch02/ch02_x.ipynb`."""
    return learner_dir / source.relative_to(course_dir)


# -- a learner's working folder ------------------------------------------------------------------

@dataclass(frozen=True)
class WorkspaceChange:
    """What `update_workspace` did to one chapter notebook, in words for the learner."""

    path: Path
    what: str

    def __str__(self):
        return f"{self.path}: {self.what}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def update_workspace(work_dir: Path, learner_dir: Path) -> list[WorkspaceChange]:
    """Bring `work_dir` up to date with the learner notebooks in `learner_dir`, never overwriting an
    edit. Returns what changed (nothing when the working copy is current).

    The manifest `work_dir/.nncourse-workspace.json` records, per notebook, the upstream version
    last delivered and the exact file written then, which tells an untouched copy from an edited one.
    """
    manifest_path = work_dir / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    changes = []
    for upstream in sorted(learner_dir.glob("ch*/ch*.ipynb")):
        relative = upstream.relative_to(learner_dir).as_posix()
        target = work_dir / relative
        upstream_sha = _sha256(upstream)
        record = manifest.get(relative)
        if not target.exists():
            _deliver(upstream, target)
            what = "restored (it was missing)" if record else "new: ready to work on"
        elif record is None or record["upstream"] == upstream_sha:
            if record is None:  # a copy the manifest does not know: keep it, start tracking it
                manifest[relative] = {"upstream": upstream_sha, "delivered": _sha256(target)}
            continue
        elif _sha256(target) == record["delivered"]:
            _deliver(upstream, target)
            what = "updated to the course's new version (you had not changed it)"
        else:
            beside = target.with_name(target.name.removesuffix(".ipynb") + NEW_VERSION_SUFFIX)
            _deliver(upstream, beside)
            manifest[relative] = {"upstream": upstream_sha, "delivered": record["delivered"]}
            changes.append(WorkspaceChange(target, f"the course changed this chapter; your copy is untouched and "
                                                   f"the new version is beside it: {beside.name}"))
            continue
        manifest[relative] = {"upstream": upstream_sha, "delivered": upstream_sha}
        changes.append(WorkspaceChange(target, what))
    work_dir.mkdir(parents=True, exist_ok=True)
    aside = manifest_path.with_suffix(".partial")
    aside.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    aside.replace(manifest_path)
    return changes


def _deliver(upstream: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(upstream, target)
