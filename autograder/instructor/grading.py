"""Grade one submitted notebook: run it in the sandbox, judge its outputs here, explain each score.

The learner's code runs only in the sandbox, which reports raw outputs; the pass/fail decision is
made in this process, by the same `judge` as the inline check, against references the sandbox
cannot see. The notebook's own test cells are never run (a learner may have edited them), and
points come from the registry, never from the notebook's metadata.

The exercises are graded in stages (`grading_stages`), each in sandboxes of its own started after
the earlier stages' cases are decided here: an exercise that `uses` others gets their references in
its sandbox, and by then nothing learner code does with them can change a decided score. Each stage
runs the notebook's cells again, but not its demonstrations (`demos.cells_to_skip`) and, in a class,
in a fork of a warm sandbox that has the imports done (sandbox.prewarmed): for chapter 02 that second
run costs about a tenth of a second. Taking the second stage from a copy of the first stage's process
after its cells ran would save that much, at the cost of the stages' separation: that copy would be
made by, and hold whatever was left by, the learner's code (a process it started, a hook it registered
to run at fork), and only the kernel, ending a PID namespace, can vouch that no process of the first
stage lives on when the references arrive, which it cannot do for a namespace the copy shares.

Everything a sandbox writes is untrusted data: a case's record is read only in the form
the sandbox writes it (`protocol.CaseRecord.read`, `wire.decode`), and anything else fails that case with
the course's words, "the sandbox returned a malformed result", never the learner's. A hidden case's
feedback shows an exception's type and the learner's lines, never its message.

The course's demonstration cells (tagged `demo` in course/) are left out when grading, as demos.py
decides from the course's text and the submission's names, never from the submission's metadata.

A submission that cannot be graded (no notebook, a file nbformat rejects) still gets a result: its
status and reason say why, and every exercise scores 0 with that reason. A cell that loops forever
or kills the process is skipped on a fresh start; an exercise case that does so fails alone, and
the rest of the notebook is graded.
"""
from __future__ import annotations

import ast
import inspect
import time
from dataclasses import dataclass, field
from pathlib import Path

from autograder.instructor import demos, notebooks, sandbox
from autograder.instructor.intake import (cell_source, find_notebook, learner_cells, no_notebook_reason, notebook_sha256,
                                          read_cells)
from autograder.instructor.results import CaseGrade, ExerciseGrade, Status, SubmissionGrade, graded_exercises, ungraded
from autograder.learner import registry, wire
from autograder.learner.check import explanation_lines, left_unwritten, report
from autograder.learner.compare import changed_inputs
from autograder.learner.judge import (CaseResult, Outcome, fold_repeated_exception, judge, name_the_mistake,
                                     warning_notes)
from autograder.learner.protocol import MALFORMED, CaseRecord, Event, Malformed, case_key

MAX_RESTARTS = 12


def exercise_names(chapter: str) -> set[str]:
    """The names grading looks up in a submission's namespace: each graded exercise's, and those it `uses`."""
    return {name for e in graded_exercises(chapter) for name in (e.name, *e.uses)}


RUNNER_MODULES = ["IPython.core.interactiveshell", "autograder.learner.in_sandbox", "autograder.learner.protocol",
                  "autograder.learner.judge", "autograder.learner.check", "autograder.learner.drivers",
                  "autograder.learner.wire"]


def warm_modules(chapter: str) -> list[str]:
    """What a warm sandbox imports before it forks a submission's process: the runner's modules and every
    module the chapter's notebook in course/ imports (the course's text, never a learner's)."""
    found = []
    for cell in notebooks.read(notebooks.chapter_notebook(chapter)).cells:
        try:
            tree = ast.parse(cell_source(cell)) if cell.get("cell_type") == "code" else None
        except SyntaxError:
            continue
        for node in ast.walk(tree) if tree else ():
            if isinstance(node, ast.Import):
                found += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"]
    return list(dict.fromkeys(RUNNER_MODULES + found))


