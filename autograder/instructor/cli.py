"""The `nncourse` command line.

    nncourse lab [--course-dir DIR] [JUPYTERLAB OPTIONS]
                             JupyterLab: alone, on your working copy work/ (made from learner/);
                             with --course-dir, an instructor's nbgrader course directory
    nncourse solution chNN.name
                             print the reference of one exercise (after you have tried it)
    nncourse sync            copy solutions/ into the notebooks' solution and test cells, write the
                             learner form of every notebook into learner/ and the exercise index
    nncourse sync --check    exit 1 and name each cell (or file) where a notebook and the package disagree
    nncourse list            every exercise with its points and cases (read from the exercise index)
    nncourse release [chNN ...] [--course-dir DIR]
                             learner versions (nbgrader release/) and the learner's bundle
    nncourse grade chNN [--course-dir DIR] [--workers N] [--timeout S] [--memory-gb G] [--regrade]
                        [--scheduler tcp://HOST:8786]
                             grade every submission in parallel, in sandboxes; the instructor's report,
                             each learner's feedback page, CSV exports, a summary

Only `solution` and `list` work with the course's base install (Colab's); the others need the
`lab` or `instructor` extra, and say so.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import os
import sys
from pathlib import Path

from autograder.instructor import notebooks
from autograder.instructor.errors import CourseError
from autograder.learner import registry


def _sync(args) -> int:
    from autograder.instructor.sync import sync, sync_index

    differences = sync(write=not args.check) + sync_index(write=not args.check)
    unfixable = [d for d in differences if not d.what.startswith("differs")]
    for difference in differences:
        print(difference, file=sys.stderr if args.check or difference in unfixable else sys.stdout)
    if args.check and differences:
        print(f"nncourse sync --check: {len(differences)} difference(s); run `nncourse sync` to fix those it can.",
              file=sys.stderr)
        return 1
    if unfixable:
        return 1
    print("notebooks and the exercise index agree with solutions/ and the registry." if not differences else
          f"rewrote {len(differences)} cell(s) or file(s).")
    return 0


INDEX_MODULE = "autograder.instructor.exercise_index"


def indexed_exercises() -> tuple[dict, ...]:
    """Every exercise's id, points, visible and hidden cases and known mistakes, from the index `nncourse sync`
    writes (autograder/instructor/exercise_index.py), a literal that imports nothing: counting them through the
    registry imports every chapter's exercises, torch and scikit-learn (2 s and more). A missing or unreadable
    index is a CourseError that says how to write it again."""
    try:
        return importlib.import_module(INDEX_MODULE).EXERCISES
    except ModuleNotFoundError as error:
        if error.name != INDEX_MODULE:
            raise
        problem = "is missing"
    except SyntaxError as error:
        problem = f"is not valid Python (line {error.lineno}: {error.msg})"
    raise CourseError(f"the exercise index, autograder/instructor/exercise_index.py, {problem}: run `nncourse sync` "
                      "to write it from the registry")


def _list(args) -> int:
    """Print every exercise with its points, cases and known mistakes, one line each."""
    for row in indexed_exercises():
        print(f"{row['id']:32} {row['points']} pt  {row['visible']} visible + {row['hidden']} hidden cases, "
              f"{row['mistakes']} known mistakes")
    return 0


def reference_source(exercise_id: str) -> str | None:
    """The source of an exercise's reference read from its chapter's `solutions/chNN_*.py`, nothing imported (a
    learner asks for a solution in well under a second): the top-level function or class named like the
    exercise, decorators included. None when there is none there (a graded class's copy holds no references);
    the registry then says why."""
    chapter, _, name = exercise_id.partition(".")
    path = notebooks.chapter_modules().get(chapter)
    exercises = notebooks.ROOT / "autograder" / "instructor" / "exercises" / f"{chapter}.py"
    if path is None or not name.isidentifier() or not exercises.is_file() or \
            f'id="{exercise_id}"' not in exercises.read_text():  # an exercise of the course, not a helper
        return None
    text = path.read_text()
    for node in ast.parse(text).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            first = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
            return "".join(text.splitlines(keepends=True)[first - 1:node.end_lineno])
    return None


def _solution(args) -> int:
    """Print an exercise's reference, without the solution markers."""
    source = reference_source(args.exercise)
    if source is None:
        try:
            exercise = registry.get(args.exercise)
        except KeyError as error:
            print(f"nncourse solution: {error.args[0]}", file=sys.stderr)
            return 2
        if exercise.reference is None:
            print(f"nncourse solution: this copy of the course holds no references (it is a graded class's "
                  f"learner copy); ask your instructor about {exercise.id}.", file=sys.stderr)
            return 2
        source = inspect.getsource(exercise.reference)
    print("\n".join(line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION",
                                                                                "### END SOLUTION")))
    return 0


def _lab(args, jupyter_args) -> int:
    from autograder.instructor import lab

    return lab.run(Path(args.course_dir) if args.course_dir else None, Path(args.work_dir), jupyter_args)


