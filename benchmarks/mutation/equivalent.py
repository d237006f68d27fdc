"""Surviving mutants of the grading code that are equivalent: no test can fail them, and why.

Keyed by (module, the committed line's text, stripped, the change as `mutants.changes` describes it), so that an
entry follows its line when lines above it move, and lapses when the line itself changes.
"""
EQUIVALENT: dict[tuple[str, str, str], str] = {
    ("learner/check.py", 'return f"raised {result.raised.split(\':\', 1)[0]}{\' (hidden)\' if result.case.hidden else \'\'}"', "'1' -> '2'"):
        "split(':', 2)[0] is split(':', 1)[0]: only the text before the first colon is kept",
    ("instructor/results.py", "from pathlib import Path", "'from pathlib import Path' -> 'pass'"):
        "Path appears only in annotations, which `from __future__ import annotations` never evaluates",
    ("instructor/results.py", "@dataclass(frozen=True)", "'True' -> 'False'"):
        "CaseGrade not frozen: nothing assigns to one or hashes one",
    ("learner/forbidden.py", 'elif event == "c_call":', "'==' -> '!='"):
        "a builtin's c_return and c_exception events carry the builtin as its c_call does: with != the watch sees "
        "it at its return instead",
    ("learner/forbidden.py", "for split in range(len(parts), 0, -1):", "'0' -> '-1'"):
        "the top package is in sys.modules, so importing it at split 1 succeeds and split 0 is never reached",
}