def grading_stages(exercises: list[registry.Exercise]) -> list[list[registry.Exercise]]:
    """The exercises in the order of the sandboxes that grade them: first every exercise that uses no other
    graded one, then those whose `uses` are all graded in an earlier stage, and so on. A stage's sandbox
    holds the references of the exercises its exercises use, so it starts only after their cases are
    decided: no reference code is inside a sandbox before the cases of its own exercise are decided."""
    stages, pending = [], list(exercises)
    while pending:
        undecided = {e.name for e in pending}
        ready = [e for e in pending if not undecided.intersection(e.uses)] or pending  # a cycle: all at once
        stages.append(ready)
        pending = [e for e in pending if e not in ready]
    return stages


def _job_exercise(exercise: registry.Exercise) -> tuple[dict, dict]:
    """The sandbox's part of an exercise (its name, driver, encoded inputs, and the source of the references
    it uses) and the inputs kept here."""
    inputs, cases = {}, []
    for case in exercise.cases:
        args = case.make_args()
        inputs[case.name] = args
        cases.append({"name": case.name, "args": wire.encode(args)})
    uses = {name: inspect.getsource(exercise.reference.__globals__[name]) for name in exercise.uses}
    return {"id": exercise.id, "name": exercise.name, "driver": exercise.call.__name__, "uses": uses,
            "cases": cases}, inputs


@dataclass
class NotJudged:
    """A case decided without an output to judge; `why` is the course's words, never the learner's."""

    why: str
    cause: str = ""  # for the export: "time limit", "crash", "malformed result", or "" (not run)


@dataclass
class Sandboxed:
    """What the sandbox runs of one stage gave: each case's records as the sandbox wrote them, the cases
    the grader itself decided (stopped, not run, malformed), and whether every run was isolated."""

    records: dict = field(default_factory=dict)  # (exercise id, case name) -> [case_end records]
    decided: dict = field(default_factory=dict)  # (exercise id, case name) -> NotJudged
    isolated: bool = True
    failure: str = ""  # why the sandbox could not run the notebook at all: the grader's fault


class Notebook:
    """A submission's code cells, run in one fresh sandbox per grading stage; a cell that stopped a sandbox
    is skipped in every later one."""

    def __init__(self, cells: list[dict], bundle: Path, limits: sandbox.Limits, hide: list[Path]):
        self.cells, self.bundle, self.limits, self.hide = cells, bundle, limits, hide
        self.skip: set[int] = set()
        self.notes: list[str] = []

    def runnable(self) -> set[int]:
        """The indices of the cells a sandbox still runs."""
        return {cell["index"] for cell in self.cells} - self.skip

    def run_stage(self, jobs: list[dict]) -> Sandboxed:
        """Run the exercises of `jobs` on the learner's code, in a fresh sandbox after a case or a cell stops
        one, and keep every case record the sandbox wrote for a case of these exercises."""
        known = [(job["id"], case["name"]) for job in jobs for case in job["cases"]]
        result, position = Sandboxed(), [0, 0]
        for _ in range(MAX_RESTARTS):
            run = sandbox.run({"cells": self.cells, "skip_cells": sorted(self.skip), "exercises": jobs,
                               "start": position}, self.bundle, self.limits, self.hide)
            result.isolated &= run.isolated
            for event in run.events:
                if event.get("event") == Event.CASE_END and case_key(event) in known:
                    result.records.setdefault(case_key(event), []).append(event)
            if run.finished:
                break
            if not run.events:  # the sandbox never reached the learner's code: the grader's fault, not theirs
                result.failure = f"the sandbox could not start ({run.ending()}): {' '.join(run.log[-3:])}"
                break
            position = self._restart_position(run, position, known, result)
            if position is None:
                break
        return result

    def _restart_position(self, run: sandbox.Run, position: list[int], known: list, result: Sandboxed):
        """Where the next sandbox starts after `run` stopped early, from its last event; None when nothing is
        left to run. A last event that names no cell or case of this stage is a malformed result."""
        last = run.events[-1]
        kind, key = last.get("event"), case_key(last)
        index = last.get("index")
        if kind in (Event.CELL_START, Event.CELL_END) and type(index) is int and index in self.runnable():
            self.skip.add(last["index"])
            self.notes.append(f"cell {last['index']} was skipped: it {run.ending()}")
            return position
        if kind == Event.CASE_END and key in known:
            return _position_of(known, known.index(key) + 1)
        if kind == Event.CASES_WANTED:  # it stopped between two exercises: go on with the one it asked for
            waiting = [i for i, pending in enumerate(known) if pending[0] == last.get("exercise")
                       and pending not in result.records and pending not in result.decided]
            if waiting:
                return _position_of(known, waiting[0])
        if kind == Event.CASE_START and key in known:
            cause = "time limit" if run.timed_out else "crash"
            result.decided[key] = NotJudged(f"your code {run.ending()} on this case", cause)
            rest = [later for later in known[known.index(key) + 1:] if later[0] == key[0]]
            for later in rest:
                result.decided[later] = NotJudged(f"not run: an earlier case of this exercise {run.ending()}", cause)
            return _position_of(known, known.index(key) + 1 + len(rest))
        for pending in known:
            if pending not in result.records:
                result.decided.setdefault(pending, NotJudged(MALFORMED, "malformed result"))
        return None


