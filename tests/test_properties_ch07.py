"""Property-based differential tests for chapter 07: conv2d, the reference and every registered alternative,
against torch.nn.functional.conv2d in float64 over batch sizes (0 included), channels, image and kernel shapes,
strides and paddings."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from autograder.learner import registry
from tests import strategies as s


def implementations():
    exercise = registry.get("ch07.conv2d")
    return [pytest.param(fn, id=fn.__name__) for fn in (exercise.reference, *exercise.alternatives)]


@st.composite
def convolutions(draw):
    n, c_in, c_out = draw(st.integers(0, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride, padding = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    h, w = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    assume(h + 2 * padding >= kh and w + 2 * padding >= kw)
    generator = torch.Generator().manual_seed(draw(st.integers(0, 2**31)))
    scale = 10.0 ** draw(st.integers(-3, 3))
    x = torch.randn(n, c_in, h, w, dtype=torch.float64, generator=generator) * scale
    weight = torch.randn(c_out, c_in, kh, kw, dtype=torch.float64, generator=generator)
    bias = torch.randn(c_out, dtype=torch.float64, generator=generator) if draw(st.booleans()) else None
    return x, weight, bias, stride, padding


@pytest.mark.parametrize("fn", implementations())
@s.budget(60)
@given(convolutions())
def test_conv2d_equals_torch(fn, convolution):
    x, weight, bias, stride, padding = convolution
    expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
    got = fn(x.clone(), weight.clone(), bias, stride=stride, padding=padding)
    assert got.shape == expected.shape and got.dtype == torch.float64
    scale = float(x.abs().max()) * float(weight.abs().sum()) if x.numel() else 1.0
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12 * max(scale, 1.0))
