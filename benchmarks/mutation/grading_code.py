"""Mutants of the grading code itself: does the suite fail a small change to the code that decides and keeps grades?

    python -m benchmarks.mutation.grading_code [--module NAME ...] [--sample N] [--seed S] [--timeout SECONDS]

Each mutant is one change the exercise mutation's rules propose (`mutants.changes`: an operator or
comparison swapped, a constant moved, a statement dropped, `and`/`or`, ...) to one node of a module of
`autograder/learner/` or `autograder/instructor/` (the exercises' references excluded: they have
their own mutation run), docstrings and type annotations left alone. The mutant is written into a
scratch copy of the last commit (the working tree is never touched), and the test files that name the module run there,
stopping at the first failure; a mutant is killed when they fail (or run past `--timeout`), and
survives when they pass. The report lists every survivor with its line and change, to be killed by a
test or shown equivalent.
"""
from __future__ import annotations

import argparse
import ast
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.mutation.mutants import changes, parent_slots, swapped_in

ROOT = Path(__file__).resolve().parents[2]
MODULES = {  # module -> the test files that reach it
    "learner/judge.py": ["test_grading_code.py", "test_check_messages.py", "test_soundness.py"],
    "learner/compare.py": ["test_compare.py", "test_check_messages.py", "test_grading_code.py"],
    "learner/protocol.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_sandbox.py"],
    "learner/registry.py": ["test_grading_code.py", "test_check_messages.py", "test_bundle.py"],
    "learner/stored.py": ["test_bundle.py", "test_grading_code.py"],
    "learner/check.py": ["test_check_messages.py", "test_grading_code.py"],
    "learner/in_sandbox.py": ["test_grading_code.py", "test_sandbox.py", "test_grading_untrusted.py"],
    "instructor/grading.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_soundness.py"],
    "instructor/intake.py": ["test_intake.py", "test_grading_code.py", "test_grading_exports.py"],
    "instructor/results.py": ["test_grading_code.py", "test_grading_untrusted.py", "test_reports.py"],
    "instructor/reports.py": ["test_reports.py", "test_grading_code.py", "test_grading_exports.py"],
    "instructor/sandbox.py": ["test_sandbox.py", "test_sandbox_syscalls.py"],
    "instructor/isolation.py": ["test_sandbox.py", "test_sandbox_syscalls.py"],
    "instructor/hidden_feedback.py": ["test_grading_code.py", "test_grading_untrusted.py"],
}


@dataclass(frozen=True)
class GradingMutant:
    module: str
    line: int
    change: str
    source: str  # the whole module, changed


def is_docstring(node: ast.AST, parents: dict) -> bool:
    slot = parents.get(node)
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) \
        and slot is not None and slot[1] == "body" and slot[2] == 0


def annotations(tree: ast.AST) -> set[ast.AST]:
    """Every node inside a type annotation: never evaluated (`from __future__ import annotations`), so a change
    there is equivalent."""
    inside = set()
    for node in ast.walk(tree):
        for field in ("annotation", "returns"):
            if getattr(node, field, None) is not None:
                inside |= set(ast.walk(getattr(node, field)))
    return inside


def mutants_of(module: str) -> list[GradingMutant]:
    """Every mutant of `module` (a path under autograder/), its source unparsed whole."""
    tree = ast.parse(subprocess.run(["git", "show", f"HEAD:autograder/{module}"], cwd=ROOT, capture_output=True,
                                    text=True, check=True).stdout)
    parents, unevaluated = parent_slots(tree), annotations(tree)
    found, seen = [], {ast.unparse(tree)}
    for node in list(ast.walk(tree)):
        if node not in parents or node in unevaluated or is_docstring(node, parents) or \
                isinstance(node, (ast.arg, ast.arguments)):
            continue
        for change, replacement in changes(node):
            with swapped_in(parents[node], replacement):
                source = ast.unparse(tree)
            if source not in seen:
                seen.add(source)
                found.append(GradingMutant(module, getattr(node, "lineno", 0), change, source))
    return found


def scratch_copy() -> Path:
    """The last commit's files (`git archive HEAD`) in a temporary folder, so that work in progress in the tree
    changes nothing; the virtual environment is used where it is."""
    scratch = Path(tempfile.mkdtemp(prefix="nncourse-mutants-"))
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(scratch)], input=archive.stdout, check=True)
    return scratch


def killed(mutant: GradingMutant, scratch: Path, timeout: float) -> bool:
    """Whether the module's tests fail (or run past `timeout`) with `mutant` in place in `scratch`."""
    path = scratch / "autograder" / mutant.module
    original = path.read_text()
    path.write_text(mutant.source)
    try:
        tests = [f"tests/{name}" for name in MODULES[mutant.module]]
        run = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                              *tests], cwd=scratch, capture_output=True, timeout=timeout)
        return run.returncode != 0
    except subprocess.TimeoutExpired:
        return True
    finally:
        path.write_text(original)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(MODULES))
    parser.add_argument("--sample", type=int, default=0, help="at most this many mutants per module (0: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600)
    options = parser.parse_args(argv)
    scratch, rng, start = scratch_copy(), random.Random(options.seed), time.monotonic()
    totals = {"killed": 0, "survived": 0}
    try:
        for module in options.module or sorted(MODULES):
            mutants = mutants_of(module)
            chosen = sorted(rng.sample(mutants, min(options.sample, len(mutants))) if options.sample else mutants,
                            key=lambda m: m.line)
            for mutant in chosen:
                verdict = "killed" if killed(mutant, scratch, options.timeout) else "survived"
                totals[verdict] += 1
                print(f"{verdict:8} {module}:{mutant.line}: {mutant.change}", flush=True)
            print(f"-- {module}: {len(chosen)} of {len(mutants)} mutants run", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    run = totals["killed"] + totals["survived"]
    print(f"{totals['killed']} of {run} killed ({totals['killed'] / max(run, 1):.0%}), "
          f"{time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
