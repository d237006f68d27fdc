"""Compare what a learner's function returned with what the reference returned.

`differences(got, expected, ...)` walks tuples, lists and dicts and returns a list of readable
problems (empty when the two agree). It never trusts the learner's object: arrays are copied into
plain `numpy.ndarray`s before any comparison, so an `__eq__` that always answers True or an
ndarray subclass that lies about its values cannot pass. `parts` pairs up the parts of the two
(a tuple's named outputs, a dict's keys) under the labels that problems carry, and
`changed_inputs` says which of a call's arguments it changed in place.

A sequence of strings (a vocabulary, categories) is one value however it is held: a list of str, a
unicode array and an object array of str compare alike, strictly on shape and strings. A float
answer is compared within the tolerance of the precision it is computed in, and may be less
precise than the reference only down to float32 (`Tolerance`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from autograder.learner.display import show_index, show_inline, show_pair


@dataclass(frozen=True)
class Problem:
    where: str  # "" for the whole output, else e.g. "grad_b" or "[1]"
    message: str
    blind: str = ""  # the same without any expected value, for hidden cases; "" when message has none

    def __str__(self):
        return f"{self.where}: {self.message}" if self.where else self.message

    def without_values(self) -> str:
        text = self.blind or self.message
        return f"{self.where}: {text}" if self.where else text


@dataclass(frozen=True)
class Tolerance:
    """How close a float answer must be: within `rtol`/`atol`, widened to the precision the answer is computed
    in. That precision is the coarser of the answer's dtype and the reference's, and an answer may be coarser
    than the reference only down to float32, and not at all when `strict_dtype` (`_coarsest_accepted`): a
    float16 answer where float64 is expected fails as too little precision rather than passing under float16's
    wide tolerance."""

    rtol: float = 1e-7
    atol: float = 1e-10
    strict_dtype: bool = False


COARSEST_FLOAT = np.dtype(np.float32)  # the least precise float an answer may return where the exercise is not strict


def _torch():
    return sys.modules.get("torch")


def _is_tensor(value) -> bool:
    torch = _torch()
    return torch is not None and isinstance(value, torch.Tensor)


def _is_number(value) -> bool:
    return isinstance(value, (bool, int, float, np.bool_, np.integer, np.floating)) or \
        (isinstance(value, np.ndarray) and value.ndim == 0)


def differences(got, expected, tol: Tolerance = Tolerance(), names=None, where="") -> list[Problem]:
    """Every way in which `got` differs from `expected`; [] when they agree."""
    if _is_text(expected):
        return _text(got, expected, where)
    if isinstance(expected, (tuple, list)):
        return _sequence(got, expected, tol, names, where)
    if isinstance(expected, dict):
        return _mapping(got, expected, tol, where)
    if _is_tensor(expected):
        return _tensor(got, expected, tol, where)
    if isinstance(expected, np.ndarray) or _is_number(expected):
        return _array(got, expected, tol, where)
    if expected is None:
        return [] if got is None else [Problem(where, f"expected None, got {show_inline(got)}", "expected None")]
    if type(got) is not type(expected) or got != expected:
        return [Problem(where, f"expected {show_inline(expected)}, got {show_inline(got)}", "not the expected value")]
    return []


def parts(got, expected, names=None, where="") -> list[tuple[str, object, object]]:
    """(label, got part, expected part) for each part of two outputs of the same structure, labelled as
    `differences` labels its problems; a part whose structure differs (a missing key, a wrong length)
    stays whole, and so does a sequence of strings. Two plain values give one part, labelled ""."""
    if _is_text(expected):
        return [(where, got, expected)]
    if isinstance(expected, (tuple, list)) and isinstance(got, (tuple, list)) and len(got) == len(expected):
        return [part for label, got_item, expected_item in zip(_labels(expected, names, where), got, expected)
                for part in parts(got_item, expected_item, None, label)]
    if isinstance(expected, dict) and isinstance(got, dict) and got.keys() == expected.keys():
        return [part for key in expected for part in parts(got[key], expected[key], None, _key_label(where, key))]
    return [(where, got, expected)]


def _labels(expected, names, where) -> list[str]:
    """The labels of a sequence's items: the exercise's names for its outputs, else [0], [1], ..."""
    return list(names) if names and len(names) == len(expected) else [f"{where}[{i}]" for i in range(len(expected))]


def _key_label(where, key) -> str:
    return f"{where}[{key!r}]" if where else repr(key)


def _sequence(got, expected, tol, names, where):
    kind = "tuple" if isinstance(expected, tuple) else "list"
    labels = _labels(expected, names, where)
    described = f"{len(expected)} values ({', '.join(labels)})" if names else f"{len(expected)} values"
    if got is None:
        return [Problem(where, f"returned None; expected a {kind} of {described}. Did you forget `return`?")]
    if not isinstance(got, (tuple, list)):
        return [Problem(where, f"expected a {kind} of {described}, got {show_inline(got)}")]
    if len(got) != len(expected):
        return [Problem(where, f"expected a {kind} of {described}, got {len(got)} values")]
    problems = []
    for label, got_item, expected_item in zip(labels, got, expected):
        problems += differences(got_item, expected_item, tol, None, label)
    return problems


def _strings(value) -> tuple[tuple, list[str]] | None:
    """(shape, its strings as plain str, flat) of a sequence of strings: a list or tuple of str, or a numpy
    array of str (unicode, or object dtype holding only str); None for anything else. The strings are
    copied as plain str, so that a str subclass cannot lie about its value when compared."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "UO":
        items = value.ravel().tolist()
        shape = value.shape
    elif type(value) in (list, tuple):
        items, shape = list(value), (len(value),)
    else:
        return None
    if not all(isinstance(item, str) for item in items):
        return None
    return shape, [str.__str__(item) for item in items]


