"""`nncourse lab`: JupyterLab for a learner working alone, or for an instructor's class.

Self-study (the default): the learner's working copy (`work/`, made from `learner/`; see
`learner_copy.update_workspace`) is brought up to date, then JupyterLab opens on it with nbgrader's
panels switched off. A learner working alone has no class, no exchange and nothing to fetch, and
the instructor's Formgrader and "Create Assignment" tools have no place there.

Instructor (`--course-dir DIR`): JupyterLab opens in an nbgrader course directory, with the
Formgrader, the exchange (`DIR/exchange`, set in `nbgrader_config.py`) and the Assignment List
working. A folder without `nbgrader_config.py` is first made into a course directory from this
repository's `nbgrader_config.py` and `course/`.

Either way the environment's own scripts come first on PATH: the Formgrader runs `alembic` by name.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from autograder.instructor import notebooks
from autograder.instructor.errors import CourseError
from autograder.instructor.learner_copy import update_workspace

WORK = notebooks.ROOT / "work"
SELF_STUDY_CONFIG = Path(sysconfig.get_path("data")) / "etc" / "nncourse-self-study"  # inside the environment
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"
NEWS_PLUGIN = "@jupyterlab/apputils-extension:announcements"  # asks to fetch Jupyter's news from the network
NBGRADER_SERVER_EXTENSIONS = ("formgrader", "validate_assignment", "assignment_list", "course_list")


class LabError(CourseError):
    """`nncourse lab` cannot start; the message says why and what to do."""


def self_study_config(config_dir: Path) -> Path:
    """Write a Jupyter configuration folder that switches nbgrader's panels and server routes off
    (and JupyterLab's offer to fetch news, which a learner need not be asked on first start).

    It goes first on JUPYTER_CONFIG_PATH, the highest priority, and so leaves the learner's own
    ~/.jupyter settings (themes, shortcuts) in force."""
    (config_dir / "labconfig").mkdir(parents=True, exist_ok=True)
    (config_dir / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {NBGRADER_LAB_EXTENSION: True, NEWS_PLUGIN: True}}, indent=1))
    server = {f"nbgrader.server_extensions.{name}": False for name in NBGRADER_SERVER_EXTENSIONS}
    (config_dir / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": server}}, indent=1))
    return config_dir


def make_course_directory(course_dir: Path) -> list[str]:
    """Make `course_dir` an nbgrader course directory, unless it is one already. Returns what was done."""
    if (course_dir / "nbgrader_config.py").exists():
        return []
    if course_dir.exists() and any(course_dir.iterdir()):
        raise LabError(f"{course_dir} is not empty and has no nbgrader_config.py, so it is not a course directory. "
                       "Name a new folder, or copy this repository's nbgrader_config.py into it.")
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(notebooks.ROOT / "nbgrader_config.py", course_dir / "nbgrader_config.py")
    shutil.copytree(notebooks.COURSE, course_dir / "course", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return [f"made the course directory {course_dir}: nbgrader_config.py and the source assignments in course/"]


def environment(jupyter_config_dir: Path | None) -> dict[str, str]:
    """The environment JupyterLab runs in: this environment's scripts first on PATH, and
    `jupyter_config_dir` (the self-study configuration) first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])
    if jupyter_config_dir is not None:
        env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
            [str(jupyter_config_dir), *filter(None, [env.get("JUPYTER_CONFIG_PATH")])])
    return env


def command(root_dir: Path, jupyter_args: list[str]) -> list[str]:
    args = [sys.executable, "-m", "jupyterlab", "--notebook-dir", str(root_dir), *jupyter_args]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in args:
        args.append("--allow-root")  # containers often run as root; JupyterLab refuses it otherwise
    return args


def run(course_dir: Path | None, work_dir: Path = WORK, jupyter_args: list[str] = ()) -> int:
    """Start JupyterLab (self-study when `course_dir` is None); returns its exit status."""
    if course_dir is None:
        if not notebooks.LEARNER.is_dir():
            raise LabError(f"{notebooks.LEARNER} is missing: self-study needs a clone of the course's repository "
                           "(git clone, then python3 bootstrap.py lab).")
        changes = update_workspace(work_dir, notebooks.LEARNER)
        for change in changes:
            print(change)
        print(f"your working copy of the course: {work_dir} (your edits there are never overwritten; "
              "`nncourse solution chNN.name` shows a reference after you have tried)")
        root, env, cwd = work_dir, environment(self_study_config(SELF_STUDY_CONFIG)), None
    else:
        for line in make_course_directory(course_dir):
            print(line)
        root, env, cwd = course_dir, environment(None), course_dir
    return subprocess.call(command(root, list(jupyter_args)), env=env, cwd=cwd)
