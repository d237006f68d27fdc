"""The grading sandbox's protocol: the events it reports, the cases it is sent, and the record of one case.

The sandbox (`in_sandbox`) writes one JSON line per event to a pipe the grader reads while it runs. Each
line is an object with the key "event", one of `Event`'s values. Its job comes the other way, one line
at a time: first the cells (`first_line`), then one case per `Event.CASE_WANTED` (`case_line`), each
written by the grader only once the case before it has ended, and `DONE_LINE` after the last. A case's
end carries a `CaseRecord`: what `judge.run_one_case` saw, encoded by `wire`.

Whatever the sandbox wrote is untrusted data: learner code runs in that process and can write any
line. `CaseRecord.read` takes a record only in the exact form `CaseRecord.event` writes, bounded in
length, its text `representable`; anything else raises `Malformed`, which fails that case with the
course's words (`MALFORMED`), never the learner's. Values inside a record are decoded by `wire.decode`,
which never executes anything and raises only `wire.DecodeError`.
"""
from __future__ import annotations

import json
import re
import traceback
from dataclasses import dataclass, field, fields
from enum import StrEnum

from autograder.learner import wire
from autograder.learner.judge import MAX_WARNINGS, Ran, learner_traceback


class Event(StrEnum):
    """The kinds of event the sandbox reports, one JSON line each under the key "event"; the values are the
    strings on the wire."""

    CELL_START = "cell_start"  # a notebook cell began: {"index"}
    CELL_END = "cell_end"  # ... and ended: {"index", "error"}
    CASE_WANTED = "case_wanted"  # ready for the next case, which the grader sends only now: {}
    CASE_START = "case_start"  # an exercise's case began: {"exercise", "case"}
    CASE_END = "case_end"  # ... and ended: {"exercise", "case"} and the fields of its CaseRecord
    DONE = "done"  # everything ran: {"output"}, the learner's printed output, bounded


MALFORMED = "the sandbox returned a malformed result"
MAX_LINES = 40  # a longer traceback keeps the first and last half of these
MAX_LINE_CHARS = 300
EXCEPTION_KIND = re.compile(r"[A-Za-z_][\w.]{0,119}")
MAX_REQUEST_BYTES = 256  # a line longer than this is not a request for a case
DONE_LINE = b'{"done": true}\n'  # the grader's answer to a request once every case was sent


def first_line(job: dict) -> bytes:
    """The job's first line: everything but its cases, which go one at a time (`case_line`)."""
    return _line({key: value for key, value in job.items() if key != "cases"})


def case_line(case: dict) -> bytes:
    """One case as the sandbox receives it: {"exercise", "name", "driver", "uses", "forbids", "case", "args"}."""
    return _line(case)


def _line(value) -> bytes:
    return (json.dumps(value) + "\n").encode()


def is_case_request(line: bytes) -> bool:
    """Whether an events line asks for the next case: read as untrusted data like every other line."""
    if len(line) > MAX_REQUEST_BYTES or Event.CASE_WANTED.encode() not in line:
        return False
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return False
    return isinstance(event, dict) and event.get("event") == Event.CASE_WANTED


class Malformed(ValueError):
    """A record that is not what the sandbox writes: forged, or cut short."""


