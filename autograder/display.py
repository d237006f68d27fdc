"""Short, readable renderings of inputs and outputs for check messages."""
from __future__ import annotations

import sys

import numpy as np

MAX_FULL = 12  # arrays with at most this many entries are shown whole


def _is_tensor(value) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def show(value) -> str:
    """One line (or a few) that shows a value well enough to debug with; never raises."""
    try:
        return _show(value)
    except Exception:  # a learner's object that breaks when looked at
        return f"<a {type(value).__name__} that cannot be shown>"


def _show(value) -> str:
    if _is_tensor(value):
        array = value.detach().cpu().numpy()
        return f"tensor {str(value.dtype).replace('torch.', '')} {tuple(value.shape)} on {value.device} " \
               f"{_values(array)}"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return f"{_values(value)} (0-d {value.dtype} array)"
        return f"{value.dtype} array {value.shape} {_values(value)}"
    if isinstance(value, np.random.Generator):
        return "numpy.random.Generator (seeded)"
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _number(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(show(item) for item in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        if len(value) > MAX_FULL:
            return f"list of {len(value)}: [" + ", ".join(show(v) for v in value[:4]) + ", ...]"
        return "[" + ", ".join(show(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key!r}: {show(item)}" for key, item in value.items()) + "}"
    if value is None:
        return "None"
    text = repr(value)
    return text if len(text) < 80 else text[:77] + "..."


def _number(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return np.format_float_positional(float(value), precision=6, unique=True, fractional=False, trim="-") \
        if np.isfinite(value) and 1e-4 <= abs(value) < 1e7 or value == 0 else f"{float(value):.6g}"


def _values(array: np.ndarray) -> str:
    if array.dtype == object:
        return "(objects)"
    if array.size <= MAX_FULL:
        body = np.array2string(array, precision=6, separator=", ", threshold=MAX_FULL, max_line_width=100)
    else:
        flat = array.ravel()
        if array.dtype.kind in "USO":
            return "[" + ", ".join(repr(str(x)) for x in flat[:4]) + ", ...]"
        head = ", ".join(_number(x) for x in flat[:4])
        body = f"[{head}, ...]"
        if np.issubdtype(array.dtype, np.number) and np.isfinite(array).all():
            body += f" (min {_number(flat.min())}, max {_number(flat.max())})"
    return " ".join(body.split())


def show_index(index: tuple) -> str:
    return "(" + ", ".join(str(int(i)) for i in index) + ("," if len(index) == 1 else "") + ")"
