"""Property tests for chapter 06's to_device, reference and every registered alternative: on any nesting of dicts,
lists and tuples holding tensors and other values, moving to torch's "meta" device (a real second device on every
machine) keeps every container's type, keys and order, puts every tensor there with its shape and dtype, and leaves
every other value the very same object."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from solutions import ch06_devices as ch06
from tests import strategies as s

leaves = st.one_of(
    st.builds(lambda shape, dtype: torch.zeros(shape, dtype=dtype), st.lists(st.integers(0, 3), max_size=3),
              st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool])),
    st.integers(), st.text(max_size=5), st.none(), st.floats(allow_nan=False))
batches = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
    st.dictionaries(st.text(max_size=4), inner, max_size=4)), max_leaves=12)


def same_structure(moved, batch):
    if isinstance(batch, torch.Tensor):
        return moved.device.type == "meta" and moved.shape == batch.shape and moved.dtype == batch.dtype
    if isinstance(batch, dict):
        return type(moved) is dict and list(moved) == list(batch) and all(
            same_structure(moved[key], batch[key]) for key in batch)
    if isinstance(batch, (list, tuple)):
        return type(moved) is type(batch) and len(moved) == len(batch) and all(
            same_structure(a, b) for a, b in zip(moved, batch))
    return moved is batch


@pytest.mark.parametrize("fn", [pytest.param(ch06.to_device, id="reference"), *s.alternatives("ch06.to_device")])
@s.budget(60)
@given(batch=batches)
def test_to_device_keeps_the_structure_and_moves_every_tensor(fn, batch):
    assert same_structure(fn(batch, "meta"), batch)
