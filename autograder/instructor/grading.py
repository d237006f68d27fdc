"""Grade one submitted notebook: run it in the sandbox, judge its outputs here, explain each score.

The learner's code runs only in the sandbox, which reports raw outputs; the pass/fail decision is
made in this process, by the same `judge` as the inline check, against references the sandbox
cannot see. The notebook's own test cells are never run (a learner may have edited them), and
points come from the registry, never from the notebook's metadata.

The exercises are graded in stages (`grading_stages`), each in sandboxes of its own started after
the earlier stages' cases are decided here: an exercise that `uses` others gets their references in
its sandbox (compiled, without source: `reference_code`), and by then nothing learner code does with
them can change a decided score. Within a stage the sandbox gets one case at a time, every visible case
before any hidden one (`in_sandbox_order`), so no hidden input is in the learner's process while a case
whose messages the feedback shows runs; a case's record counts only when written while that case was
the one out (`sandbox.Channel`). Each stage
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
feedback shows only what `hidden_feedback` vouches for: an exception's type when Python or a library
defines it, and the frames that name lines of the submission; never its message.

The course's demonstration cells (tagged `demo` in course/) are left out when grading, as demos.py
decides from the course's text and the submission's names, never from the submission's metadata.

A submission that cannot be graded (no notebook, a file nbformat rejects) still gets a result: its
status and reason say why, and every exercise scores 0 with that reason. A cell that loops forever
or kills the process is skipped on a fresh start; an exercise case that does so fails alone, and
the rest of the notebook is graded.
"""
from __future__ import annotations

import ast
import base64
import inspect
import marshal
import textwrap
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from autograder.instructor import demos, hidden_feedback, notebooks, sandbox
from autograder.instructor.hidden_feedback import SubmittedText
from autograder.instructor.intake import Submission, cell_source, learner_cells, read_cells
from autograder.instructor.results import CaseGrade, ExerciseGrade, Status, SubmissionGrade, graded_exercises, ungraded
from autograder.learner import forbidden, registry, wire
from autograder.learner.check import explanation_lines, left_unwritten, report
from autograder.learner.compare import changed_inputs
from autograder.learner.judge import (CaseResult, Outcome, fold_repeated_exception, judge, name_the_mistake,
                                     warning_notes)
from autograder.learner.protocol import MALFORMED, CaseRecord, Event, Malformed

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


def _case_lines(exercise: registry.Exercise,
                lifted: frozenset[str] = frozenset()) -> tuple[list[tuple[bool, dict]], dict]:
    """Each case of `exercise` as the sandbox receives it (`protocol.case_line`), with whether it is hidden, and
    the case inputs kept here. The exercise's `forbids` go along unless the instructor `lifted` its rule."""
    uses = {name: reference_code(exercise.reference.__globals__[name]) for name in exercise.uses}
    forbids = list(exercise.forbids_in_force(lifted))
    lines, inputs = [], {}
    for case in exercise.cases:
        args = case.make_args()
        inputs[case.name] = args
        lines.append((case.hidden, {"exercise": exercise.id, "name": exercise.name, "driver": exercise.call.__name__,
                                    "uses": uses, "forbids": forbids, "case": case.name, "args": wire.encode(args)}))
    return lines, inputs



def in_sandbox_order(lines: list[list[tuple[bool, dict]]]) -> list[dict]:
    """The cases of a stage in the order the sandbox gets them: every exercise's visible cases, then every
    hidden one, so that no hidden input is in the learner's process while a case whose text is shown runs."""
    return [line for hidden in (False, True) for exercise in lines for is_hidden, line in exercise
            if is_hidden == hidden]


