"""A safe, plain-JSON encoding of exercise inputs and outputs.

It carries what exercises take and return (numpy arrays of numbers, booleans or strings, object
arrays of strings, Python and numpy scalars, strings, None, tuples, namedtuples, lists, dicts with
string keys, seeded numpy Generators, torch tensors, and learning-rate `Table`s) between the grader
and the sandbox that runs a learner's code, and into the learner bundle's stored cases. Decoding
never runs code and never unpickles: a learner's object that only pretends to be an array is
refused when it is encoded, and whatever comes back from a sandbox is rebuilt from numbers alone.
A namedtuple travels as its type's name, its field names and its items, and comes back as the
class `namedtuple_type` makes for that name and those fields (collections.namedtuple, from names
checked to be plain identifiers first).

This module needs only the standard library and numpy (torch when a tensor is met), because it
also runs inside the sandbox.
"""
from __future__ import annotations

import base64
import collections
import json
import keyword
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


MAX_NAMEDTUPLE_TYPES = 256  # namedtuple classes made here, one per (name, fields); decoding refuses more
MAX_FIELDS = 64
MAX_NAME_CHARS = 100
_NAMEDTUPLES: dict[tuple[str, tuple[str, ...]], type] = {}


def namedtuple_type(typename: str, fields) -> type:
    """The namedtuple class called `typename` with these fields that this module encodes and decodes: made once by
    collections.namedtuple, the same class on every later call in this process. A case that passes a namedtuple
    builds it with this class, so that it comes back from the wire (in the sandbox, and from the sandbox) as the
    very same type. ValueError for a name or field that is not a plain identifier (a keyword, a field starting
    with "_", a name used twice), for more than MAX_FIELDS fields, or past MAX_NAMEDTUPLE_TYPES classes."""
    fields = tuple(fields)
    names = (typename, *fields)
    if not (all(type(name) is str and name.isidentifier() and not keyword.iskeyword(name)
                and len(name) <= MAX_NAME_CHARS for name in names)
            and not any(field.startswith("_") for field in fields) and len(set(fields)) == len(fields)
            and len(fields) <= MAX_FIELDS):
        raise ValueError("a namedtuple whose name or fields are not plain identifiers")
    key = (typename, fields)
    if key not in _NAMEDTUPLES:
        if len(_NAMEDTUPLES) >= MAX_NAMEDTUPLE_TYPES:
            raise ValueError(f"more than {MAX_NAMEDTUPLE_TYPES} kinds of namedtuple")
        _NAMEDTUPLES[key] = collections.namedtuple(typename, fields, module=__name__)
    return _NAMEDTUPLES[key]


def _namedtuple(value: tuple) -> dict:
    """A namedtuple's record: its type's name, its fields and its items, read with tuple's own methods (a subclass
    cannot change what they give)."""
    cls = type(value)
    fields, items = cls._fields, [tuple.__getitem__(value, k) for k in range(tuple.__len__(value))]
    if type(fields) is not tuple or len(fields) != len(items):
        raise EncodeError(f"a tuple of type {cls.__module__}.{cls.__qualname__} whose _fields do not name its items")
    try:
        namedtuple_type(cls.__name__, fields)
    except ValueError as refused:
        raise EncodeError(str(refused)) from None
    return {"name": cls.__name__, "fields": list(fields), "items": [encode(item) for item in items]}


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
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return {"__namedtuple__": _namedtuple(value)}
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


class DecodeError(ValueError):
    """Data that is not what `encode` writes (forged, cut short, too deep or too large); the message,
    written here, says what was wrong, never quoting the data."""


MAX_DEPTH = 64  # containers inside containers; encode's values nest a few levels
MAX_STRING_CHARS = 2**20
MAX_INT_DIGITS = 4000  # below Python's own limit on converting digits (4300)
BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64", "MT19937")  # numpy's, by the names their state gives
TENSOR_DTYPES = ("float64", "float32", "float16", "bfloat16", "int64", "int32", "int16", "int8", "uint8", "bool")
TENSOR_DEVICES = ("cpu", "cuda", "mps")


def _require(condition, why: str):
    if not condition:
        raise DecodeError(why)


