"""Property-based differential tests for chapter 03: reference vs torch (float64 autograd, torch.nn.functional),
central differences and exact arithmetic, and vs every registered alternative (with the exercise's tolerances).

Inputs come from tests/strategies.py: random expression graphs for the Value engine (nodes used twice, ReLU
at exactly 0), layers on values exactly at the kink, logits of ±1000 and beyond, a batch of one, labels at both
ends of the range, and integer and float32 points for the numerical gradient (which promises a float64 copy).
"""
import fractions
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from solutions import ch03_backpropagation as ch03
from tests import strategies as s


def torch_grads(fn, arrays, dout):
    """fn's output and the gradient of sum(output · dout) for each array, by torch.autograd in float64."""
    tensors = [torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout, dtype=torch.float64))
    return out.detach().numpy(), [tensor.grad.numpy() for tensor in tensors]


# ---------------------------------------------------------------- Value

UNARY = ["neg", "relu", "tanh", "exp_tanh", "pow2", "pow3", "sqrt1", "inv1", "rpow", "radd", "rsub", "rmul", "rdiv",
         "div_const", "sub_const"]
BINARY = ["add", "sub", "mul", "div1"]


@st.composite
def programs(draw):
    """A random expression graph over leaves a, b, c: a list of steps, each applying an operation to earlier nodes
    (any node may be used many times, and `x - x` gives an exact 0 for the ReLU that may follow)."""
    leaves = draw(st.lists(st.one_of(st.just(0.0), s.floats(3.0, min_abs=1e-3)), min_size=3, max_size=3))
    steps = []
    for k in range(draw(st.integers(1, 10))):
        available = 3 + k
        if draw(st.booleans()):
            steps.append((draw(st.sampled_from(UNARY)), draw(st.integers(0, available - 1)), None,
                          draw(st.sampled_from([0.5, 2.0, -1.5, 3.0]))))
        else:
            steps.append((draw(st.sampled_from(BINARY)), draw(st.integers(0, available - 1)),
                          draw(st.integers(0, available - 1)), None))
    return leaves, steps


def run_program(steps, nodes):
    """Evaluate the steps on nodes (Values or tensors); the result is the sum of the last three nodes."""
    nodes = list(nodes)
    for op, i, j, c in steps:
        x, y = nodes[i], nodes[j] if j is not None else None
        result = {
            "neg": lambda: -x, "relu": lambda: x.relu(), "tanh": lambda: x.tanh(), "exp_tanh": lambda: x.tanh().exp(),
            "pow2": lambda: x ** 2, "pow3": lambda: x ** 3, "sqrt1": lambda: (x * x + 1) ** 0.5,
            "inv1": lambda: (x * x + 1) ** -1, "rpow": lambda: c ** x.tanh() if c > 0 else 2 ** x.tanh(),
            "radd": lambda: c + x, "rsub": lambda: c - x, "rmul": lambda: c * x, "rdiv": lambda: c / (x * x + 1),
            "div_const": lambda: x / c, "sub_const": lambda: x - c,
            "add": lambda: x + y, "sub": lambda: x - y, "mul": lambda: x * y, "div1": lambda: x / (y * y + 0.5),
        }[op]()
        if op in ("mul", "pow3", "pow2"):
            result = result.tanh() * 3  # keep every value bounded
        nodes.append(result)
    return nodes[-1] + nodes[-2] + nodes[-3]


def _check_value_against(value_class, leaves, steps):
    values = [value_class(x) for x in leaves]
    out = run_program(steps, values)
    out.backward()
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in leaves]
    expected = run_program(steps, tensors)
    expected.backward()
    assert out.data == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    for value, tensor in zip(values, tensors):
        expected_grad = 0.0 if tensor.grad is None else tensor.grad.item()  # None: a leaf the output does not use
        assert value.grad == pytest.approx(expected_grad, rel=1e-9, abs=1e-11)


@given(program=programs())
@example(program=([0.0, 1.5, 1.5], [("relu", 0, None, None), ("sub", 1, 2, None), ("relu", 4, None, None)]))
@example(program=([2.0, -3.0, 0.5], [("mul", 0, 0, None), ("mul", 3, 1, None), ("rsub", 0, None, 3.0)]))
@s.budget(80)
def test_value_matches_torch_autograd(program):
    _check_value_against(ch03.Value, *program)