def _position_of(known: list, index: int) -> list[int] | None:
    """[exercise, case] positions in the job of the index-th case of `known`, None past the last."""
    if index >= len(known):
        return None
    exercise_ids = list(dict.fromkeys(key[0] for key in known))
    exercise = known[index][0]
    return [exercise_ids.index(exercise), index - next(i for i, key in enumerate(known) if key[0] == exercise)]


def _outcome(records: list[dict], inputs: dict, hidden: bool) -> Outcome | NotJudged:
    """The outcome a case's one record describes, read as untrusted data: anything but exactly one record in
    the form the sandbox writes is a malformed result. A hidden case's outcome keeps an exception's type
    and the learner's lines, never its message, and a warning's category, never its text."""
    if len(records) != 1:
        return NotJudged("not run: the grading stopped before this case" if not records else MALFORMED,
                         "" if not records else "malformed result")
    try:
        return _read_record(records[0], inputs, hidden)
    except Malformed:
        return NotJudged(MALFORMED, "malformed result")


def _read_record(event: dict, inputs: dict, hidden: bool) -> Outcome:
    """The outcome of the case-end `event`, read as a `CaseRecord`; `Malformed` when it is not one."""
    record = CaseRecord.read(event)
    if record.missing:
        return Outcome(trace=["NameError: no function or class of this name is defined "
                              "(was its cell deleted or renamed?)"])
    if record.not_written:
        return Outcome(not_written=True)
    notes = warning_notes([warning.split(":", 1)[0] for warning in record.warnings] if hidden else record.warnings)
    if record.exception:  # a hidden case keeps the exception's type, never its message: it can carry the inputs
        return Outcome(trace=record.trace + ([record.exception] if hidden else record.message), notes=notes)
    if record.unsupported:
        what = "a value" if hidden else record.unsupported
        return Outcome(trace=[f"returned {what}, which the grader does not accept"], notes=notes)
    try:
        got, after = wire.decode(record.output), wire.decode(record.args_after)
    except wire.DecodeError as error:
        raise Malformed(str(error)) from None
    if type(after) is not dict or after.keys() != inputs.keys():
        raise Malformed(MALFORMED)
    return Outcome(got, changed=changed_inputs(inputs, after), notes=notes)


