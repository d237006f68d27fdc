"""Grade one submitted notebook: run it in the sandbox, judge its outputs here, explain each score.

The learner's code runs only in the sandbox, which reports raw outputs; the pass/fail decision is
made in this process, by the same `judge` as the inline check, against references the sandbox
cannot see. The notebook's own test cells are never run (a learner may have edited them), and
points come from the registry, never from the notebook's metadata.

A submission that cannot be graded (no notebook, not valid JSON) still gets a result: its status
and reason say why, and every exercise scores 0 with that reason. A cell that loops forever or
kills the process is skipped on a fresh start; an exercise case that does so fails alone, and the
rest of the notebook is graded.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder import notebooks, registry, sandbox, wire
from autograder.check import CaseResult, Outcome, fold_repeated_exception, judge, name_the_mistake, report
from autograder.compare import changed_inputs

MAX_RESTARTS = 12


@dataclass
class ExerciseGrade:
    id: str
    points: int
    score: int
    cases_passed: int
    cases: int
    feedback: str  # for the learner: which cases failed and why, never a hidden case's values
    mistakes: list[str] = field(default_factory=list)


@dataclass
class SubmissionGrade:
    student: str
    chapter: str
    status: str  # "graded", or why it could not be: "no notebook", "unreadable notebook"
    reason: str
    exercises: list[ExerciseGrade]
    notes: list[str]
    isolated: bool
    seconds: float
    notebook_sha256: str = ""

    @property
    def score(self) -> int:
        return sum(e.score for e in self.exercises)

    @property
    def max_score(self) -> int:
        return sum(e.points for e in self.exercises)

    def to_json(self) -> dict:
        return {**asdict(self), "score": self.score, "max_score": self.max_score}

    @staticmethod
    def from_json(data: dict) -> "SubmissionGrade":
        fields = {k: v for k, v in data.items() if k not in ("score", "max_score")}
        fields["exercises"] = [ExerciseGrade(**e) for e in fields["exercises"]]
        return SubmissionGrade(**fields)


def graded_exercises(chapter: str) -> list[registry.Exercise]:
    return [e for e in registry.all_exercises() if e.chapter == chapter and e.points > 0]


def ungraded(student, chapter, status, reason, notes=(), sha="") -> SubmissionGrade:
    exercises = [ExerciseGrade(e.id, e.points, 0, 0, len(e.cases), f"not graded: {reason}")
                 for e in graded_exercises(chapter)]
    return SubmissionGrade(student, chapter, status, reason, exercises, list(notes), False, 0.0, sha)


def find_notebook(folder: Path, chapter: str) -> tuple[Path | None, list[str]]:
    """The submitted notebook in `folder`, with notes about anything unusual there."""
    expected = notebooks.chapter_notebook(chapter).name
    if (folder / expected).is_file():
        others = [p.name for p in folder.iterdir() if p.name != expected]
        return folder / expected, [f"extra files ignored: {', '.join(sorted(others)[:5])}"] if others else []
    candidates = sorted(folder.glob("*.ipynb")) if folder.is_dir() else []
    if len(candidates) == 1:
        return candidates[0], [f"the notebook was renamed to {candidates[0].name}; graded it anyway"]
    return None, []


def read_cells(path: Path) -> list[dict]:
    """The notebook's cells as plain dicts; ValueError with a readable reason if it is not a notebook."""
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the notebook is not valid JSON ({error})") from error
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise ValueError("the file has no list of cells: it is not a Jupyter notebook")
    return cells


def _source(cell) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def learner_cells(cells: list[dict], chapter: str) -> tuple[list[dict], list[str]]:
    """The code cells to run (every code cell but the graded test cells) and notes on the layout."""
    test_ids = {f"{e.grade_id}-test" for e in graded_exercises(chapter)}
    notes, seen, run = [], {}, []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "code":
            continue
        nbgrader = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell.get("metadata"), dict) else {}
        grade_id = nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None
        if grade_id:
            seen[grade_id] = seen.get(grade_id, 0) + 1
        if grade_id in test_ids or (isinstance(nbgrader, dict) and nbgrader.get("grade") and not nbgrader.get("solution")):
            continue
        run.append({"index": index, "source": _source(cell)})
    for exercise in graded_exercises(chapter):
        count = seen.get(exercise.grade_id, 0)
        if count == 0:
            notes.append(f"the solution cell of {exercise.id} is missing; graded whatever defines {exercise.name}")
        elif count > 1:
            notes.append(f"the solution cell of {exercise.id} appears {count} times; the last definition counts")
    return run, notes


def _job_exercise(exercise: registry.Exercise) -> tuple[dict, dict]:
    """The sandbox's part of an exercise (its name, driver, encoded inputs) and the inputs kept here."""
    inputs, cases = {}, []
    for case in exercise.cases:
        args = case.make_args()
        inputs[case.name] = args
        cases.append({"name": case.name, "args": wire.encode(args)})
    uses = {name: inspect.getsource(exercise.reference.__globals__[name]) for name in exercise.uses}
    return {"id": exercise.id, "name": exercise.name, "driver": exercise.call.__name__, "uses": uses,
            "cases": cases}, inputs


