"""Runs a learner's notebook code inside the grading sandbox and reports raw outputs, never a grade.

    (started by autograder.instructor.sandbox with the job on standard input and an inherited file descriptor
    for the events)

The grader starts this in a separate process with limits (time, memory, file size), without the
network and, where the system allows, without sight of the instructor's files; only the learner's
bundle (no references) is importable. It runs the notebook's code cells, then, one exercise at a
time, asks for that exercise's case inputs (`protocol.job_lines`), calls the learner's function on
them through `judge.run_one_case` and appends one JSON line per event to the events file: cells
started and finished, cases started and finished with their `protocol.CaseRecord`. Whether an output is
right is decided by the grader, outside this process, so nothing the learner's code does in here
can change how it is judged; at worst it can spoil its own outputs. An exercise that `uses` earlier
ones gets their references, rebuilt from source (`reference_namespace`), only in a sandbox the
grader starts after those exercises' cases are decided (grading.grading_stages).

Only the standard library, numpy, IPython and the learner's bundle (`autograder.learner.protocol`,
`judge`, `wire`, `drivers`) are used here.
"""
from __future__ import annotations

import io
import json
import math
import os
import sys

from autograder.learner.protocol import Event


class BoundedText(io.TextIOBase):
    """A stdout/stderr stand-in that keeps the first `limit` characters and counts the rest."""

    def __init__(self, limit):
        self.limit, self.parts, self.kept, self.dropped = limit, [], 0, 0

    def writable(self):
        return True

    def write(self, text):
        text = str(text)
        room = self.limit - self.kept
        self.parts.append(text[:max(room, 0)])
        self.kept += min(len(text), max(room, 0))
        self.dropped += max(len(text) - max(room, 0), 0)
        return len(text)

    def text(self):
        tail = f"\n[... {self.dropped} more characters not kept]" if self.dropped else ""
        return "".join(self.parts) + tail


class Events:
    """Appends one JSON line per event to the file descriptor the grader passed in."""

    def __init__(self, fd: int):
        self.file = os.fdopen(fd, "a", buffering=1)

    def __call__(self, **event):
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())


def run_cells(shell, cells, skip, events):
    for cell in cells:
        if cell["index"] in skip:
            continue
        events(event=Event.CELL_START, index=cell["index"])
        result = shell.run_cell(cell["source"], store_history=False, silent=False)
        error = result.error_in_exec or result.error_before_exec
        events(event=Event.CELL_END, index=cell["index"],
               error=None if error is None else f"{type(error).__name__}: {str(error)[:300]}")


def reference_namespace(uses: dict) -> dict:
    """The references of earlier exercises that this one may call, built from their source."""
    import numpy as np

    namespace = {"np": np, "math": math}
    for source in uses.values():
        exec(compile(source, "<reference>", "exec"), namespace)
    return namespace


def run_exercise(shell, exercise, start_case, events):
    """Each case of `exercise` from `start_case` on, through `judge.run_one_case` as the inline check runs it,
    reported as a case-end event with its `CaseRecord`."""
    from autograder.learner import drivers, wire
    from autograder.learner.judge import run_one_case
    from autograder.learner.protocol import CaseRecord

    driver = drivers.DRIVERS[exercise["driver"]]
    built = reference_namespace(exercise["uses"])
    references = {name: built[name] for name in exercise["uses"]}
    for position, case in enumerate(exercise["cases"]):
        if position < start_case:
            continue
        events(event=Event.CASE_START, exercise=exercise["id"], case=case["name"])
        fn = shell.user_ns.get(exercise["name"])
        if fn is None:
            record = CaseRecord(missing=True)
        else:
            args = wire.decode(case["args"])
            record = CaseRecord.of(run_one_case(driver, fn, args, references), args)
        events(event=Event.CASE_END, exercise=exercise["id"], case=case["name"], **record.event())


def main(events_fd: int):
    requests = sys.stdin  # through a pipe: the hidden cases' inputs never touch the disk
    job = json.loads(requests.readline())  # the cells and the exercises' names; their cases come one by one
    events = Events(events_fd)
    output = BoundedText(job.get("output_limit", 20000))
    sys.stdout = sys.stderr = output
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    run_cells(shell, job["cells"], set(job.get("skip_cells", [])), events)
    start_exercise, start_case = job.get("start", [0, 0])
    for position, exercise in enumerate(job["exercises"]):
        if position < start_exercise:
            continue
        events(event=Event.CASES_WANTED, exercise=exercise["id"])
        given = json.loads(requests.readline() or "{}")
        if given.get("id") != exercise["id"]:  # the job's lines were taken or asked for out of turn
            break
        run_exercise(shell, {**exercise, **given}, start_case if position == start_exercise else 0, events)
    events(event=Event.DONE, output=output.text())


if __name__ == "__main__":
    main(int(sys.argv[1]))
