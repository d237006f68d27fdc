"""Runs a learner's notebook code inside the grading sandbox and reports raw outputs, never a grade.

    main(events_fd)    (called in the sandbox's learner process, by isolation.py or, unisolated, sandbox.BOOT,
                        with the job on standard input and `events_fd` an inherited pipe for the events)

The grader starts this in a separate process with limits (time, memory, file size), without the
network and, where the system allows, without sight of the instructor's files; only the learner's
bundle (no references) is importable. It runs the notebook's code cells, then asks for one case at a
time (`Event.CASE_WANTED`), calls the learner's function on it through `judge.run_one_case` and writes
one JSON line per event to the events pipe: cells started and finished, cases started and finished with
their `protocol.CaseRecord`. The grader sends a case only once the one before it has ended, the visible
cases of every exercise before any hidden one, so no hidden input is in this process while a visible
case runs. Whether an output is right is decided by the grader, outside this process, so nothing the
learner's code does in here can change how it is judged; at worst it can spoil its own outputs. An
exercise that `uses` earlier ones gets their references as compiled code without source or docstrings
(`reference_namespace`), only in a sandbox the grader starts after those exercises' cases are decided
(grading.grading_stages).

What runs a case (`run_one_case`, `CaseRecord`, `wire`, the drivers) is imported before the first
learner cell, so a cell that patches those modules' names does not change how its cases are run, and
a case whose runner's code was swapped (`__code__`) is reported in a form the grader rejects.

Only the standard library, numpy, IPython and the learner's bundle (`autograder.learner.protocol`,
`judge`, `wire`, `drivers`) are used here.
"""
from __future__ import annotations

import base64
import io
import json
import marshal
import math
import os
import sys

from autograder.learner import drivers, wire
from autograder.learner.judge import run_one_case
from autograder.learner.protocol import CaseRecord, Event



def _runner() -> dict:
    """The functions that run a case and report it, as this module finds them now (the watch of forbidden calls as
    `run_one_case` finds it, through its module)."""
    watch = sys.modules[run_one_case.__module__].forbidden
    return {"run_one_case": run_one_case, "CaseRecord.of": CaseRecord.of.__func__, "CaseRecord.event": CaseRecord.event,
            "wire.encode": wire.encode, "wire.decode": wire.decode,
            **{f"Watch.{name}": getattr(watch.Watch, name) for name in ("__init__", "__enter__", "__exit__", "_profile",
                                                                        "_by_learner")},
            **{f"Forbidden.{name}": getattr(watch.Forbidden, name).__func__ if name == "of" else
               getattr(watch.Forbidden, name) for name in ("of", "of_code", "of_callable", "_of_module")}}


RUNNER = {name: (function, function.__code__) for name, function in _runner().items()}  # before any learner cell


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
    """Writes one JSON line per event to the pipe the grader passed in."""

    def __init__(self, fd: int):
        self.file = os.fdopen(fd, "w", buffering=1)

    def __call__(self, **event):
        self.file.write(json.dumps(event) + "\n")
        self.file.flush()


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
    """The references of earlier exercises that this one may call, built from their compiled code (base64 of
    `marshal`, as grading sends it)."""
    import numpy as np

    namespace = {"np": np, "math": math}
    for code in uses.values():
        exec(marshal.loads(base64.b64decode(code)), namespace)
    return namespace


def runner_intact() -> bool:
    """Whether the functions that run and report a case are still those imported before the first learner cell,
    with their code."""
    return all(now is function and now.__code__ is code for (function, code), now in zip(RUNNER.values(),
                                                                                          _runner().values()))


def run_case(shell, case: dict, events) -> None:
    """One case, through `judge.run_one_case` as the inline check runs it, reported as a case-end event with
    its `CaseRecord`."""
    key = {"exercise": case["exercise"], "case": case["case"]}
    events(event=Event.CASE_START, **key)
    fn = shell.user_ns.get(case["name"])
    if fn is None:
        record = CaseRecord(missing=True).event()
    else:
        built = reference_namespace(case["uses"])
        args = wire.decode(case["args"])
        ran = run_one_case(drivers.DRIVERS[case["driver"]], fn, args, {name: built[name] for name in case["uses"]},
                           tuple(case["forbids"]))
        record = CaseRecord.of(ran, args).event() if runner_intact() else {"runner_changed": True}
    events(event=Event.CASE_END, **key, **record)


def main(events_fd: int):
    requests = sys.stdin  # through a pipe: the hidden cases' inputs never touch the disk
    job = json.loads(requests.readline())  # the cells; the cases come one by one
    events = Events(events_fd)
    output = BoundedText(job.get("output_limit", 20000))
    sys.stdout = sys.stderr = output
    os.environ.setdefault("MPLBACKEND", "Agg")
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    run_cells(shell, job["cells"], set(job.get("skip_cells", [])), events)
    while True:
        events(event=Event.CASE_WANTED)
        case = json.loads(requests.readline() or "{}")
        if "case" not in case:
            break
        run_case(shell, case, events)
    events(event=Event.DONE, output=output.text())