def _is_text(expected) -> bool:
    """Whether an expected value is a sequence of strings (a vocabulary, categories): a non-empty list of str,
    or a numpy array of str. A tuple stays a tuple of outputs, each compared on its own."""
    if isinstance(expected, tuple) or (isinstance(expected, list) and not expected):
        return False
    return _strings(expected) is not None


def _text(got, expected, where):
    """A sequence of strings, where a list of str, a unicode array and an object array of str are the same
    thing: strict on the shape and on every string, not on the container."""
    expected_shape, expected_items = _strings(expected)
    found = _strings(got)
    if found is None:
        return [Problem(where, f"expected {_count_of_strings(expected_shape)} (a list of str or a numpy array of "
                               f"str), got {show_inline(got)}")]
    shape, items = found
    if shape != expected_shape:
        return [Problem(where, f"expected {_count_of_strings(expected_shape)}, got {_count_of_strings(shape)}")]
    wrong = [i for i, (item, expected_item) in enumerate(zip(items, expected_items)) if item != expected_item]
    if not wrong:
        return []
    first = np.unravel_index(wrong[0], shape)
    return [Problem(where, f"differs at {len(wrong)} of {len(items)} strings; first at index {show_index(first)}: "
                           f"expected {expected_items[wrong[0]]!r}, got {items[wrong[0]]!r}",
                    f"differs from the expected strings at {len(wrong)} of {len(items)} entries")]


def _count_of_strings(shape: tuple) -> str:
    return f"{shape[0]} strings" if len(shape) == 1 else f"strings of shape {shape}"


def _mapping(got, expected, tol, where):
    if not isinstance(got, dict):
        return [Problem(where, f"expected a dict with keys {sorted(expected)}, got {show_inline(got)}")]
    missing, extra = set(expected) - set(got), set(got) - set(expected)
    if missing or extra:
        parts = ([f"missing {sorted(missing)}"] if missing else []) + ([f"unexpected {sorted(extra)}"] if extra else [])
        return [Problem(where, f"keys differ: {', '.join(parts)}")]
    problems = []
    for key in expected:
        problems += differences(got[key], expected[key], tol, None, _key_label(where, key))
    return problems


