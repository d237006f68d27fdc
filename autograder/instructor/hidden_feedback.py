"""What the feedback shows of a hidden case that raised or warned: decided here, never copied from learner text.

A hidden case's inputs are in the learner's process while it runs, so whatever text that process
reports for it can carry them: an exception's message (never shown), the name of an exception class
made on the fly, a function named after an input, a line put into `linecache`, a warning's category.
So a hidden case's record is shown only through what the grader can vouch for:

- an exception's type by its name, when that names an exception class of Python or of a library the
  grader has imported itself, else "an exception of a class your code defines";
- a warning's category likewise, else "a warning of a class your code defines";
- a traceback's frames only where they name a line of the submitted notebook: "line N of your cell, in
  NAME:" with NAME an identifier the submission's cells contain, and the code line under it only when
  the submission's cells hold that line; anything else is left out.

A learner whose code raises on a hidden case still sees the kind of error and the lines of their own
code it passed through. What their code could still choose is which of its own lines and names to
show: a few bits per case, which is what any pass or fail of a hidden case tells anyway.
"""
from __future__ import annotations

import builtins
import re
import sys
from dataclasses import dataclass

FRAME = re.compile(r"line (\d{1,6}) of (.{1,200}), in (.{1,200}):")
LEFT_OUT = re.compile(r"\.\.\. \d{1,9} lines left out \.\.\.")
SCOPES = frozenset({"<module>", "<lambda>", "<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"})
IDENTIFIER = re.compile(r"[^\W\d]\w*")
OWN_EXCEPTION = "an exception of a class your code defines"
OWN_WARNING = "a warning of a class your code defines"


@dataclass(frozen=True)
class SubmittedText:
    """The identifiers and the code lines (stripped) of a submission's code cells, as the grader read them."""

    identifiers: frozenset[str]
    lines: frozenset[str]

    @classmethod
    def of(cls, sources: list[str]) -> SubmittedText:
        text = "\n".join(sources)
        return cls(frozenset(IDENTIFIER.findall(text)), frozenset(line.strip() for line in text.splitlines()))


def library_class(name: str, base: type) -> bool:
    """Whether `name` ("ValueError", "numpy.linalg.LinAlgError") names a subclass of `base` in builtins or in a
    module the grader has imported; nothing is imported or run to find out."""
    module, _, attribute = name.rpartition(".")
    owner = sys.modules.get(module) if module else builtins
    if owner is None or not attribute.isidentifier():
        return False
    value = getattr(owner, attribute, None) if attribute in getattr(owner, "__dict__", {}) else None
    return isinstance(value, type) and issubclass(value, base)


def exception_kind(name: str) -> str:
    return name if library_class(name, BaseException) else OWN_EXCEPTION


def warning_category(text: str) -> str:
    """The category of a "Category: message" warning, as a hidden case's feedback names it."""
    category = text.split(":", 1)[0]
    return category if library_class(category, Warning) else OWN_WARNING


def frames(trace: list[str], submitted: SubmittedText) -> list[str]:
    """The lines of a hidden case's traceback that the submission vouches for (see the module docstring)."""
    shown, header_shown = [], False
    for line in trace:
        if (frame := FRAME.fullmatch(line)) is not None:
            number, where, name = frame.groups()
            header_shown = where == "your cell" and (name in SCOPES or name in submitted.identifiers)
            if header_shown:
                shown.append(line)
        elif line.startswith("    ") and header_shown and line.strip() in submitted.lines:
            shown.append(line)
        elif LEFT_OUT.fullmatch(line):
            shown.append(line)
    return shown