@pytest.mark.parametrize("alternative", s.alternatives("ch03.Value"))
@given(program=programs())
@s.budget(50)
def test_value_alternatives_match_torch_autograd(alternative, program):
    _check_value_against(alternative, *program)


@pytest.mark.parametrize("cls", [pytest.param(ch03.Value, id="reference"), *s.alternatives("ch03.Value")])
@given(x=st.one_of(st.just(0.0), s.floats(3.0)), p=st.integers(0, 4))
@example(x=0.0, p=0).via("x ** 0 at 0: the power rule would evaluate 0.0 ** -1")
@s.budget(20)
def test_value_integer_powers_match_torch_everywhere(cls, x, p):
    value = cls(x)
    out = value ** p
    out.backward()
    tensor = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (tensor ** p).backward()
    assert value.grad == pytest.approx(tensor.grad.item(), rel=1e-12, abs=1e-300)


# ---------------------------------------------------------------- linear layer

@st.composite
def layer_inputs(draw, exponents=(-2, 3)):
    n, d, m = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return (draw(s.scaled_arrays((n, d), exponents=exponents)), draw(s.scaled_arrays((d, m), exponents=(-1, 1))),
            draw(s.scaled_arrays((m,), exponents=(-1, 1))), draw(s.scaled_arrays((n, m), exponents=(-1, 1))))


@given(inputs=layer_inputs())
@s.budget(50)
def test_linear_forward_and_backward_match_torch(inputs):
    x, W, b, dout = inputs
    out, (dx, dW, db) = torch_grads(lambda x, W, b: F.linear(x, W.T, b), (x, W, b), dout)
    scale = 1e-13 * (1 + np.abs(x).max())
    np.testing.assert_allclose(ch03.linear_forward(x, W, b), out, rtol=1e-12, atol=scale)
    for ours, theirs in zip(ch03.linear_backward(dout, x, W), (dx, dW, db)):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=scale)


@pytest.mark.parametrize("alternative", s.alternatives("ch03.linear_forward"))
@given(inputs=layer_inputs())
@s.budget(30)
def test_linear_forward_alternatives_agree(alternative, inputs):
    x, W, b, _ = inputs
    np.testing.assert_allclose(alternative(x, W, b), ch03.linear_forward(x, W, b), **s.tolerances("ch03.linear_forward"))


@pytest.mark.parametrize("alternative", s.alternatives("ch03.linear_backward"))
@given(inputs=layer_inputs())
@s.budget(30)
def test_linear_backward_alternatives_agree(alternative, inputs):
    x, W, _, dout = inputs
    tol = s.tolerances("ch03.linear_backward")
    tol["atol"] = max(tol["atol"], 1e-13 * (1 + np.abs(x).max()))
    for theirs, ours in zip(alternative(dout, x, W), ch03.linear_backward(dout, x, W)):
        np.testing.assert_allclose(theirs, ours, **tol)


# ---------------------------------------------------------------- activations

kink_shapes = st.one_of(st.tuples(st.integers(1, 8)), s.shapes(1, 4, 1, 4))


@st.composite
def activation_inputs(draw, exponents=(-2, 3)):
    x = draw(s.with_kinks(kink_shapes, exponents=exponents))
    if draw(st.booleans()):
        x.flat[0] = draw(st.sampled_from([1000.0, -1000.0, 40.0, -40.0, 710.0, -710.0]))
    return x, draw(s.scaled_arrays(x.shape, exponents=(-1, 1)))


ACTIVATIONS = {
    "relu": (ch03.relu_forward, ch03.relu_backward, torch.relu, False),
    "sigmoid": (ch03.sigmoid_forward, ch03.sigmoid_backward, torch.sigmoid, True),
    "tanh": (ch03.tanh_forward, ch03.tanh_backward, torch.tanh, True),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(inputs=activation_inputs())
@example(inputs=(np.array([0.0, -0.0, 1000.0, -1000.0]), np.array([1.0, 2.0, 3.0, 4.0]))).via("kinks, ±1000")
@s.budget(40)
def test_activations_match_torch_at_kinks_and_saturation(name, inputs):
    forward, backward, torch_fn, takes_output = ACTIVATIONS[name]
    x, dout = inputs
    out, (dx,) = torch_grads(torch_fn, (x,), dout)
    ours = forward(x)
    assert ours.shape == x.shape and np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, out, rtol=1e-12, atol=1e-300)
    # numpy's and torch's tanh may differ in the last bit, and 1 − out² near saturation magnifies that
    np.testing.assert_allclose(backward(dout, ours if takes_output else x), dx, rtol=1e-8, atol=1e-300)


