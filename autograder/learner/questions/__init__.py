"""Concept questions: a few per chapter, answered in the notebook with instant feedback.

    >>> from autograder import answer
    >>> answer("ch02.which_lr_diverges", "")      # shows the question and its choices
    >>> answer("ch02.which_lr_diverges", "b")     # says whether b is right, and why

A question is declared once, in `autograder/learner/questions/chNN.py`: its prompt, its choices, the
right one, and for every choice an explanation, so that a wrong choice is answered like a known
mistake in an exercise (what that choice gets wrong), and the right one with the reason it is
right. The notebook cell only calls `answer`. Questions are practice, not graded; the tests check
every answer key against a computation wherever one can decide it.
"""
from __future__ import annotations

import importlib
import pkgutil
import textwrap
from dataclasses import dataclass

from autograder.learner.registry import ID_PATTERN

WIDTH = 96


@dataclass(frozen=True)
class Question:
    """A multiple-choice question. `choices` maps a letter to its text; `why` maps every letter to
    the explanation shown when it is chosen; `right` is the right letter."""

    id: str
    prompt: str
    choices: dict[str, str]
    right: str
    why: dict[str, str]

    def __post_init__(self):
        if not ID_PATTERN.match(self.id):
            raise ValueError(f"question id {self.id!r} is not of the form 'chNN.name'")
        if self.right not in self.choices:
            raise ValueError(f"{self.id}: the right choice {self.right!r} is not among {sorted(self.choices)}")
        if self.why.keys() != self.choices.keys():
            raise ValueError(f"{self.id}: every choice needs an explanation, and only the choices")

    @property
    def chapter(self) -> str:
        return self.id.split(".")[0]


_QUESTIONS: dict[str, Question] = {}


def register(*questions: Question) -> None:
    for question in questions:
        if question.id in _QUESTIONS:
            raise ValueError(f"question {question.id} is registered twice")
        _QUESTIONS[question.id] = question


def all_questions() -> list[Question]:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    return sorted(_QUESTIONS.values(), key=lambda question: question.id)


def get(question_id: str) -> Question:
    questions = {question.id: question for question in all_questions()}
    if question_id not in questions:
        raise KeyError(f"No question is called {question_id!r}; this chapter's are "
                       f"{', '.join(q for q in questions if q.startswith(str(question_id)[:5])) or 'none'}.")
    return questions[question_id]


def _wrap(text: str, indent: str = "", hanging: str = "   ") -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + hanging)


def feedback(question: Question, choice) -> tuple[bool, list[str]]:
    """(whether `choice` is right, the lines to show): the question with its choices, then the verdict."""
    lines = _wrap(question.prompt, hanging="") + [line for letter, text in question.choices.items()
                                      for line in _wrap(f"{letter}) {text}", "  ")]
    letter = str(choice).strip().lower().rstrip(")")
    if letter == "":
        return False, lines + ["Put your choice between the quotes and run the cell again."]
    if letter not in question.choices:
        return False, lines + [f"{choice!r} is not one of the choices: answer with one of "
                               f"{', '.join(repr(c) for c in question.choices)}."]
    verdict = "✓ right" if letter == question.right else "✗ not quite"
    return letter == question.right, lines + _wrap(f"{verdict}, {letter}: {question.why[letter]}")


def answer(question_id: str, choice) -> None:
    """Print the question, its choices and what `choice` ("" for none yet) says about it."""
    print("\n".join(feedback(get(question_id), choice)[1]))