@lru_cache(maxsize=None)
def reference_code(reference) -> str:
    """A reference an exercise `uses`, as the sandbox gets it: its compiled code without docstrings, never its
    source (base64 of `marshal`, which the sandbox's Python, the grader's own, loads)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(reference)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body and \
                isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
                isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    code = compile(ast.fix_missing_locations(tree), "<reference>", "exec")
    return base64.b64encode(marshal.dumps(code)).decode()


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

    def run_stage(self, cases: list[dict]) -> Sandboxed:
        """Run the `cases` (`protocol.case_line`s, in the order to send them) on the learner's code, in a fresh
        sandbox after a case or a cell stops one, and keep each case's records as the sandbox's channel
        took them: only those written while that case was the one out (`sandbox.Channel`)."""
        keys = [(case["exercise"], case["case"]) for case in cases]
        result = Sandboxed()
        for _ in range(MAX_RESTARTS):
            pending = [case for case, key in zip(cases, keys) if key not in result.records and key not in result.decided]
            if not pending:
                break
            run = sandbox.run({"cells": self.cells, "skip_cells": sorted(self.skip), "cases": pending},
                              self.bundle, self.limits, self.hide)
            result.isolated &= run.isolated
            result.records.update({key: run.case_ends[key] for key in run.sent if key in run.case_ends})
            if len(run.sent) == len(pending) and all(key in run.case_ends for key in run.sent):
                break
            if not run.events:  # the sandbox never reached the learner's code: the grader's fault, not theirs
                result.failure = f"the sandbox could not start ({run.ending()}): {' '.join(run.log[-3:])}"
                break
            if not self._after_stop(run, keys, result):
                break
        return result

    def _after_stop(self, run: sandbox.Run, keys: list, result: Sandboxed) -> bool:
        """Decide what `run`, which stopped before its last case ended, stopped on, and whether to start another
        sandbox for what is left: the case that was out (it and the later cases of its exercise fail), else
        the cell that was running (skipped from now on), else nothing known, and every case left is a
        malformed result."""
        if run.sent and run.sent[-1] not in run.case_ends:
            out = run.sent[-1]
            cause = "time limit" if run.timed_out else "crash"
            result.decided[out] = NotJudged(f"your code {run.ending()} on this case", cause)
            for later in keys[keys.index(out) + 1:]:
                if later[0] == out[0]:
                    result.decided[later] = NotJudged(f"not run: an earlier case of this exercise {run.ending()}", cause)
            return True
        if run.sent:  # it stopped between two cases: go on with the next
            return True
        last = run.events[-1]
        index = last.get("index")
        if last.get("event") in (Event.CELL_START, Event.CELL_END) and type(index) is int and index in self.runnable():
            self.skip.add(index)
            self.notes.append(f"cell {index} was skipped: it {run.ending()}")
            return True
        for key in keys:
            if key not in result.records:
                result.decided.setdefault(key, NotJudged(MALFORMED, "malformed result"))
        return False


def _outcome(records: list[dict], inputs: dict, hidden: bool, submitted: SubmittedText,
             forbids: tuple[str, ...] = ()) -> Outcome | NotJudged:
    """The outcome a case's one record describes, read as untrusted data: anything but exactly one record in
    the form the sandbox writes is a malformed result. A hidden case's outcome shows only what
    `hidden_feedback` vouches for, never an exception's message or a warning's text; a forbidden call is
    taken only when it names one of the case's `forbids` (or the watch switched off)."""
    if len(records) != 1:
        return NotJudged("not run: the grading stopped before this case" if not records else MALFORMED,
                         "" if not records else "malformed result")
    try:
        outcome = _read_record(records[0], inputs, hidden, submitted)
    except Malformed:
        return NotJudged(MALFORMED, "malformed result")
    if outcome.forbidden and (not forbids or outcome.forbidden not in (*forbids, forbidden.SWITCHED_OFF)):
        return NotJudged(MALFORMED, "malformed result")
    return outcome


def _read_record(event: dict, inputs: dict, hidden: bool, submitted: SubmittedText) -> Outcome:
    """The outcome of the case-end `event`, read as a `CaseRecord`; `Malformed` when it is not one."""
    record = CaseRecord.read(event)
    outcome = _described(record, inputs, hidden, submitted)
    outcome.forbidden = record.forbidden
    return outcome


