"""How long a learner's `nncourse` command takes, against starting Python to do nothing (`python -c pass`).

Each command runs as a learner's does, in a fresh interpreter (`python -m autograder.instructor.cli`, what the
`nncourse` script runs, its output discarded), five times after one warm-up run, and the peer right after it; the
ratio is how many empty interpreter starts the command costs. Budget: under a second for `solution` and `list`.
"""
import subprocess
import sys

from benchmarks.harness import Comparison, compare

COMMANDS = (("solution", "ch02.mse_loss"), ("list",))


def python(*args: str) -> None:
    """Run this interpreter with `args` to the end, its output discarded; a failure stops the benchmark."""
    subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)


def run() -> list[Comparison]:
    results = []
    for command in COMMANDS:
        result = compare(f"nncourse {' '.join(command)}",
                         ("the command", lambda: python("-m", "autograder.instructor.cli", *command)),
                         ("python -c pass", lambda: python("-c", "pass")), repeats=5, min_time=0)
        result.note = f"{result.ours_s:.3f} s against a budget of 1 s"
        results.append(result)
    return results
