"""Compare what a learner's function returned with what the reference returned.

`differences(got, expected, ...)` walks tuples, lists and dicts and returns a list of readable
problems (empty when the two agree). It never trusts the learner's object: arrays are copied into
plain `numpy.ndarray`s before any comparison, so an `__eq__` that always answers True or an
ndarray subclass that lies about its values cannot pass.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from autograder.display import show, show_index


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
    rtol: float = 1e-7
    atol: float = 1e-10
    strict_dtype: bool = False


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
    if isinstance(expected, (tuple, list)):
        return _sequence(got, expected, tol, names, where)
    if isinstance(expected, dict):
        return _mapping(got, expected, tol, where)
    if _is_tensor(expected):
        return _tensor(got, expected, tol, where)
    if isinstance(expected, np.ndarray) or _is_number(expected):
        return _array(got, expected, tol, where)
    if expected is None:
        return [] if got is None else [Problem(where, f"expected None, got {show(got)}", "expected None")]
    if type(got) is not type(expected) or got != expected:
        return [Problem(where, f"expected {show(expected)}, got {show(got)}", "not the expected value")]
    return []


def _sequence(got, expected, tol, names, where):
    kind = "tuple" if isinstance(expected, tuple) else "list"
    labels = list(names) if names and len(names) == len(expected) else \
        [f"{where}[{i}]" for i in range(len(expected))]
    described = f"{len(expected)} values ({', '.join(labels)})" if names else f"{len(expected)} values"
    if got is None:
        return [Problem(where, f"returned None; expected a {kind} of {described}. Did you forget `return`?")]
    if not isinstance(got, (tuple, list)):
        return [Problem(where, f"expected a {kind} of {described}, got {show(got)}")]
    if len(got) != len(expected):
        return [Problem(where, f"expected a {kind} of {described}, got {len(got)} values")]
    problems = []
    for label, got_item, expected_item in zip(labels, got, expected):
        problems += differences(got_item, expected_item, tol, None, label)
    return problems


def _mapping(got, expected, tol, where):
    if not isinstance(got, dict):
        return [Problem(where, f"expected a dict with keys {sorted(expected)}, got {show(got)}")]
    missing, extra = set(expected) - set(got), set(got) - set(expected)
    if missing or extra:
        parts = ([f"missing {sorted(missing)}"] if missing else []) + ([f"unexpected {sorted(extra)}"] if extra else [])
        return [Problem(where, f"keys differ: {', '.join(parts)}")]
    problems = []
    for key in expected:
        problems += differences(got[key], expected[key], tol, None, f"{where}[{key!r}]" if where else repr(key))
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
    return _close(got_array, expected, tol, where)


def _shape_message(got_shape, expected_shape) -> str:
    text = f"wrong shape: expected {expected_shape or 'a scalar, shape ()'}, got {got_shape}"
    if expected_shape == () and np.prod(got_shape) == 1:
        return text + ". Return a single number: reduce with np.mean/np.sum or use .item()"
    squeezed = tuple(n for n in got_shape if n != 1)
    if squeezed == tuple(n for n in expected_shape if n != 1) and len(got_shape) != len(expected_shape):
        return text + ". An axis of length 1 is extra or missing: mind (n,) versus (n, 1) (ravel, reshape or keepdims)"
    if tuple(reversed(got_shape)) == tuple(expected_shape) and len(got_shape) > 1:
        return text + ". That is the transposed shape"
    if got_shape and expected_shape and np.prod(got_shape) != np.prod(expected_shape):
        return text + ". Check which axis you reduce over (axis=0 runs down the rows, over samples)"
    return text


def _dtype_message(got_dtype, expected_dtype) -> str:
    text = f"wrong dtype: expected {_kind(expected_dtype)} values ({expected_dtype}), got {got_dtype}"
    if _kind(expected_dtype) == "float" and _kind(got_dtype) == "integer":
        return text + ". Integer arithmetic somewhere (// or an int array)? Use / and float arrays"
    if _kind(expected_dtype) == "integer" and _kind(got_dtype) == "float":
        return text + ". Counts and indices are integers: use integer arithmetic or .astype(int)"
    return text


def _exact(got, expected, where):
    wrong = got != expected
    if not wrong.any():
        return []
    if expected.ndim == 0:
        return [Problem(where, f"expected {show(expected[()])}, got {show(got[()])}", "not the expected value")]
    first = tuple(np.argwhere(wrong)[0])
    return [Problem(where, f"differs at {int(wrong.sum())} of {wrong.size} entries; first at index "
                           f"{show_index(first)}: expected {show(expected[first])}, got {show(got[first])}",
                    f"differs from the expected values at {int(wrong.sum())} of {wrong.size} entries")]


def _close(got, expected, tol, where):
    rtol, atol = tol.rtol, tol.atol
    if not tol.strict_dtype and np.finfo(got.dtype).eps > np.finfo(expected.dtype).eps:
        scale = float(np.nanmax(np.abs(expected[np.isfinite(expected)]), initial=1.0))
        rtol = max(rtol, 50 * float(np.finfo(got.dtype).eps))
        atol = max(atol, 10 * float(np.finfo(got.dtype).eps) * scale)
    got64, expected64 = got.astype(np.float64), expected.astype(np.float64)
    bad_nan = np.isnan(got64) & ~np.isnan(expected64)
    if bad_nan.any():
        return [Problem(where, _non_finite_message("NaN", bad_nan, "0/0, inf - inf, or the log or sqrt of a "
                                                   "negative number", expected))]
    bad_inf = np.isinf(got64) & ~np.isinf(expected64)
    if bad_inf.any():
        return [Problem(where, _non_finite_message("inf", bad_inf, "overflow (exp of a large number) or a "
                                                   "division by zero", expected))]
    close = np.isclose(got64, expected64, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return []
    finite = np.isfinite(got64) & np.isfinite(expected64)
    error = np.abs(got64 - expected64)[finite & ~close]
    max_error = f"; max abs error {show(error.max())}" if error.size else ""
    if expected.ndim == 0:
        return [Problem(where, f"expected {show(expected[()])}, got {show(got[()])}{max_error}",
                        "not the expected value")]
    first = tuple(np.argwhere(~close)[0])
    return [Problem(where, f"differs at {int((~close).sum())} of {close.size} entries; first at index "
                           f"{show_index(first)}: expected {show(expected[first])}, got {show(got[first])}"
                           f"{max_error}",
                    f"differs from the expected values at {int((~close).sum())} of {close.size} entries")]


def _non_finite_message(what, mask, causes, expected) -> str:
    if expected.ndim == 0:
        return f"got {what} where a finite number was expected. Usual causes: {causes}"
    first = tuple(np.argwhere(mask)[0])
    return (f"got {what} at {int(mask.sum())} of {mask.size} entries (first at index {show_index(first)}) where "
            f"finite values were expected. Usual causes: {causes}")