def _tensor(got, expected, tol, where):
    if got is None:
        return [Problem(where, "returned None; expected a torch.Tensor. Did you forget `return`?")]
    if not _is_tensor(got):
        return [Problem(where, f"expected a torch.Tensor, got {type(got).__name__}")]
    if got.device.type != expected.device.type:
        return [Problem(where, f"the tensor is on {got.device}, expected on {expected.device}")]
    if got.requires_grad != expected.requires_grad:
        want = "to require" if expected.requires_grad else "not to require"
        return [Problem(where, f"expected the tensor {want} grad (requires_grad={expected.requires_grad})")]
    if got.dtype != expected.dtype and (tol.strict_dtype or got.dtype.is_floating_point != expected.dtype.is_floating_point):
        return [Problem(where, f"wrong dtype: expected {expected.dtype}, got {got.dtype}")]
    plain = _torch().Tensor.detach(got).cpu().clone().numpy().view(np.ndarray)
    return _array(plain, expected.detach().cpu().numpy(), tol, where)


def _plain_array(got, expected_is_scalar: bool):
    """A plain ndarray copy of `got`, or a message saying why it is not an acceptable result."""
    if got is None:
        return None, "returned None. Did you forget `return`?"
    if _is_tensor(got):
        return None, "returned a torch.Tensor; this exercise works in numpy (use .numpy() or numpy functions)"
    if isinstance(got, np.ndarray):
        return np.array(got, copy=True, subok=False), None
    if isinstance(got, (bool, int, float, np.bool_, np.integer, np.floating)):
        return np.array(got), None
    if isinstance(got, (list, tuple)) and not expected_is_scalar:
        return None, f"returned a {type(got).__name__}; return a numpy array (np.array(...) or numpy operations)"
    return None, f"expected {'a number' if expected_is_scalar else 'a numpy array'}, got {type(got).__name__}"


def _kind(dtype) -> str:
    if dtype == np.bool_:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "integer"
    if np.issubdtype(dtype, np.floating):
        return "float"
    return str(dtype)


def _array(got, expected, tol, where):
    expected = np.asarray(expected)
    scalar = expected.ndim == 0
    got_array, why = _plain_array(got, scalar)
    if why:
        return [Problem(where, why)]
    if got_array.shape != expected.shape:
        return [Problem(where, _shape_message(got_array.shape, expected.shape))]
    if got_array.dtype == object or _kind(got_array.dtype) != _kind(expected.dtype) or \
            (tol.strict_dtype and got_array.dtype != expected.dtype):
        return [Problem(where, _dtype_message(got_array.dtype, expected.dtype))]
    if _kind(expected.dtype) != "float":
        return _exact(got_array, expected, where)
    if _eps(got_array.dtype) > _eps(_coarsest_accepted(expected.dtype, tol)):
        return [Problem(where, _precision_message(got_array.dtype, expected.dtype, tol))]
    return _close(got_array, expected, tol, where)


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _coarsest_accepted(expected_dtype, tol: Tolerance) -> np.dtype:
    """The least precise float dtype an answer may have: the reference's own when the exercise is strict about
    dtypes, else the coarser of the reference's and float32."""
    if tol.strict_dtype:
        return np.dtype(expected_dtype)
    return max(np.dtype(expected_dtype), COARSEST_FLOAT, key=_eps)


def _precision_message(got_dtype, expected_dtype, tol: Tolerance) -> str:
    accepted = _coarsest_accepted(expected_dtype, tol)
    return (f"too little precision: {got_dtype} keeps about {np.finfo(got_dtype).precision} significant digits; this "
            f"exercise expects {expected_dtype} values and accepts {accepted} at the least. Compute in "
            f"{expected_dtype} (leave out the .astype({got_dtype}) or dtype={got_dtype})")


def _shape_message(got_shape, expected_shape) -> str:
    text = f"wrong shape: expected {expected_shape or 'a scalar, shape ()'}, got {got_shape}"
    hint = _shape_hint(tuple(got_shape), tuple(expected_shape))
    return f"{text}. {hint}" if hint else text