@given(inputs=activation_inputs())
@s.budget(30)
def test_layer_objects_match_torch_at_the_kink(inputs):
    x, dout = inputs
    for layer, torch_fn in ((ch03.ReLU(), torch.relu), (ch03.Sigmoid(), torch.sigmoid), (ch03.Tanh(), torch.tanh)):
        out, (dx,) = torch_grads(torch_fn, (x,), dout)
        np.testing.assert_allclose(layer.forward(x), out, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(layer.backward(dout), dx, rtol=1e-8, atol=1e-300)
        assert layer.params() == [] and layer.grads() == []


def _activation_alternative_params():
    params = []
    for name in ("relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "tanh_forward",
                 "tanh_backward"):
        for param in s.alternatives(f"ch03.{name}"):
            params.append(pytest.param(name, *param.values, id=f"{name}-{param.id}", marks=param.marks))
    return params


def _activation_args(name, x, dout):
    if name.endswith("forward"):
        return (x,)
    forward = getattr(ch03, name.replace("backward", "forward"))
    return (dout, x) if name == "relu_backward" else (dout, forward(x))


@pytest.mark.parametrize("name, alternative", _activation_alternative_params())
@given(inputs=activation_inputs())
@s.budget(30)
def test_activation_alternatives_agree_on_finite_inputs(name, alternative, inputs):
    args = _activation_args(name, *inputs)
    reference = getattr(ch03, name)
    copies = [arg.copy() for arg in args]
    with np.errstate(over="ignore"):
        theirs = alternative(*copies)
    np.testing.assert_allclose(theirs, reference(*args), **s.tolerances(f"ch03.{name}"))


def _non_finite_params():
    return [pytest.param(name, *param.values, id=f"{name}-{param.id}", marks=param.marks)
            for name in ("relu_forward", "sigmoid_forward", "tanh_forward") for param in s.alternatives(f"ch03.{name}")]


@pytest.mark.parametrize("name, alternative", _non_finite_params())
@given(x=s.non_finite_arrays(kink_shapes))
@example(x=np.array([np.nan, -np.inf, np.inf, 0.0]))
@s.budget(30)
def test_activation_forward_alternatives_agree_on_inf_and_nan(name, alternative, x):
    """The docstrings take any array; the reference follows torch on ±inf and NaN, an alternative must too."""
    with np.errstate(all="ignore"):
        theirs = alternative(x.copy())
        ours = getattr(ch03, name)(x)
    expected = {"relu_forward": torch.relu, "sigmoid_forward": torch.sigmoid, "tanh_forward": torch.tanh}[name](
        torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=0)  # NaN where torch has NaN
    np.testing.assert_allclose(theirs, ours, **s.tolerances(f"ch03.{name}"))


@pytest.mark.parametrize("relu_backward", [pytest.param(ch03.relu_backward, id="reference"),
                                           *s.alternatives("ch03.relu_backward")])
@given(x=s.with_kinks(kink_shapes), dout_value=st.sampled_from([np.inf, -np.inf, 1.0]))
@example(x=np.array([-1.0]), dout_value=np.inf).via("inf · 0 would be NaN")
@s.budget(20)
def test_relu_backward_passes_nothing_where_x_is_not_positive_even_for_infinite_dout(relu_backward, x, dout_value):
    dout = np.full(x.shape, dout_value)
    with np.errstate(invalid="ignore"):
        ours = relu_backward(dout, x)
    _, (dx,) = torch_grads(torch.relu, (x,), dout)
    np.testing.assert_array_equal(ours[x <= 0], 0.0)
    np.testing.assert_array_equal(ours, dx)


# ---------------------------------------------------------------- softmax cross-entropy

@st.composite
def logits_and_labels(draw, magnitude_exponents=(-1, 3)):
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    logits = draw(s.scaled_arrays((n, c), exponents=magnitude_exponents))
    if draw(st.booleans()):
        logits[0, :2] = [1000.0, -1000.0]
    y = np.array(draw(st.lists(st.sampled_from([0, c - 1, c // 2]), min_size=n, max_size=n)), dtype=np.int64)
    return logits, y


@given(case=logits_and_labels())
@example(case=(np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]]), np.array([1, 2]))).via("±1000")
@example(case=(np.array([[3.0, 3.0]]), np.array([1]))).via("a batch of one, equal logits")
@s.budget(50)
def test_softmax_cross_entropy_matches_torch(case):
    logits, y = case
    logits_t = torch.tensor(logits, requires_grad=True)
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(y))
    loss_t.backward()
    loss, dlogits = ch03.softmax_cross_entropy(logits, y)
    assert isinstance(loss, float) and dlogits.shape == logits.shape
    assert loss == pytest.approx(loss_t.item(), rel=1e-12, abs=1e-12)
    np.testing.assert_allclose(dlogits, logits_t.grad.numpy(), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("alternative", s.alternatives("ch03.softmax_cross_entropy"))
@given(case=logits_and_labels())
@s.budget(30)
def test_softmax_cross_entropy_alternatives_agree(alternative, case):
    ours = ch03.softmax_cross_entropy(*case)
    for theirs, expected in zip(alternative(*case), ours):
        np.testing.assert_allclose(theirs, expected, **s.tolerances("ch03.softmax_cross_entropy"))


@given(logits=s.arrays(s.shapes(1, 3, 2, 4), magnitude=1e300), data=st.data())
@example(logits=np.array([[-1e300, 1e300], [1e300, -1e300], [-1e300, 1e300]]), data=None).via("the widest rows")
@example(logits=np.array([[-1e300, 1e300, 0.0, -1e300]] * 3), data=None).via("the widest rows, four classes")
@s.budget(30)
def test_softmax_cross_entropy_is_finite_for_logits_up_to_1e300(logits, data):
    """The docstring's promise: finite for |z| <= 1e300, however far apart (not for every finite float64: the
    exact loss of [[-1e308, 1e308]] with y = [0], 2e308, is beyond float64's largest number)."""
    y = np.zeros(len(logits), dtype=np.int64)
    with np.errstate(all="ignore"):
        loss, dlogits = ch03.softmax_cross_entropy(logits, y)
    assert math.isfinite(loss) and np.all(np.isfinite(dlogits))


# ---------------------------------------------------------------- numerical_gradient and relative_error

@st.composite
def gradient_points(draw):
    """(x, a): a point of any shape and dtype (float64, float32, int64) and the coefficients of
    f(z) = Σ a·z + ½ Σ z² + Σ sin(z), whose gradient is a + z + cos(z)."""
    shape = draw(st.sampled_from([(1,), (3,), (2, 2), (2, 1, 3)]))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]))
    if dtype == np.int64:
        x = draw(s.arrays(shape, dtype=np.int64, elements=st.integers(-5, 5)))
    else:
        x = draw(s.scaled_arrays(shape, exponents=(-1, 0))).astype(dtype)
    return x, draw(s.scaled_arrays(shape, exponents=(0, 0)))