def course_directory(path: str) -> Path:
    """`path` as a course directory; CourseError, before anything else is tried, when it is not one."""
    course_dir = Path(path)
    if not (course_dir / "nbgrader_config.py").is_file():
        where = "this folder" if path == "." else course_dir
        raise CourseError(f"{where} is not a course directory (no nbgrader_config.py in {course_dir.resolve()}): "
                          "cd into the course directory or pass --course-dir DIR")
    return course_dir


def _release(args) -> int:
    from autograder.instructor import nbgrader_bridge

    course_directory(args.course_dir)
    chapters = args.chapters or list(notebooks.chapter_modules())
    path = nbgrader_bridge.release(Path(args.course_dir), chapters)
    print(f"released {', '.join(chapters)} into {Path(args.course_dir) / 'release'}; learner bundle: {path}")
    return 0


def _grade(args) -> int:
    from autograder.instructor import classroom, nbgrader_bridge, reports, sandbox

    course_dir = course_directory(args.course_dir)
    if not classroom.submissions(course_dir, args.chapter):  # nothing graded is a failure, never an empty report
        submitted = course_dir / "submitted"
        print(f"nncourse grade: no submissions of {args.chapter} in {submitted}/*/{args.chapter}/"
              f"{'' if submitted.is_dir() else f' ({submitted} does not exist)'}: collect them there first "
              f"(nbgrader collect, or one folder per learner: submitted/<student>/{args.chapter}/).", file=sys.stderr)
        return 1
    if not sandbox.isolation_available():
        print("warning: this machine does not allow user namespaces (unshare), so learners' code runs without "
              "network isolation and can read files the instructor can read. Grade on Linux with user "
              "namespaces enabled for a class you do not trust.", file=sys.stderr)
    limits = sandbox.Limits(seconds=args.timeout, memory_bytes=int(args.memory_gb * 2**30))
    try:
        grades = classroom.grade_class(course_dir, args.chapter, workers=args.workers, limits=limits,
                                       regrade=args.regrade, scheduler=args.scheduler)
    except KeyboardInterrupt:
        kept = classroom.work_dir(course_dir) / "grades" / args.chapter
        print(f"\nnncourse grade: stopped. Every submission graded so far is kept in {kept}; run "
              f"`nncourse grade {args.chapter}` again to grade the rest.", file=sys.stderr)
        return 130
    written = reports.write_all(course_dir, args.chapter, grades)
    if (course_dir / "gradebook.db").exists():
        nbgrader_bridge.record_in_gradebook(course_dir, args.chapter, grades)
    if grades.unchanged:
        print(f"{grades.unchanged} submission{'s' if grades.unchanged > 1 else ''} unchanged since graded, not graded "
              "again (--regrade grades every one again)")
    print(reports.summary(args.chapter, grades))
    print("\n".join(f"{what}: {path}" for what, path in written.items()))
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nncourse", description="The neural-network course's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="copy reference solutions into the notebooks")
    sync_parser.add_argument("--check", action="store_true", help="only report differences; exit 1 if any")
    sync_parser.set_defaults(run=_sync)
    commands.add_parser("list", help="list the exercises").set_defaults(run=_list)
    release = commands.add_parser("release", help="learner versions and the learner's bundle")
    release.add_argument("chapters", nargs="*", help="chapters to release (default: all)")
    release.add_argument("--course-dir", default=".", help="the nbgrader course directory (default: here)")
    release.set_defaults(run=_release)
    grade = commands.add_parser("grade", help="grade every submission of a chapter")
    grade.add_argument("chapter", help="e.g. ch02")
    grade.add_argument("--course-dir", default=".", help="the nbgrader course directory (default: here)")
    grade.add_argument("--workers", type=int, default=None, help="submissions graded at once (default: cores)")
    grade.add_argument("--timeout", type=float, default=60.0, help="seconds a sandbox may run (default: 60)")
    grade.add_argument("--memory-gb", type=float, default=6.0, help="address space per sandbox (default: 6)")
    grade.add_argument("--regrade", action="store_true", help="grade again even unchanged submissions")
    grade.add_argument("--scheduler", default=None, help="a Dask scheduler's address (tcp://host:8786): grade on "
                       "its workers instead of a local pool (pip install 'nncourse[dask]')")
    grade.set_defaults(run=_grade)
    lab_parser = commands.add_parser("lab", help="open JupyterLab on your working copy (or, with --course-dir, "
                                                 "an nbgrader course directory); other options go to JupyterLab")
    lab_parser.add_argument("--course-dir", default=None, help="an instructor's course directory (made if absent)")
    lab_parser.add_argument("--work-dir", default=str(notebooks.ROOT / "work"),
                            help="your working copy of the course, alone (default: work/ in the repository)")
    lab_parser.set_defaults(run=None)
    solution = commands.add_parser("solution", help="print the reference of one exercise")
    solution.add_argument("exercise", help="e.g. ch02.mse_loss")
    solution.set_defaults(run=_solution)
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "lab":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return _lab(args, rest) if args.command == "lab" else args.run(args)
    except CourseError as error:
        print(f"nncourse {args.command}: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `nncourse list | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
