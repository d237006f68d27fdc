"""The wire format carries exercise values faithfully and refuses everything else."""
import numpy as np
import pytest
import torch

from autograder.learner import wire


@pytest.mark.parametrize("value", [
    None, True, "text", 3, 2**70, 0.1, float("nan"), np.float32(1.5), np.int64(-4),
    np.arange(6.0).reshape(2, 3), np.array([True, False]), np.zeros((0, 3)), np.float32([1, 2]),
    np.array(2.5), np.arange(12.0).reshape(3, 4).T, np.float64(-0.25),
    (1.0, np.ones(2)), [1, [2, 3]], {"a": np.ones(1), "b": (1,)}, wire.Table([0.1, 0.05, 0.0]),
    np.array(["Mitte", "Neukölln", ""]), np.array([["a", "bb"], ["ccc", "é"]]), np.array(["x", "yz"], dtype=object),
    np.array([], dtype="<U1"), np.array([["a"]], dtype=object).reshape(1, 1),
])
def test_round_trip(value):
    assert_same(wire.loads(wire.dumps(value)), value)


def assert_same(back, value, where="value"):
    """back is value: the same type, and the same contents all the way down (containers item by item, arrays with
    their dtype and shape, NaN for NaN)."""
    assert type(back) is type(value), f"{where}: {type(back).__name__} for {type(value).__name__}"
    if isinstance(value, (tuple, list)):
        assert len(back) == len(value), f"{where}: {len(back)} items for {len(value)}"
        for k, (b, v) in enumerate(zip(back, value)):
            assert_same(b, v, f"{where}[{k}]")
    elif isinstance(value, dict):
        assert list(back) == list(value), f"{where}: keys {list(back)} for {list(value)}"
        for key in value:
            assert_same(back[key], value[key], f"{where}[{key!r}]")
    elif isinstance(value, (np.ndarray, np.generic)):
        assert back.dtype == value.dtype and back.shape == value.shape, f"{where}: {back.dtype} {back.shape}"
        assert np.array_equal(back, value, equal_nan=value.dtype.kind in "fc"), f"{where}: {back!r} for {value!r}"
    elif isinstance(value, float) and np.isnan(value):
        assert np.isnan(back), where
    else:
        assert back == value, f"{where}: {back!r} for {value!r}"


def test_assert_same_sees_contents_not_only_types():
    for wrong, right in [((1.0, np.ones(2)), (1.0, np.zeros(2))), ([1, [2, 3]], [1, [2, 4]]), ([1, [2, 3]], [1, [2]]),
                         ({"a": np.ones(1), "b": (1,)}, {"a": np.ones(1), "b": (2,)}),
                         ({"a": np.ones(1)}, {"a": np.ones(1, dtype=np.float32)}),
                         ({"a": np.ones(1)}, {"b": np.ones(1)}), ((np.ones((1, 2)),), (np.ones(2),))]:
        with pytest.raises(AssertionError):
            assert_same(wrong, right)


def test_generators_keep_their_state():
    rng = np.random.default_rng(5)
    rng.normal(size=3)
    back = wire.loads(wire.dumps(rng))
    assert np.array_equal(back.normal(size=4), rng.normal(size=4))


def test_tensors_keep_dtype_and_requires_grad():
    value = torch.arange(4, dtype=torch.float32).requires_grad_()
    back = wire.loads(wire.dumps(value))
    assert back.dtype == torch.float32 and back.requires_grad and torch.equal(back.detach(), value.detach())


@pytest.mark.parametrize("value", [object(), np.array([b"a"]), np.array([object()]), np.array(["a", 1], dtype=object),
                                   {1: 2}, lambda: 0])
def test_refuses_what_it_does_not_carry(value):
    with pytest.raises(wire.EncodeError):
        wire.encode(value)


def test_subclasses_are_carried_as_plain_data():
    class Liar(np.ndarray):
        def __eq__(self, other):
            return True

    back = wire.loads(wire.dumps(np.zeros(3).view(Liar)))
    assert type(back) is np.ndarray and not np.array_equal(back, np.ones(3))
    with pytest.raises(wire.EncodeError):
        class Anything(float):
            pass
        wire.encode(Anything(1.0))


def test_decoding_never_builds_objects():
    with pytest.raises(ValueError):
        wire.decode({"__ndarray__": {"dtype": "|O", "shape": [1], "data": ""}})
    with pytest.raises(ValueError):
        wire.decode({"__pickle__": "gASVAAAAAAAAAAB9lC4="})