def _f_and_exact(a):
    def f(z):
        assert z.dtype == np.float64, "the function sees the float64 working copy"
        return float(np.sum(a * z) + 0.5 * np.sum(z * z) + np.sum(np.sin(z)))
    return f, lambda x: a + x + np.cos(x)


@given(point=gradient_points(), h=st.sampled_from([None, 1e-4, 1e-5, 1e-6]))
@example(point=(np.array([0]), np.array([-1.0])), h=None).via("an exact gradient of 0: -1 + 0 + cos(0)")
@s.budget(40)
def test_numerical_gradient_matches_the_analytic_gradient_and_torch(point, h):
    x, a = point
    f, exact = _f_and_exact(a)
    before = x.copy()
    grad = ch03.numerical_gradient(f, x) if h is None else ch03.numerical_gradient(f, x, h)
    np.testing.assert_array_equal(x, before)
    assert grad.dtype == np.float64 and grad.shape == x.shape
    x64 = x.astype(np.float64)
    h = h or 1e-5
    atol = h * h + 1e-15 * x.size / h * 50  # the truncation error (order h²) and the rounding error (eps / h)
    np.testing.assert_allclose(grad, exact(x64), rtol=0, atol=atol)
    tensor = torch.tensor(x64, requires_grad=True)
    (torch.sum(torch.tensor(a) * tensor) + 0.5 * torch.sum(tensor * tensor) + torch.sum(torch.sin(tensor))).backward()
    # a gradient check's verdict, except where the gradient itself is about 0 (a = -1, x = 0): there the relative
    # error of two near-zero gradients means nothing (1.7e-11 against 0 is 1.0) and the absolute bound decides
    torch_grad = tensor.grad.numpy()
    assert ch03.relative_error(grad, torch_grad) < 1e-7 or np.max(np.abs(grad - torch_grad)) <= atol


