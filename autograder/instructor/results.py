"""A submission's grade as data, and where a class's grades are kept.

`SubmissionGrade` holds a submission's `Status`, each exercise's `ExerciseGrade` and each case's
`CaseGrade` as the learner may see it; reports, exports and the gradebook are written from these
alone. `ResultStore` keeps one JSON file per submission, each written whole (aside, then renamed),
so an interruption never leaves half a result, and gives a stored grade back only while the
notebook it graded is unchanged.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path

from autograder.learner import registry
from autograder.learner.check import case_label


@dataclass(frozen=True)
class CaseGrade:
    """One case of a graded exercise, as the learner may see it."""

    name: str
    hidden: bool
    passed: bool
    lines: list[str]  # the explanation under the case in the feedback; a hidden case's are free of its values

    @property
    def label(self) -> str:
        """The case as the feedback names it, "(hidden)" included."""
        return case_label(self.name, self.hidden)


@dataclass
class ExerciseGrade:
    id: str
    points: int
    score: int
    cases_passed: int
    cases: int
    feedback: str  # for the learner: which cases failed and why, never a hidden case's values
    mistakes: list[str] = field(default_factory=list)
    reason: str = ""  # for the export: what happened when not full marks ("time limit; 2 of 5 cases failed")
    case_grades: list[CaseGrade] = field(default_factory=list)  # the feedback's cases, as data; none when not graded
    not_written: bool = False  # the feedback says the exercise is not written yet (the untouched stub)


class Status(StrEnum):
    """Whether a submission was graded, and if not, why; the values are the words of the export, the stored
    results and the summary."""

    GRADED = "graded"
    NO_NOTEBOOK = "no notebook"  # no notebook file in the submission folder
    UNREADABLE = "unreadable notebook"  # a file that is not a notebook nbformat accepts
    GRADER_ERROR = "grader error"  # the grader's fault, not the learner's: flagged for manual grading


@dataclass
class SubmissionGrade:
    student: str
    chapter: str
    status: Status
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
        """The grade `to_json` stored; KeyError for one stored before exercises kept their cases as data, so
        that it is graded again."""
        fields = {k: v for k, v in data.items() if k not in ("score", "max_score")}
        fields["exercises"] = [ExerciseGrade(**{**e, "case_grades": [CaseGrade(**c) for c in e["case_grades"]]})
                               for e in fields["exercises"]]
        fields["status"] = Status(fields["status"])
        return SubmissionGrade(**fields)


def graded_exercises(chapter: str) -> list[registry.Exercise]:
    return [e for e in registry.all_exercises() if e.chapter == chapter and e.points > 0]


def ungraded(student, chapter, status: Status, reason, notes=(), sha="") -> SubmissionGrade:
    exercises = [ExerciseGrade(e.id, e.points, 0, 0, len(e.cases), f"not graded: {reason}", [], f"not graded: {reason}")
                 for e in graded_exercises(chapter)]
    return SubmissionGrade(student, chapter, status, reason, exercises, list(notes), False, 0.0, sha)


class ResultStore:
    """One stored result per submission: `folder/<student>.json`."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, student: str) -> Path:
        return self.folder / f"{student}.json"

    def put(self, grade: SubmissionGrade) -> None:
        """Store `grade`, replacing the student's earlier one in one step."""
        path = self.path(grade.student)
        path.parent.mkdir(parents=True, exist_ok=True)
        aside = path.with_suffix(".json.partial")
        aside.write_text(json.dumps(grade.to_json(), indent=1))
        os.replace(aside, path)

    def get(self, student: str, notebook_sha256: str) -> SubmissionGrade | None:
        """The student's stored grade if it graded the notebook whose SHA-256 this is; None when there is none,
        it graded another notebook, or it cannot be read (stored by an older grader): then grade again."""
        path = self.path(student)
        if not path.exists():
            return None
        try:
            grade = SubmissionGrade.from_json(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError):
            return None
        return grade if grade.notebook_sha256 == notebook_sha256 else None