def _decode_array(spec) -> np.ndarray:
    _require(type(spec) is dict and set(spec) == {"dtype", "shape", "data"}, "an array record of the wrong form")
    dtype = _dtype(spec["dtype"], NUMERIC_KINDS)
    _require(type(spec["data"]) is str and len(spec["data"]) <= MAX_ARRAY_BYTES * 4 // 3 + 4, "array data too large")
    try:
        data = base64.b64decode(spec["data"], validate=True)
    except ValueError:
        raise DecodeError("array data that is not base64") from None
    _require(len(data) % dtype.itemsize == 0, "array data of the wrong length for its dtype")
    shape = _shape(spec["shape"], len(data) // dtype.itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape).copy()


def _dtype(name, kinds: str) -> np.dtype:
    """The numpy dtype named by `name`, if it is one of `kinds` (a plain dtype string such as "<f8")."""
    _require(type(name) is str and len(name) <= 12, "a dtype that is not a short string")
    try:
        dtype = np.dtype(name)
    except (TypeError, ValueError):
        raise DecodeError("an unknown dtype") from None
    _require(dtype.kind in kinds and dtype.fields is None and dtype.shape == (), f"refusing dtype {dtype}")
    return dtype


def _shape(shape, size: int) -> tuple:
    _require(type(shape) is list and len(shape) <= 32 and all(type(n) is int and 0 <= n <= 2**40 for n in shape),
             "an array shape of the wrong form")
    _require(_size(shape) == size, "an array whose shape does not fit its data")
    return tuple(shape)


def _size(shape: tuple) -> int:
    size = 1
    for n in shape:
        size *= n
    return size


def _decode_strings(spec) -> np.ndarray:
    _require(type(spec) is dict and set(spec) == {"dtype", "shape", "items"}, "a string array record of the wrong form")
    dtype = _dtype(spec["dtype"], STRING_KINDS)
    items = spec["items"]
    _require(type(items) is list and all(type(item) is str for item in items), "refusing an array of non-strings")
    _require(len(items) * dtype.itemsize <= MAX_ARRAY_BYTES, "an array of strings too large")
    shape = _shape(spec["shape"], len(items))
    array = np.empty(len(items), dtype=dtype)
    array[:] = items
    return array.reshape(shape)


def _decode_generator(state) -> np.random.Generator:
    """A numpy Generator in `state`: only numpy's own bit generators, built fresh (the global random state is
    never touched), and refused if the state does not fit one."""
    _require(type(state) is dict and state.get("bit_generator") in BIT_GENERATORS, "an unknown bit generator")
    _require(_plain_depth(state) <= 4, "a generator state of the wrong form")
    bit_generator = getattr(np.random, state["bit_generator"])()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError):
        raise DecodeError("a generator state that numpy refuses") from None
    return np.random.Generator(bit_generator)


def _plain_depth(value) -> int:
    """How deep plain JSON data (a generator's state) nests; 99 once it holds anything but ints, strings, lists
    and dicts."""
    if type(value) in (int, str):
        return 0
    if type(value) in (list, dict):
        items = value.values() if type(value) is dict else value
        return 1 + max((_plain_depth(item) for item in items), default=0) if len(value) <= 1000 else 99
    return 99


def _decode_tensor(value):
    _require(set(value) == {"__tensor__", "dtype", "device", "requires_grad"}, "a tensor record of the wrong form")
    _require(value["dtype"] in TENSOR_DTYPES and value["device"] in TENSOR_DEVICES
             and type(value["requires_grad"]) is bool, "a tensor of an unknown dtype or device")
    import torch

    try:
        tensor = torch.from_numpy(_decode_array(value["__tensor__"])).to(getattr(torch, value["dtype"]))
        return tensor.to(value["device"]).requires_grad_(value["requires_grad"])
    except (RuntimeError, TypeError, ValueError):
        raise DecodeError("a tensor that torch cannot rebuild here") from None


def _decode_namedtuple(body, depth: int):
    """A namedtuple of the class `namedtuple_type` gives for the record's name and fields, its items decoded."""
    _require(type(body) is dict and set(body) == {"name", "fields", "items"} and type(body["fields"]) is list
             and type(body["items"]) is list and len(body["fields"]) == len(body["items"]),
             "a namedtuple record of the wrong form")
    try:
        cls = namedtuple_type(body["name"], body["fields"])
    except ValueError as refused:
        raise DecodeError(str(refused)) from None
    return cls(*(_decode(item, depth + 1) for item in body["items"]))


def _number(body, convert):
    _require(type(body) is str and len(body) <= MAX_INT_DIGITS, "a number record of the wrong form")
    try:
        return convert(body)
    except ValueError:
        raise DecodeError("a number record that is not a number") from None


def decode(value):
    """The value that `encode` described, rebuilt from plain data. It never runs code, never touches the
    global random state, and raises only DecodeError (a ValueError) for data `encode` would not write:
    an unknown kind, a wrong type or form, nesting deeper than MAX_DEPTH, strings or arrays too large."""
    return _decode(value, 0)


def _decode(value, depth: int):
    if value is None or type(value) is bool:
        return value
    if type(value) is str:
        _require(len(value) <= MAX_STRING_CHARS, "a string too large")
        return value
    _require(type(value) is dict and len(value) >= 1, "not an encoded value")
    _require(depth < MAX_DEPTH, "values nested too deep")
    kind = next(iter(value))
    if kind == "__tensor__":
        return _decode_tensor(value)
    _require(len(value) == 1, "an encoded value with extra keys")
    body = value[kind]
    if kind in ("__tuple__", "__list__"):
        _require(type(body) is list, "a sequence record of the wrong form")
        items = [_decode(item, depth + 1) for item in body]
        return tuple(items) if kind == "__tuple__" else items
    if kind == "__dict__":
        _require(type(body) is dict and all(type(key) is str for key in body), "a dict record of the wrong form")
        return {key: _decode(item, depth + 1) for key, item in body.items()}
    if kind == "__namedtuple__":
        return _decode_namedtuple(body, depth)
    if kind in LEAVES:
        return LEAVES[kind](body)
    raise DecodeError("an unknown encoded kind")


LEAVES = {
    "__int__": lambda body: _number(body, int),
    "__float__": lambda body: _number(body, float),
    "__scalar__": lambda body: _decode_array(body)[()],
    "__ndarray__": _decode_array,
    "__strings__": _decode_strings,
    "__generator__": _decode_generator,
    "__table__": lambda body: Table(_decode_array(body)),
}


def dumps(value) -> str:
    return json.dumps(encode(value))


def loads(text: str):
    """`decode` of JSON text; DecodeError for text that is not JSON or nests too deep for the parser."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise DecodeError("not JSON, or nested too deep") from None
    return decode(data)
