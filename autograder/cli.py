"""The `nncourse` command line.

    nncourse sync            copy solutions/ into the notebooks' solution and test cells
    nncourse sync --check    exit 1 and name each cell where a notebook and the package disagree
    nncourse list            every exercise with its points and cases
"""
from __future__ import annotations

import argparse
import sys

from autograder import notebooks, registry
from autograder.sync import sync


def _sync(args) -> int:
    try:
        differences = sync(write=not args.check)
    except notebooks.CourseLayoutError as error:
        print(f"nncourse sync: {error}", file=sys.stderr)
        return 2
    unfixable = [d for d in differences if not d.what.startswith("differs")]
    for difference in differences:
        print(difference, file=sys.stderr if args.check or difference in unfixable else sys.stdout)
    if args.check and differences:
        print(f"nncourse sync --check: {len(differences)} difference(s); run `nncourse sync` to fix those it can.",
              file=sys.stderr)
        return 1
    if unfixable:
        return 1
    print("notebooks agree with solutions/ and the registry." if not differences else
          f"rewrote {len(differences)} cell(s).")
    return 0


def _list(args) -> int:
    for exercise in registry.all_exercises():
        visible = len(exercise.visible_cases())
        print(f"{exercise.id:32} {exercise.points} pt  {visible} visible + {len(exercise.cases) - visible} hidden "
              f"cases, {len(exercise.mistakes)} known mistakes")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nncourse", description="The neural-network course's tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    sync_parser = commands.add_parser("sync", help="copy reference solutions into the notebooks")
    sync_parser.add_argument("--check", action="store_true", help="only report differences; exit 1 if any")
    sync_parser.set_defaults(run=_sync)
    commands.add_parser("list", help="list the exercises").set_defaults(run=_list)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
