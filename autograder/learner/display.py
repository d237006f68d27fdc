"""Short, readable renderings of inputs and outputs for check messages.

Every number is written by `number`: up to 6 significant digits, more only where an expected and a
got value that differ would otherwise read the same. A 2-D array is shown as rows, one per line; a
long array, or a long row, by its first entries and `...`. `show_pair` writes an expected and a got
value in one format with the same column widths, so that their lines line up entry by entry, and
`show_table` lays out a sequence indexed by, say, a step number as one row per index.
"""
from __future__ import annotations

import sys

import numpy as np

MAX_FULL = 12  # a 1-D array with at most this many entries is shown whole ...
MAX_COLUMNS = 8  # ... and a row of a 2-D array with at most this many ...
HEAD = 6  # ... else their first HEAD entries, then "..."
MAX_ROWS = 6  # a 2-D array with at most this many rows is shown whole ...
HEAD_ROWS = 4  # ... else its first HEAD_ROWS rows, then "..."
MAX_TABLE = 16  # a table with at most this many rows is shown whole
DIGITS = 6  # significant digits of a number, unless more are needed to tell two apart ...
MAX_DIGITS = 10  # ... up to this many, for two that differ by more than ...
NOISE = 1e-7  # ... this, relatively (the checks' default tolerance: smaller differences pass anyway)
GAP = "..."


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def show(value) -> str:
    """A value shown well enough to debug with: one line, or one line per row of a 2-D array; never raises."""
    return _safely(_show, value)


def show_inline(value) -> str:
    """`show` on a single line, for a value inside a sentence or inside a tuple; never raises."""
    return _safely(lambda v: " ".join(line.strip() for line in _show(v).splitlines()), value)


def _safely(render, value) -> str:
    try:
        return render(value)
    except Exception:  # a learner's object that breaks when looked at
        return f"<a {type(value).__name__} that cannot be shown>"


def show_pair(expected, got) -> tuple[str, str]:
    """`show` of an expected and a got value, in one number format: two arrays of one shape get the same
    column widths (so that their lines line up), and both get the digits that tell their entries apart."""
    try:
        return _show_pair(expected, got)
    except Exception:
        return show(expected), show(got)


def _show_pair(expected, got) -> tuple[str, str]:
    if _is_number(expected) and _is_number(got):
        digits = _digits_apart([float(expected)], [float(got)])
        return number(expected, digits), number(got, digits)
    arrays = [_plain(value) for value in (expected, got)]
    if any(array is None for array in arrays) or arrays[0].shape != arrays[1].shape or arrays[0].ndim == 0 \
            or not all(array.dtype.kind in "biuf" for array in arrays):
        return show(expected), show(got)
    digits = _digits_apart(*(_shown_entries(array) for array in arrays))
    grids = [_grid(array, digits) for array in arrays]
    widths = _column_widths(grids[0] + grids[1])
    headers = [_header(value, array) for value, array in zip((expected, got), arrays)]
    width = max(len(header) for header in headers)
    return tuple(_lay_out(header.ljust(width), _body(grid, widths), array)
                 for header, grid, array in zip(headers, grids, arrays))


def show_table(index_name: str, expected, got, differs) -> list[str]:
    """Lines of a table with one row per index of two 1-D sequences (e.g. a schedule's value at each
    step), the rows where `differs` is True marked ✗; a long table keeps its first rows and those
    from the first difference on."""
    expected, got = np.asarray(expected), np.asarray(got)
    shown = _table_rows(len(expected), differs)
    digits = _digits_apart(*([float(values[i]) for i in shown if i is not None] for values in (expected, got)))
    rows = [[str(i), number(expected[i], digits), number(got[i], digits), "✗" if differs[i] else ""]
            if i is not None else [GAP, "", "", ""] for i in shown]
    rows.insert(0, [index_name, "expected", "got", ""])
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return ["  ".join([row[0].rjust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]), row[3]]).rstrip()
            for row in rows]


def _table_rows(n: int, differs) -> list[int | None]:
    """Which indices a table shows (None for a gap): all of them, or the first few and those from the first
    difference on."""
    if n <= MAX_TABLE:
        return list(range(n))
    first = int(np.argmax(differs)) if np.any(differs) else n
    kept = sorted({*range(HEAD_ROWS), *range(first, min(first + MAX_TABLE - HEAD_ROWS, n))})
    return _with_gaps(kept, n)


def _with_gaps(kept: list[int], n: int) -> list[int | None]:
    out = []
    for index in kept:
        if out and out[-1] != index - 1:
            out.append(None)
        out.append(index)
    return out + ([None] if kept[-1] != n - 1 else [])