def _shape_hint(got: tuple, expected: tuple) -> str:
    """What a wrong shape most likely comes from, where the two shapes tell; "" where they do not."""
    if expected == () and np.prod(got) == 1:
        return "Return a single number: reduce with np.mean/np.sum or use .item()"
    if _is_broadcast_square(got, expected):
        n = got[0]
        return (f"A ({n}, {n}) array where {'a number' if expected == () else expected} was expected is the mark of a "
                "broadcast: an (n, 1) array and an (n,) one were mixed (e.g. y[:, None] or y.reshape(-1, 1) against "
                "X @ w + b, of shape (n,)), and subtracting them broadcasts to (n, n). Keep every vector of shape (n,)")
    if _without_ones(got) == _without_ones(expected) and len(got) != len(expected):
        return "An axis of length 1 is extra or missing: mind (n,) versus (n, 1) (ravel, reshape or keepdims)"
    if got[::-1] == expected and len(got) > 1:
        return "That is the transposed shape"
    extra, missing = _dropped_axis(got, expected), _dropped_axis(expected, got)
    if extra is not None:
        return (f"It has an extra axis {extra}, of length {got[extra]}: reduce over it, and check which axis you "
                "reduce over (axis=0 runs down the rows, over samples)")
    if missing is not None:
        return (f"Axis {missing}, of length {expected[missing]}, is missing: check which axis you reduce over "
                "(axis=0 runs down the rows, over samples)")
    return ""


def _is_broadcast_square(got: tuple, expected: tuple) -> bool:
    """(n, n) where an (n,) vector, an (n, 1) column or a number was expected: the mark of (n,) - (n, 1)."""
    return len(got) == 2 and got[0] == got[1] > 1 and expected in ((), (got[0],), (got[0], 1))


def _without_ones(shape: tuple) -> tuple:
    return tuple(n for n in shape if n != 1)


def _dropped_axis(longer: tuple, shorter: tuple) -> int | None:
    """The axis of `longer` without which it is `shorter`, if there is one."""
    if len(longer) != len(shorter) + 1:
        return None
    return next((axis for axis in range(len(longer)) if longer[:axis] + longer[axis + 1:] == shorter), None)


def _dtype_message(got_dtype, expected_dtype) -> str:
    text = f"wrong dtype: expected {_kind(expected_dtype)} values ({expected_dtype}), got {got_dtype}"
    if _kind(expected_dtype) == "float" and _kind(got_dtype) == "integer":
        return text + ". Integer arithmetic somewhere (// or an int array)? Use / and float arrays"
    if _kind(expected_dtype) == "integer" and _kind(got_dtype) == "float":
        return text + ". Counts and indices are integers: use integer arithmetic or .astype(int)"
    return text


def differing_entries(got, expected, tol: Tolerance = Tolerance()) -> np.ndarray | None:
    """Where two arrays of one shape and kind differ, entry by entry, by the rules of `differences`;
    None where they cannot be compared entry by entry."""
    expected = np.asarray(expected)
    got_array, why = _plain_array(got, expected.ndim == 0)
    if why or got_array.shape != expected.shape or got_array.dtype == object or \
            _kind(got_array.dtype) != _kind(expected.dtype):
        return None
    if _kind(expected.dtype) != "float":
        return got_array != expected
    return ~_close_entries(got_array, expected, tol)


def _exact(got, expected, where):
    wrong = got != expected
    if not wrong.any():
        return []
    if expected.ndim == 0:
        return [Problem(where, _expected_got(expected[()], got[()]), "not the expected value")]
    first = tuple(np.argwhere(wrong)[0])
    return [Problem(where, f"differs at {int(wrong.sum())} of {wrong.size} entries; first at index "
                           f"{show_index(first)}: {_expected_got(expected[first], got[first])}",
                    f"differs from the expected values at {int(wrong.sum())} of {wrong.size} entries")]


def _expected_got(expected, got) -> str:
    expected_text, got_text = show_pair(expected, got)
    return f"expected {expected_text}, got {got_text}"


def _close_entries(got, expected, tol) -> np.ndarray:
    """Which entries of two float arrays of one shape agree within the tolerance (NaN agrees with NaN), widened
    to the precision the comparison works in (`_working_eps`) where that is coarser than float64."""
    rtol, atol = tol.rtol, tol.atol
    eps = _working_eps(got.dtype, expected.dtype, tol)
    if eps > _eps(np.float64):
        scale = float(np.nanmax(np.abs(expected[np.isfinite(expected)]), initial=1.0))
        rtol, atol = max(rtol, 50 * eps), max(atol, 10 * eps * scale)
    return np.isclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol, equal_nan=True)