@pytest.mark.parametrize("alternative", s.alternatives("ch03.numerical_gradient"))
@given(point=gradient_points())
@example(point=(np.array([1, 2, 3]), np.zeros(3))).via("int64: x ± h must not round to an integer")
@example(point=(np.array([1.0, 2.0, 3.0], dtype=np.float32), np.zeros(3))).via("float32: nor to a float32")
@s.budget(30)
def test_numerical_gradient_alternatives_agree(alternative, point):
    x, a = point
    f, _ = _f_and_exact(a)
    g = lambda z: f(np.asarray(z, dtype=np.float64))  # noqa: E731  (an alternative may hand f its own dtype)
    ours = ch03.numerical_gradient(g, x)
    theirs = alternative(g, x.copy())
    np.testing.assert_allclose(theirs, ours, **s.tolerances("ch03.numerical_gradient"))


def _exact_relative_error(analytic, numeric):
    a = [fractions.Fraction(float(v)) for v in analytic.ravel()]
    n = [fractions.Fraction(float(v)) for v in numeric.ravel()]
    difference = max(abs(p - q) for p, q in zip(a, n))
    scale = max(abs(p) + abs(q) for p, q in zip(a, n))
    return float(difference / max(scale, fractions.Fraction(np.finfo(np.float64).tiny)))


gradient_pairs = st.one_of(
    st.tuples(st.just((1,)), st.sampled_from([1e-300, 5e-324, 1e-310, 1.0]))
      .flatmap(lambda t: st.tuples(s.arrays(t[0], elements=st.sampled_from([0.0, t[1], -t[1]])),
                                   s.arrays(t[0], elements=st.sampled_from([0.0, t[1], -t[1]])))),
    s.shapes(1, 3, 1, 4).flatmap(lambda shape: st.tuples(s.arrays(shape, magnitude=1e6),
                                                         s.arrays(shape, magnitude=1e6))))


@given(pair=gradient_pairs)
@example(pair=(np.zeros(3), np.zeros(3))).via("two zero gradients")
@example(pair=(np.array([1.0, 2.0]), np.array([-1.0, -2.0]))).via("opposite signs")
@s.budget(50)
def test_relative_error_matches_exact_arithmetic(pair):
    analytic, numeric = pair
    error = ch03.relative_error(analytic, numeric)
    assert isinstance(error, float)
    assert error == pytest.approx(_exact_relative_error(analytic, numeric), rel=1e-15, abs=0)
    assert error == ch03.relative_error(numeric, analytic)


@pytest.mark.parametrize("alternative", s.alternatives("ch03.relative_error"))
@given(pair=gradient_pairs)
@example(pair=(np.array([5e-324]), np.array([0.0]))).via("subnormal: divided by tiny, not by itself")
@s.budget(30)
def test_relative_error_alternatives_agree(alternative, pair):
    np.testing.assert_allclose(alternative(*pair), ch03.relative_error(*pair), **s.tolerances("ch03.relative_error"))


# ---------------------------------------------------------------- two-layer network

@st.composite
def networks(draw):
    n, d, h, c = draw(st.integers(1, 6)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(2, 4))
    shapes = {"W1": (d, h), "b1": (h,), "W2": (h, c), "b2": (c,)}
    params = {name: draw(s.scaled_arrays(shape, exponents=(0, 0))) for name, shape in shapes.items()}
    X = draw(s.with_kinks((n, d), exponents=(0, 1)))
    if draw(st.booleans()):
        params["b1"] = np.zeros(h)  # with zero rows of X: hidden units exactly at ReLU's kink
    y = np.array(draw(st.lists(st.sampled_from([0, c - 1]), min_size=n, max_size=n)), dtype=np.int64)
    return params, X, y