def grade_submission(folder: Path, student: str, chapter: str, bundle: Path, hide: list[Path],
                     limits: sandbox.Limits = sandbox.Limits()) -> SubmissionGrade:
    """Grade the notebook in `folder` (nbgrader's submitted/<student>/<chapter>/).

    Each grading stage (`grading_stages`) runs in sandboxes of its own, started only after the earlier
    stages' cases are decided here."""
    start = time.monotonic()
    path, notes = find_notebook(folder, chapter)
    if path is None:
        return ungraded(student, chapter, Status.NO_NOTEBOOK, no_notebook_reason(folder, chapter), notes)
    sha = notebook_sha256(path)
    try:
        cells = read_cells(path)
    except ValueError as error:
        return ungraded(student, chapter, Status.UNREADABLE, str(error), notes, sha)
    run_cells, layout_notes = learner_cells(cells, chapter)
    skipped = demos.cells_to_skip(run_cells, chapter, exercise_names(chapter))
    notebook = Notebook([cell for cell in run_cells if cell["index"] not in skipped], bundle, limits, hide)
    grades, isolated = {}, True
    for stage in grading_stages(graded_exercises(chapter)):
        jobs, inputs = zip(*(_job_exercise(e) for e in stage))
        sandboxed = notebook.run_stage(list(jobs))
        if sandboxed.failure:
            return ungraded(student, chapter, Status.GRADER_ERROR, sandboxed.failure, notes + notebook.notes, sha)
        isolated &= sandboxed.isolated
        grades.update({e.id: _grade_exercise(e, sandboxed, case_inputs) for e, case_inputs in zip(stage, inputs)})
    exercises = [grades[e.id] for e in graded_exercises(chapter)]
    return SubmissionGrade(student, chapter, Status.GRADED, "", exercises, notes + notebook.notes + layout_notes,
                           isolated, round(time.monotonic() - start, 2), sha)


def _grade_exercise(exercise: registry.Exercise, sandboxed: Sandboxed, inputs: dict) -> ExerciseGrade:
    """Judge each case of `exercise` here, as the inline check does, and explain the score."""
    results: list[CaseResult] = []
    causes: list[str] = []
    for case in exercise.cases:
        key = (exercise.id, case.name)
        outcome = sandboxed.decided.get(key) or _outcome(sandboxed.records.get(key, []), inputs[case.name],
                                                         case.hidden)
        if isinstance(outcome, NotJudged):
            causes.append(outcome.cause)
            results.append(CaseResult(case, False, [outcome.why]))
            continue
        causes.append("memory limit" if outcome.trace and outcome.trace[-1].startswith("MemoryError") else "")
        results.append(fold_repeated_exception(results, judge(exercise, case, outcome, inputs[case.name])))
    return grade_from_results(exercise, name_the_mistake(exercise, results), causes)


def grade_from_results(exercise: registry.Exercise, results: list[CaseResult],
                       causes: tuple[str, ...] | list[str] = ()) -> ExerciseGrade:
    """An exercise's grade from its judged cases (their known mistake already named): full points only when
    every case passed, the feedback and each case as the learner may see them, and the export's reason.
    `causes` are what stopped each case ("time limit", ...), when grading knows."""
    passed = sum(r.passed for r in results)
    score = exercise.points if passed == len(exercise.cases) else 0
    mistakes = sorted({r.mistake.name for r in results if r.mistake})
    cases = [CaseGrade(r.case.name, r.case.hidden, r.passed, explanation_lines(r)) for r in results]
    return ExerciseGrade(exercise.id, exercise.points, score, passed, len(exercise.cases),
                         report(exercise, results), mistakes, _what_happened(results, causes, mistakes),
                         cases, left_unwritten(results))


def _what_happened(results: list[CaseResult], causes: list[str], mistakes: list[str]) -> str:
    """The export's one-line reason for an exercise's score: "" at full marks, else what stopped its cases
    (time limit, memory limit, crash, malformed result), how many failed, and any known mistake."""
    failed = sum(not r.passed for r in results)
    if not failed:
        return ""
    if any(r.not_written for r in results):
        return "not written"
    what = list(dict.fromkeys(cause for cause in causes if cause))
    return "; ".join(what + [f"{failed} of {len(results)} cases failed"] + mistakes)
