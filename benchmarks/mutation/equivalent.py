"""Surviving mutants of the grading code that are equivalent: no test can fail them, and why.

Keyed by (module, the committed line's text, stripped, the change as `mutants.changes` describes it), so that an
entry follows its line when lines above it move, and lapses when the line itself changes.
"""
EQUIVALENT: dict[tuple[str, str, str], str] = {
}
