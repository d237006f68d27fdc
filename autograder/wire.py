"""A safe, plain-JSON encoding of exercise inputs and outputs.

It carries what exercises take and return (numpy arrays of numbers, booleans or strings, object
arrays of strings, Python and numpy scalars, strings, None, tuples, lists, dicts with string keys, seeded numpy Generators, torch
tensors, and learning-rate `Table`s) between the grader and the sandbox that runs a learner's
code, and into the learner bundle's stored cases. Decoding never runs code and never unpickles:
a learner's object that only pretends to be an array is refused when it is encoded, and whatever
comes back from a sandbox is rebuilt from numbers alone.

This module needs only the standard library and numpy (torch when a tensor is met), because it
also runs inside the sandbox.
"""
from __future__ import annotations

import base64
import json
import sys

import numpy as np

NUMERIC_KINDS = "biuf"  # bool, signed, unsigned, float
STRING_KINDS = "UO"  # unicode, and object arrays whose every item is a str
MAX_ARRAY_BYTES = 64 * 2**20


class EncodeError(TypeError):
    """A value the wire format does not carry; the message says what it was."""


class Table:
    """A schedule given as its values: `Table(values)(step)` is `values[step]` (the last value after the end)."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def __call__(self, step):
        return float(self.values[min(int(step), len(self.values) - 1)])

    def __repr__(self):
        return f"Table of {len(self.values)} values ({self.values[0]:.4g} ... {self.values[-1]:.4g})"

    def __eq__(self, other):
        return isinstance(other, Table) and np.array_equal(self.values, other.values)

    __hash__ = None


def _array(value: np.ndarray) -> dict:
    if value.dtype.kind not in NUMERIC_KINDS:
        raise EncodeError(f"an array of dtype {value.dtype} (only numbers and booleans are accepted)")
    if value.nbytes > MAX_ARRAY_BYTES:
        raise EncodeError(f"an array of {value.nbytes / 2**20:.0f} MiB (at most {MAX_ARRAY_BYTES // 2**20} MiB)")
    plain = np.array(value, copy=True, subok=False, order="C")  # 0-d stays 0-d (ascontiguousarray would not)
    return {"dtype": plain.dtype.str, "shape": list(plain.shape), "data": base64.b64encode(plain.tobytes()).decode()}


def _strings(value: np.ndarray) -> dict:
    items = value.ravel().tolist()
    if not all(isinstance(item, str) for item in items):
        raise EncodeError(f"an array of dtype {value.dtype} holding something other than strings")
    items = [str.__str__(item) for item in items]  # np.str_ items become plain str; a subclass cannot lie
    if sum(len(item) for item in items) * 4 > MAX_ARRAY_BYTES:
        raise EncodeError(f"an array of strings over {MAX_ARRAY_BYTES // 2**20} MiB")
    return {"dtype": value.dtype.str, "shape": list(value.shape), "items": items}


def encode(value):
    """A JSON-ready structure for `value`; raises EncodeError for anything else."""
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is np.str_:
        return str(value)
    if type(value) is int:
        return {"__int__": str(value)}
    if type(value) is float:
        return {"__float__": repr(value)}
    if isinstance(value, (np.generic,)) and value.dtype.kind in NUMERIC_KINDS:
        return {"__scalar__": _array(np.asarray(value))}
    if isinstance(value, np.ndarray):
        return {"__strings__": _strings(value)} if value.dtype.kind in STRING_KINDS else {"__ndarray__": _array(value)}
    if type(value) in (tuple, list):
        return {"__tuple__" if type(value) is tuple else "__list__": [encode(item) for item in value]}
    if type(value) is dict:
        if not all(type(key) is str for key in value):
            raise EncodeError("a dict whose keys are not all strings")
        return {"__dict__": {key: encode(item) for key, item in value.items()}}
    if isinstance(value, np.random.Generator):
        state = value.bit_generator.state
        return {"__generator__": json.loads(json.dumps(state, default=int))}
    if type(value) is Table:
        return {"__table__": _array(value.values)}
    torch = sys.modules.get("torch")
    if torch is not None and type(value) in (torch.Tensor, torch.nn.Parameter):
        array = value.detach().cpu()
        if array.dtype == torch.bfloat16:
            array = array.float()
        return {"__tensor__": _array(array.numpy()), "dtype": str(value.dtype).replace("torch.", ""),
                "device": value.device.type, "requires_grad": bool(value.requires_grad)}
    raise EncodeError(f"a value of type {type(value).__module__}.{type(value).__qualname__}")


def _decode_array(spec) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    if dtype.kind not in NUMERIC_KINDS:
        raise ValueError(f"refusing dtype {dtype}")
    data = base64.b64decode(spec["data"])
    return np.frombuffer(data, dtype=dtype).reshape(spec["shape"]).copy()


def _decode_strings(spec) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    items = spec["items"]
    if dtype.kind not in STRING_KINDS or type(items) is not list or not all(type(item) is str for item in items):
        raise ValueError(f"refusing an array of strings of dtype {dtype}")
    array = np.empty(len(items), dtype=dtype)
    array[:] = items
    return array.reshape(spec["shape"])


def decode(value):
    """The value that `encode` described, rebuilt from plain data."""
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is not dict or len(value) < 1:
        raise ValueError(f"not an encoded value: {str(value)[:80]}")
    kind = next(iter(value))
    body = value[kind]
    if kind == "__int__":
        return int(body)
    if kind == "__float__":
        return float(body)
    if kind == "__scalar__":
        return _decode_array(body)[()]
    if kind == "__ndarray__":
        return _decode_array(body)
    if kind == "__strings__":
        return _decode_strings(body)
    if kind == "__tuple__":
        return tuple(decode(item) for item in body)
    if kind == "__list__":
        return [decode(item) for item in body]
    if kind == "__dict__":
        return {key: decode(item) for key, item in body.items()}
    if kind == "__generator__":
        bit_generator = getattr(np.random, body["bit_generator"])()
        bit_generator.state = body
        return np.random.Generator(bit_generator)
    if kind == "__table__":
        return Table(_decode_array(body))
    if kind == "__tensor__":
        import torch

        tensor = torch.from_numpy(_decode_array(body)).to(getattr(torch, value["dtype"]))
        return tensor.to(value["device"]).requires_grad_(value["requires_grad"])
    raise ValueError(f"unknown encoded kind {kind!r}")


def dumps(value) -> str:
    return json.dumps(encode(value))


def loads(text: str):
    return decode(json.loads(text))