def _outcome(record: dict, inputs: dict) -> Outcome:
    if record.get("missing"):
        return Outcome(trace=["NameError: no function or class of this name is defined "
                              "(was its cell deleted or renamed?)"])
    if "stopped" in record:
        return Outcome(stopped=record["stopped"])
    if record.get("not_written"):
        return Outcome(not_written=True)
    if "trace" in record:
        return Outcome(trace=record["trace"] or ["the code raised an exception"])
    if "unsupported" in record:
        return Outcome(trace=[record["unsupported"]])
    notes = [f"note: your code warned {w}" for w in record.get("warnings", [])]
    try:
        got, after = wire.decode(record["output"]), wire.decode(record["args_after"])
    except (KeyError, ValueError, TypeError):
        return Outcome(trace=["the grader could not read what your function returned"])
    return Outcome(got, changed=changed_inputs(inputs, after), notes=notes)


def grade_submission(folder: Path, student: str, chapter: str, bundle: Path, hide: list[Path],
                     limits: sandbox.Limits = sandbox.Limits()) -> SubmissionGrade:
    """Grade the notebook in `folder` (nbgrader's submitted/<student>/<chapter>/)."""
    start = time.monotonic()
    path, notes = find_notebook(folder, chapter)
    if path is None:
        return ungraded(student, chapter, "no notebook", f"no {notebooks.chapter_notebook(chapter).name} "
                        "in the submission folder")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        cells = read_cells(path)
    except ValueError as error:
        return ungraded(student, chapter, "unreadable notebook", str(error), notes, sha)
    run_cells, layout_notes = learner_cells(cells, chapter)
    exercises = graded_exercises(chapter)
    jobs, inputs = zip(*(_job_exercise(e) for e in exercises)) if exercises else ((), ())
    records, skip, isolated = {}, set(), True
    position = [0, 0]  # the next (exercise, case) to run
    for _ in range(MAX_RESTARTS):
        run = sandbox.run({"cells": run_cells, "skip_cells": sorted(skip), "exercises": list(jobs),
                           "start": position}, bundle, limits, hide)
        isolated &= run.isolated
        for event in run.events:
            if event["event"] == "case_end":
                records.setdefault((event.get("exercise"), event.get("case")), event)
        if run.finished:
            break
        if not run.events:  # the sandbox never reached the learner's code: the grader's fault, not theirs
            return ungraded(student, chapter, "grader error", f"the sandbox could not start ({run.ending()}): "
                            f"{' '.join(run.log[-3:])}", notes, sha)
        last = run.events[-1]
        if last["event"] in ("cell_start", "cell_end"):
            skip.add(last["index"])
            notes.append(f"cell {last['index']} was skipped: it {run.ending()}")
        elif last["event"] == "case_end":
            position = _after_case(jobs, last["exercise"], last["case"])
        elif last["event"] == "case_start":
            records[(last["exercise"], last["case"])] = {"stopped": f"your code {run.ending()} on this case"}
            for case in _cases_after(jobs, last["exercise"], last["case"]):
                records[(last["exercise"], case)] = {"skipped": "not run: an earlier case of this exercise "
                                                                f"{run.ending()}"}
            position = _next_exercise(jobs, last["exercise"])
        if position is None:
            break
    graded = [_grade_exercise(e, records, case_inputs) for e, case_inputs in zip(exercises, inputs)]
    return SubmissionGrade(student, chapter, "graded", "", graded, notes + layout_notes, isolated,
                           round(time.monotonic() - start, 2), sha)


def _cases_after(jobs, exercise_id, case_name) -> list[str]:
    names = next(job for job in jobs if job["id"] == exercise_id)["cases"]
    names = [case["name"] for case in names]
    return names[names.index(case_name) + 1:]


def _after_case(jobs, exercise_id, case_name):
    """The position right after the given case, or None after the last case of the last exercise."""
    rest = _cases_after(jobs, exercise_id, case_name)
    if rest:
        exercise = [e for e, job in enumerate(jobs) if job["id"] == exercise_id][0]
        return [exercise, len(jobs[exercise]["cases"]) - len(rest)]
    return _next_exercise(jobs, exercise_id)


def _next_exercise(jobs, exercise_id):
    """The position [exercise, 0] of the exercise after `exercise_id`, or None after the last one."""
    following = [e for e, job in enumerate(jobs) if job["id"] == exercise_id][0] + 1
    return [following, 0] if following < len(jobs) else None


def _grade_exercise(exercise: registry.Exercise, records: dict, inputs: dict) -> ExerciseGrade:
    results: list[CaseResult] = []
    for case in exercise.cases:
        record = records.get((exercise.id, case.name))
        if record is None or "skipped" in record:
            why = record["skipped"] if record else "not run: the grading stopped before this case"
            results.append(CaseResult(case, False, [why]))
            continue
        results.append(fold_repeated_exception(
            results, judge(exercise, case, _outcome(record, inputs[case.name]), inputs[case.name])))
    name_the_mistake(exercise, results)
    passed = sum(r.passed for r in results)
    score = exercise.points if passed == len(exercise.cases) else 0
    mistakes = sorted({r.mistake.name for r in results if r.mistake})
    return ExerciseGrade(exercise.id, exercise.points, score, passed, len(exercise.cases),
                         report(exercise, results), mistakes)