def _working_eps(got_dtype, expected_dtype, tol: Tolerance) -> float:
    """The machine epsilon of the precision two float arrays are compared in: the coarser of the answer's and
    the reference's dtype, the answer's counting no coarser than the exercise accepts (`_coarsest_accepted`)."""
    got_eps = min(_eps(got_dtype), _eps(_coarsest_accepted(expected_dtype, tol)))
    return max(got_eps, _eps(expected_dtype))


def _close(got, expected, tol, where):
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    bad_nan = np.isnan(got64) & ~np.isnan(expected64)
    if bad_nan.any():
        return [Problem(where, _non_finite_message("NaN", bad_nan, "0/0, inf - inf, or the log or sqrt of a "
                                                   "negative number", expected))]
    bad_inf = np.isinf(got64) & ~np.isinf(expected64)
    if bad_inf.any():
        return [Problem(where, _non_finite_message("inf", bad_inf, "overflow (exp of a large number) or a "
                                                   "division by zero", expected))]
    close = _close_entries(got, expected, tol)
    if close.all():
        return []
    finite = np.isfinite(got64) & np.isfinite(expected64)
    error = np.abs(got64 - expected64)[finite & ~close]
    max_error = f"; max abs error {show_inline(error.max())}" if error.size else ""
    if expected.ndim == 0:
        return [Problem(where, f"{_expected_got(expected[()], got[()])}{max_error}", "not the expected value")]
    first = tuple(np.argwhere(~close)[0])
    return [Problem(where, f"differs at {int((~close).sum())} of {close.size} entries; first at index "
                           f"{show_index(first)}: {_expected_got(expected[first], got[first])}{max_error}",
                    f"differs from the expected values at {int((~close).sum())} of {close.size} entries")]


def _non_finite_message(what, mask, causes, expected) -> str:
    if expected.ndim == 0:
        return f"got {what} where a finite number was expected. Usual causes: {causes}"
    first = tuple(np.argwhere(mask)[0])
    return (f"got {what} at {int(mask.sum())} of {mask.size} entries (first at index {show_index(first)}) where "
            f"finite values were expected. Usual causes: {causes}")


def changed_inputs(before: dict, after: dict) -> list[str]:
    """The names of a call's arguments that it changed in place: `before` is a copy taken before the call,
    `after` the arguments after it."""
    return [name for name in before if not same_values(before[name], after[name])]


MAX_DEPTH = 16  # how deep same_values follows containers and objects' attributes; deeper counts as unchanged
PLAIN_VALUES = (str, bytes, bytearray, int, float, complex, bool, type(None), set, frozenset, np.generic)


def same_values(a, b, depth: int = 0) -> bool:
    """Whether `b` holds the same values as `a`, leaf by leaf: arrays, tensors, lists, tuples and dicts by
    their items; strings, numbers, None, bytes and sets by value (NaN equal to NaN); other objects by their
    attributes, or by their own `==`. A random generator counts as unchanged (it is there to be drawn from), and
    so does anything that cannot be compared (deeper than MAX_DEPTH, an object that raises, one without
    attributes or an `==` of its own): a change must show to count. Never raises."""
    try:
        return a is b or depth > MAX_DEPTH or _same_values(a, b, depth)
    except Exception:  # a learner's object that breaks when compared
        return True


def _same_values(a, b, depth: int) -> bool:
    if isinstance(a, np.random.Generator):
        return True
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype and \
            np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    if _is_tensor(a):
        return _is_tensor(b) and same_values(a.detach().cpu().numpy(), b.detach().cpu().numpy(), depth + 1)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y, depth + 1) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[key], b[key], depth + 1) for key in a)
    if isinstance(a, PLAIN_VALUES):
        return bool(a == b) or (a != a and b != b)  # NaN is the one value unequal to itself
    if hasattr(a, "__dict__"):
        return same_values(vars(a), vars(b), depth + 1)
    return type(a).__eq__ is object.__eq__ or bool(a == b)  # without an __eq__ of its own, a copy is never equal