def number(value, digits: int = DIGITS) -> str:
    """A number written the one way every check message writes numbers."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    value = float(value)
    if value == 0 or (np.isfinite(value) and 1e-4 <= abs(value) < 1e7):
        return np.format_float_positional(value, precision=digits, unique=True, fractional=False, trim="-")
    return f"{value:.{digits}g}"


def _digits_apart(expected: list[float], got: list[float]) -> int:
    """The fewest significant digits (from DIGITS up to MAX_DIGITS) at which the entries shown, paired in
    order, read differently wherever they differ by more than NOISE."""
    pairs = [(e, g) for e, g in zip(expected, got)
             if np.isfinite(e) and np.isfinite(g) and abs(e - g) > NOISE * max(abs(e), abs(g))]
    for digits in range(DIGITS, MAX_DIGITS):
        if all(number(e, digits) != number(g, digits) for e, g in pairs):
            return digits
    return MAX_DIGITS


def _shown_entries(array: np.ndarray) -> list[float]:
    """The entries that `show` writes out, in order (a numeric array's)."""
    rows, (kept_rows, kept_columns) = _as_rows(array), _kept_rows_and_columns(array)
    return [float(rows[i, j]) for i in kept_rows if i is not None for j in kept_columns if j is not None]


def _show(value) -> str:
    if _is_tensor(value) or isinstance(value, np.ndarray):
        array = _plain(value)
        if array.ndim == 0:
            value_text = _entry(array[()], DIGITS)
            return f"{_header(value, array)} {value_text}" if _is_tensor(value) else \
                f"{value_text} (0-d {array.dtype} array)"
        grid = _grid(array, DIGITS)
        return _lay_out(_header(value, array), _body(grid, _column_widths(grid)), array)
    if isinstance(value, np.random.Generator):
        return "numpy.random.Generator (seeded)"
    if _is_number(value):
        return number(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(show_inline(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        if len(value) > MAX_FULL:
            return f"list of {len(value)}: [" + ", ".join(show_inline(v) for v in value[:HEAD]) + ", ...]"
        return "[" + ", ".join(show_inline(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {show_inline(item)}" for key, item in value.items()) + "}"
    if value is None:
        return "None"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating))


def _plain(value) -> np.ndarray | None:
    """A tensor's or an array's values as a plain ndarray; None for anything else."""
    if _is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value).view(np.ndarray) if isinstance(value, np.ndarray) else None


def _header(value, array: np.ndarray) -> str:
    if _is_tensor(value):
        return f"tensor {str(value.dtype).replace('torch.', '')} {tuple(value.shape)} on {value.device}"
    return f"{array.dtype} array {array.shape}"


def _lay_out(header: str, body: list[str], array: np.ndarray) -> str:
    """The header, then the body on the same line if it is one line, else on lines of its own below."""
    summary = _summary(array)
    if array.ndim == 2 and array.size and len(body) == 1:
        body = ["[" + body[0] + "]"]
    if len(body) == 1:
        return f"{header} {body[0]}{summary}"
    return "\n".join([header + summary] + ["  " + line for line in body])


def _summary(array: np.ndarray) -> str:
    """' (min a, max b)' for a numeric array shown in part, so that its range is seen anyway."""
    if array.size <= MAX_FULL or array.dtype.kind not in "iuf" or not np.isfinite(array).all():
        return ""
    return f" (min {number(array.min())}, max {number(array.max())})"


def _as_rows(array: np.ndarray) -> np.ndarray:
    """A 2-D array as itself, anything else as one row of its entries."""
    return array if array.ndim == 2 else array.reshape(1, -1)


def _kept_rows_and_columns(array: np.ndarray) -> tuple[list[int | None], list[int | None]]:
    """The rows and the columns of `_as_rows(array)` that are shown (None for a "..." in their place)."""
    rows = _as_rows(array)
    return _kept(len(rows), MAX_ROWS, HEAD_ROWS), _kept(rows.shape[1], MAX_COLUMNS if array.ndim == 2 else MAX_FULL, HEAD)


def _kept(n: int, full: int, head: int) -> list[int | None]:
    """The indices shown out of n (None for the "..." that stands for the rest)."""
    return list(range(n)) if n <= full else list(range(head)) + [None]


def _grid(array: np.ndarray, digits: int) -> list[list[str] | None]:
    """The texts of the entries shown, row by row; None stands for rows left out, "..." for entries."""
    if array.dtype == object and not all(isinstance(item, str) for item in array.flat):
        return [["(objects)"]]  # an object array of strings is shown as its strings, as a unicode array is
    rows, (kept_rows, kept_columns) = _as_rows(array), _kept_rows_and_columns(array)
    return [None if i is None else [GAP if j is None else _entry(rows[i, j], digits) for j in kept_columns]
            for i in kept_rows]


def _entry(value, digits: int) -> str:
    if isinstance(value, (str, np.str_, bytes)):
        return repr(str(value))
    return number(value, digits)


def _column_widths(grid: list[list[str] | None]) -> list[tuple[int, int]]:
    """Per column, the widths of the part before the decimal point and of the part from it on."""
    rows = [row for row in grid if row is not None]
    columns = max((len(row) for row in rows), default=0)
    return [(max(len(_split(row[j])[0]) for row in rows if j < len(row)),
             max(len(_split(row[j])[1]) for row in rows if j < len(row))) for j in range(columns)]


def _split(text: str) -> tuple[str, str]:
    """A number's text cut at its decimal point, to align numbers on it."""
    point = text.find(".")
    return (text, "") if point < 0 or text == GAP or text.startswith("'") else (text[:point], text[point:])


def _body(grid: list[list[str] | None], widths: list[tuple[int, int]]) -> list[str]:
    """The lines of the entries: `[a, b]`, or `[[a, b],` ` [c, d]]` for several rows."""
    if grid == [[]] or not grid:
        return ["[]"]

    def aligned(row):
        return "[" + ", ".join(_split(text)[0].rjust(left) + _split(text)[1].ljust(right)
                               for text, (left, right) in zip(row, widths)) + "]"

    lines = [aligned(row) if row is not None else GAP for row in grid]
    if len(lines) == 1:
        return lines
    return ["[" + lines[0] + ","] + [" " + line + "," for line in lines[1:-1]] + [" " + lines[-1] + "]"]


def show_index(index: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"