def _torch_network(params, X, y):
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    hidden = torch.relu(torch.tensor(X) @ tensors["W1"] + tensors["b1"])
    loss = F.cross_entropy(hidden @ tensors["W2"] + tensors["b2"], torch.from_numpy(y))
    loss.backward()
    return loss.item(), {name: tensor.grad.numpy() for name, tensor in tensors.items()}


@given(network=networks())
@s.budget(40)
def test_two_layer_network_matches_torch(network):
    loss, grads = ch03.two_layer_loss_and_grads(*network)
    loss_t, grads_t = _torch_network(*network)
    assert loss == pytest.approx(loss_t, rel=1e-12, abs=1e-14)
    for name, grad in grads_t.items():
        assert grads[name].shape == grad.shape
        np.testing.assert_allclose(grads[name], grad, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("alternative", s.alternatives("ch03.two_layer_loss_and_grads"))
@given(network=networks())
@s.budget(30)
def test_two_layer_network_alternatives_agree(alternative, network):
    loss, grads = ch03.two_layer_loss_and_grads(*network)
    alt_loss, alt_grads = alternative(*network)
    tol = s.tolerances("ch03.two_layer_loss_and_grads")
    np.testing.assert_allclose(alt_loss, loss, **tol)
    for name in grads:
        np.testing.assert_allclose(alt_grads[name], grads[name], **tol)


# ---------------------------------------------------------------- Sequential (layer objects)

@st.composite
def layer_stacks(draw):
    """Kinds and widths of a stack of layers, its input (some entries exactly 0) and an upstream gradient."""
    kinds = draw(st.lists(st.sampled_from(["linear", "relu", "sigmoid", "tanh"]), min_size=1, max_size=5))
    widths = [draw(st.integers(1, 4))]
    layers = []
    for kind in kinds:
        if kind == "linear":
            following = draw(st.integers(1, 4))
            layers.append(("linear", draw(s.scaled_arrays((widths[-1], following), exponents=(0, 0))),
                           draw(s.scaled_arrays((following,), exponents=(0, 0)))))
            widths.append(following)
        else:
            layers.append((kind,))
    n = draw(st.integers(1, 4))
    x = draw(s.with_kinks((n, widths[0]), exponents=(0, 1)))
    return layers, x, draw(s.scaled_arrays((n, widths[-1]), exponents=(0, 0)))


def _ours(spec):
    return {"linear": lambda: ch03.Linear(spec[1].copy(), spec[2].copy()), "relu": ch03.ReLU,
            "sigmoid": ch03.Sigmoid, "tanh": ch03.Tanh}[spec[0]]()


def _theirs(spec):
    if spec[0] != "linear":
        return {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}[spec[0]]()
    layer = torch.nn.Linear(*spec[1].shape, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(spec[1].T))
        layer.bias.copy_(torch.tensor(spec[2]))
    return layer


sequential_classes = ([pytest.param(ch03.Sequential, id="reference")] if hasattr(ch03, "Sequential") else []) + \
    s.alternatives("ch03.Sequential")


@pytest.mark.parametrize("sequential", sequential_classes)
@given(stack=layer_stacks())
@s.budget(30)
def test_sequential_matches_torch_nn_sequential(sequential, stack):
    layers, x, grad_out = stack
    ours = sequential(*[_ours(spec) for spec in layers])
    theirs = torch.nn.Sequential(*[_theirs(spec) for spec in layers])
    x_t = torch.tensor(x, requires_grad=True)
    out_t = theirs(x_t)
    out_t.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(ours.forward(x), out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ours.backward(grad_out), x_t.grad.numpy(), rtol=1e-9, atol=1e-13)
    expected_grads = [(p.grad.numpy().T if p.ndim == 2 else p.grad.numpy()) for p in theirs.parameters()]
    assert len(ours.grads()) == len(expected_grads) == len(ours.params())
    for grad, expected in zip(ours.grads(), expected_grads):
        np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-13)