@dataclass(frozen=True)
class CaseRecord:
    """What one case did in the sandbox; exactly one of the first five describes it, and `warnings` may come
    with any but `missing`, `forbidden` with any but `missing` and `not_written`.

    A record says nothing of whether the case passed: the grader decides that outside the sandbox."""

    missing: bool = False  # no function or class of the exercise's name was defined
    not_written: bool = False  # the call met the untouched stub (NotImplementedError)
    exception: str = ""  # the learner's code raised this, as a traceback names its type ("ValueError")
    unsupported: str = ""  # it returned a value the wire does not carry; why
    output: object = None  # it returned this, encoded by wire (with `args_after`)
    args_after: object = None  # the case's arguments after the call, encoded, to see what it changed in place
    trace: list[str] = field(default_factory=list)  # with `exception`: the frames of the learner's own code
    message: list[str] = field(default_factory=list)  # with `exception`: its message lines, left out when hidden
    warnings: list[str] = field(default_factory=list)  # "Category: message", at most MAX_WARNINGS
    forbidden: str = ""  # what of the case's "forbids" the learner's code called; the grader takes only those

    @classmethod
    def of(cls, ran: Ran, args: dict) -> CaseRecord:
        """The record of what `run_one_case` did with `args` (left as the call left them)."""
        if ran.not_written:
            return cls(not_written=True, warnings=ran.warnings)
        said = {"warnings": ran.warnings, "forbidden": ran.forbidden}
        if ran.error is not None:
            return cls(**_error_fields(ran.error), **said)
        try:
            output = wire.encode(ran.got)
        except wire.EncodeError as refused:
            return cls(unsupported=str(refused), **said)
        return cls(output=output, args_after=wire.encode(args), **said)

    def event(self) -> dict:
        """The record as a case-end event carries it: the fields that describe it, any warnings, and what
        forbidden call it made."""
        warned = {"warnings": self.warnings} if self.warnings else {}
        if self.missing:
            return {"missing": True}
        if self.not_written:
            return {"not_written": True, **warned}
        also = {**warned, "forbidden": self.forbidden} if self.forbidden else warned
        if self.exception:
            return {"exception": self.exception, "trace": self.trace, "message": self.message, **also}
        if self.unsupported:
            return {"unsupported": self.unsupported, **also}
        return {"output": self.output, "args_after": self.args_after, **also}

    @classmethod
    def read(cls, event: dict) -> CaseRecord:
        """The record a case-end event carries, checked field by field against the form `event()` writes, with
        long tracebacks and lines shortened; `Malformed` otherwise. `output` and `args_after` stay encoded."""
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in event.items() if key not in ("event", "exercise", "case")}
        _require(set(values) <= known)
        for flag in ("missing", "not_written"):
            _require(values.get(flag, True) is True)
        _require(type(values.get("unsupported", "?")) is str and values.get("unsupported") != "")
        if "unsupported" in values:
            values["unsupported"] = representable(values["unsupported"][:MAX_LINE_CHARS])
        if "exception" in values:
            _require(type(values["exception"]) is str and EXCEPTION_KIND.fullmatch(values["exception"]) is not None)
        _require(type(values.get("forbidden", "?")) is str and values.get("forbidden") != ""
                 and len(values.get("forbidden", "")) <= MAX_LINE_CHARS
                 and not ("forbidden" in values and ("missing" in values or "not_written" in values)))
        for lines in ("trace", "message", "warnings"):
            values[lines] = _lines(values.get(lines, []))
        values["warnings"] = values["warnings"][:MAX_WARNINGS]
        _require("exception" not in values or bool(values["message"]))  # a traceback always names its message
        said = [key for key in ("missing", "not_written", "exception", "unsupported", "output") if key in values]
        _require(len(said) == 1 and (said[0] != "output" or "args_after" in values))
        return cls(**values)


def _require(condition: bool) -> None:
    if not condition:
        raise Malformed(MALFORMED)


def _lines(value) -> list[str]:
    """A list of text lines, each at most MAX_LINE_CHARS, at most MAX_LINES of them (the middle left out),
    each `representable`."""
    _require(type(value) is list and all(type(line) is str for line in value))
    if len(value) > MAX_LINES:
        half = MAX_LINES // 2
        value = value[:half] + [f"... {len(value) - 2 * half} lines left out ..."] + value[-half:]
    return [representable(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " ...") for line in value]


def representable(text: str) -> str:
    """`text` with each lone surrogate written as its escape ("\\udc80"): JSON can carry one (the events a
    sandbox writes, a notebook's text), but no strict UTF-8 writer (a file, the CSV, an HTML page, the
    gradebook) can write it, so every string from a submission passes through here where it enters."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _error_fields(error: BaseException) -> dict:
    """The learner's traceback in three parts: the frames of their own code, the exception's type as a
    traceback names it, and its message lines, which the grader leaves out of a hidden case's feedback."""
    trace = learner_traceback(error)
    message = len(traceback.format_exception_only(type(error), error))
    kind = type(error).__qualname__
    if type(error).__module__ not in ("builtins", "__main__"):
        kind = f"{type(error).__module__}.{kind}"
    return {"trace": trace[:-message], "exception": kind, "message": trace[-message:]}


def case_key(event: dict) -> tuple[str, str] | None:
    """(exercise id, case name) of a case event, or None when it does not name them as strings."""
    exercise, case = event.get("exercise"), event.get("case")
    return (exercise, case) if type(exercise) is str and type(case) is str else None