def _described(record: CaseRecord, inputs: dict, hidden: bool, submitted: SubmittedText) -> Outcome:
    if record.missing:
        return Outcome(trace=["NameError: no function or class of this name is defined "
                              "(was its cell deleted or renamed?)"])
    if record.not_written:
        return Outcome(not_written=True)
    if hidden:
        notes = warning_notes(list(dict.fromkeys(map(hidden_feedback.warning_category, record.warnings))))
    else:
        notes = warning_notes(record.warnings)
    if record.exception and hidden:
        trace = hidden_feedback.frames(record.trace, submitted)
        return Outcome(trace=trace + [hidden_feedback.exception_kind(record.exception)], notes=notes)
    if record.exception:
        return Outcome(trace=record.trace + record.message, notes=notes)
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


def grade_submission(submission: Submission, student: str, chapter: str, bundle: Path, hide: list[Path],
                     limits: sandbox.Limits = sandbox.Limits(), lifted: frozenset[str] = frozenset()) -> SubmissionGrade:
    """Grade the notebook `submission` holds (`intake.take` read it from nbgrader's
    submitted/<student>/<chapter>/); a refused one gets its status and reason. `lifted` names the exercises
    whose calls the instructor allowed (their `forbids` are not watched).

    Each grading stage (`grading_stages`) runs in sandboxes of its own, started only after the earlier
    stages' cases are decided here."""
    start = time.monotonic()
    notes, sha = list(submission.notes), submission.sha256
    if submission.refusal:
        return ungraded(student, chapter, *submission.refusal, notes, sha)
    try:
        cells = read_cells(submission.data)
    except ValueError as error:
        return ungraded(student, chapter, Status.UNREADABLE, str(error), notes, sha)
    run_cells, layout_notes = learner_cells(cells, chapter)
    skipped = demos.cells_to_skip(run_cells, chapter, exercise_names(chapter))
    notebook = Notebook([cell for cell in run_cells if cell["index"] not in skipped], bundle, limits, hide)
    submitted = SubmittedText.of([cell["source"] for cell in run_cells])
    grades, isolated = {}, True
    for stage in grading_stages(graded_exercises(chapter)):
        lines, inputs = zip(*(_case_lines(e, lifted) for e in stage))
        sandboxed = notebook.run_stage(in_sandbox_order(list(lines)))
        if sandboxed.failure:
            return ungraded(student, chapter, Status.GRADER_ERROR, sandboxed.failure, notes + notebook.notes, sha)
        isolated &= sandboxed.isolated
        grades.update({e.id: _grade_exercise(e, sandboxed, case_inputs, submitted, e.forbids_in_force(lifted))
                       for e, case_inputs in zip(stage, inputs)})
    exercises = [grades[e.id] for e in graded_exercises(chapter)]
    return SubmissionGrade(student, chapter, Status.GRADED, "", exercises, notes + notebook.notes + layout_notes,
                           isolated, round(time.monotonic() - start, 2), sha)


def _grade_exercise(exercise: registry.Exercise, sandboxed: Sandboxed, inputs: dict,
                    submitted: SubmittedText, forbids: tuple[str, ...] = ()) -> ExerciseGrade:
    """Judge each case of `exercise` here, as the inline check does, and explain the score."""
    results: list[CaseResult] = []
    causes: list[str] = []
    for case in exercise.cases:
        key = (exercise.id, case.name)
        outcome = sandboxed.decided.get(key) or _outcome(sandboxed.records.get(key, []), inputs[case.name],
                                                         case.hidden, submitted, forbids)
        if isinstance(outcome, NotJudged):
            causes.append(outcome.cause)
            results.append(CaseResult(case, False, [outcome.why]))
            continue
        if outcome.forbidden:
            causes.append(forbidden.cause(outcome.forbidden))
        else:
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