def test_a_numpy_string_scalar_arrives_as_a_string():
    assert wire.loads(wire.dumps(np.str_("Neukölln"))) == "Neukölln"


def test_a_forged_string_array_is_refused():
    for forged in ({"__strings__": {"dtype": "<f8", "shape": [1], "items": ["a"]}},
                   {"__strings__": {"dtype": "<U1", "shape": [1], "items": [1]}},
                   {"__strings__": {"dtype": "|O", "shape": [1], "items": [["nested"]]}}):
        with pytest.raises(ValueError):
            wire.decode(forged)


def test_an_object_array_of_numpy_strings_arrives_as_plain_strings():
    back = wire.loads(wire.dumps(np.array([np.str_("a"), np.str_("é")], dtype=object)))
    assert back.dtype == object and [type(item) for item in back] == [str, str] and list(back) == ["a", "é"]


# ---------------------------------------------------------------- namedtuples (a batch as a collate function makes it)

def test_a_namedtuple_comes_back_as_the_same_class_with_its_items():
    Batch = wire.namedtuple_type("Batch", ("x", "y", "ids"))
    value = {"train": Batch(torch.arange(3.0), np.arange(3), [7, (8, None)]), "plain": (1, Batch(None, "y", 2))}
    back = wire.loads(wire.dumps(value))
    assert type(back["train"]) is Batch and type(back["plain"]) is tuple and type(back["plain"][1]) is Batch
    assert torch.equal(back["train"].x, value["train"].x) and back["train"].ids == [7, (8, None)]
    assert_same(back["train"].y, value["train"].y) and back["plain"][1] == Batch(None, "y", 2)
    assert wire.namedtuple_type("Batch", ["x", "y", "ids"]) is Batch  # one class per name and fields
    assert wire.namedtuple_type("Batch", ("x", "y")) is not Batch


def test_a_namedtuple_of_any_class_arrives_as_the_wires_class_of_its_name_and_fields():
    import collections

    Pair = collections.namedtuple("Pair", ["inputs", "mask"])
    back = wire.loads(wire.dumps(Pair(np.ones(2), True)))
    assert type(back) is wire.namedtuple_type("Pair", ("inputs", "mask")) and back._fields == ("inputs", "mask")
    assert_same(back.inputs, np.ones(2)) and back.mask is True


@pytest.mark.parametrize("name, fields", [
    ("os.system", ["a"]), ("Batch", ["import os"]), ("class", ["a"]), ("Batch", ["_private"]), ("Batch", ["a", "a"]),
    ("Batch", [1]), (None, ["a"]), ("B" * 101, ["a"]), ("Batch", [f"f{k}" for k in range(65)]),
])
def test_a_namedtuple_record_of_names_that_are_not_plain_identifiers_is_refused(name, fields):
    record = {"__namedtuple__": {"name": name, "fields": fields, "items": [None] * len(fields)}}
    with pytest.raises(wire.DecodeError):
        wire.decode(record)


def test_a_namedtuple_record_of_the_wrong_form_is_refused():
    for body in ({"name": "Batch", "fields": ["a", "b"], "items": [None]}, {"name": "Batch", "fields": ["a"]},
                 {"name": "Batch", "fields": "a", "items": [None]}, ["Batch", ["a"], [None]],
                 {"name": "Batch", "fields": ["a"], "items": [None], "module": "os"}):
        with pytest.raises(wire.DecodeError):
            wire.decode({"__namedtuple__": body})


def test_decoding_makes_no_more_than_its_share_of_namedtuple_classes(monkeypatch):
    wire.namedtuple_type("Known", ("a",))
    monkeypatch.setattr(wire, "MAX_NAMEDTUPLE_TYPES", len(wire._NAMEDTUPLES))
    assert type(wire.decode({"__namedtuple__": {"name": "Known", "fields": ["a"], "items": [None]}})).__name__ == \
        "Known"
    with pytest.raises(wire.DecodeError, match="kinds of namedtuple"):
        wire.decode({"__namedtuple__": {"name": "Unknown", "fields": ["a"], "items": [None]}})


def test_a_tuple_whose_fields_do_not_name_its_items_is_refused_when_encoded():
    class Liar(tuple):
        _fields = ("a",)

    class Shady(tuple):
        _fields = ("__class__", "b")

    for value in (Liar((1, 2)), Shady((1, 2))):
        with pytest.raises(wire.EncodeError):
            wire.encode(value)
