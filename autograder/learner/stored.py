"""Exercises rebuilt from stored cases: what `check()` uses in a learner's bundle.

A graded class's learners get no references and no hidden cases. Their bundle holds, per chapter,
the visible cases' inputs, the reference's outputs on them and each known mistake's outputs, so
that `check()` says the same things as with the full package. `bundle.py` writes these files.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.learner import drivers, wire
from autograder.learner.registry import Case, Exercise, Mistake, MistakeRun

CASES_DIR = Path(__file__).resolve().parent / "stored_cases"


@dataclass(frozen=True)
class StoredExercise(Exercise):
    expected: dict = field(default_factory=dict)  # case name -> encoded reference output
    mistaken: dict = field(default_factory=dict)  # (mistake name, case name) -> a MistakeRun, its output encoded

    def expected_output(self, case: Case):
        return wire.decode(self.expected[case.name])

    def mistake_output(self, mistake: Mistake, case: Case) -> MistakeRun:
        stored = self.mistaken.get((mistake.name, case.name))
        if stored is None:
            raise LookupError(f"no stored output of {mistake.name!r} on {case.name!r}")
        if stored.get("raised"):
            return MistakeRun(raised=stored["raised"])
        return MistakeRun(wire.decode(stored["output"]), tuple(stored["changed"]))


def to_json(exercise: Exercise, lifted: frozenset[str] = frozenset()) -> dict:
    """The stored form of an exercise's visible cases (never the hidden ones, never code), with what it asks
    to write without unless the instructor `lifted` its rule."""
    cases = []
    for case in exercise.visible_cases():
        mistakes = {}
        for mistake in exercise.mistakes:
            run = exercise.mistake_output(mistake, case)
            mistakes[mistake.name] = {"raised": run.raised} if run.raised else \
                {"output": wire.encode(run.output), "changed": list(run.changed)}
        cases.append({"name": case.name, "args": wire.encode(case.make_args()),
                      "expected": wire.encode(exercise.expected_output(case)), "mistakes": mistakes})
    return {"id": exercise.id, "points": exercise.points, "driver": exercise.call.__name__,
            "outputs": list(exercise.outputs) if exercise.outputs else None, "rtol": exercise.rtol,
            "atol": exercise.atol, "strict_dtype": exercise.strict_dtype,
            "forbids": list(exercise.forbids_in_force(lifted)),
            "mistakes": [{"name": m.name, "hint": m.hint} for m in exercise.mistakes], "cases": cases}


def from_json(data: dict) -> StoredExercise:
    def case(stored):
        encoded = stored["args"]
        return Case(stored["name"], lambda: wire.decode(encoded))

    return StoredExercise(
        id=data["id"], points=data["points"], reference=None, cases=tuple(case(c) for c in data["cases"]),
        mistakes=tuple(Mistake(m["name"], m["hint"], None) for m in data["mistakes"]), alternatives=(),
        outputs=tuple(data["outputs"]) if data["outputs"] else None, rtol=data["rtol"], atol=data["atol"],
        strict_dtype=data["strict_dtype"], call=drivers.DRIVERS[data["driver"]], forbids=tuple(data["forbids"]),
        expected={c["name"]: c["expected"] for c in data["cases"]},
        mistaken={(name, c["name"]): stored for c in data["cases"] for name, stored in c["mistakes"].items()})


def chapters(directory: Path = CASES_DIR) -> list[str]:
    """The chapters whose visible cases are stored here: ["ch01", "ch02", ...]."""
    return sorted(path.stem for path in directory.glob("ch*.json"))


def load(directory: Path = CASES_DIR, chapter: str | None = None) -> list[StoredExercise]:
    """The stored exercises of `chapter`, or of every chapter when None."""
    exercises = []
    for name in chapters(directory) if chapter is None else [chapter]:
        exercises += [from_json(item) for item in json.loads((directory / f"{name}.json").read_text())]
    return exercises
