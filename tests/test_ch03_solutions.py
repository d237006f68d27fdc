"""Chapter 03's references against independent ones: torch.autograd (float64), central differences."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions import ch03_backpropagation as ch03
from solutions.data import digits

EXPRESSIONS = {
    "micrograd's sanity check": (lambda a, b: ((c := a + b) + c + 1 + c + (-a) + ((d := a * b + b ** 3) + d * 2
                                 + (b + a).relu()) * 4 + (b - a).relu()) ** 2 / 2.0 + 10.0 / (c - d), (-4.0, 2.0)),
    "a node used twice": (lambda a, b: a * b + a * a, (-1.5, 4.0)),
    "numbers on either side": (lambda a, b: (1 + a) * (3 - b) / 4 + 2 / b - 5 * a + (a - 1) / 2 - 2 * b, (1.5, -0.5)),
    "powers, exp, tanh": (lambda a, b: (a ** 3 + 2 ** b).tanh() * b.exp() + a ** -2 + a ** 0.5, (0.75, -1.0)),
    "relu on both sides": (lambda a, b: (a * b).relu() + (a - b).relu() * b, (2.0, -3.0)),
    "a deep chain": (lambda a, b: _chain(a, b, 60), (0.3, 1.2)),
}


def _chain(a, b, depth):
    for _ in range(depth):
        a = (a * b + 0.1).tanh() + a * 0.5
    return a


@pytest.mark.parametrize("name", EXPRESSIONS)
def test_value_matches_torch_autograd(name):
    expression, numbers = EXPRESSIONS[name]
    leaves = [ch03.Value(x) for x in numbers]
    out = expression(*leaves)
    out.backward()
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in numbers]
    expected = expression(*tensors)
    expected.backward()
    assert out.data == pytest.approx(expected.item(), rel=1e-12)
    for leaf, tensor in zip(leaves, tensors):
        assert leaf.grad == pytest.approx(tensor.grad.item(), rel=1e-10, abs=1e-12)


def test_value_accumulates_when_a_node_is_used_twice():
    a = ch03.Value(3.0)
    b = a + a
    b.backward()
    assert a.grad == 2.0
    c = ch03.Value(-2.0)
    (c * c * c).backward()
    assert c.grad == pytest.approx(3 * (-2.0) ** 2)


def test_value_relu_at_zero_has_zero_gradient_like_torch():
    a = ch03.Value(0.0)
    a.relu().backward()
    t = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    t.relu().backward()
    assert a.grad == t.grad.item() == 0.0


def random_layer_inputs(seed, n=6, d=5, m=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(d, m)), rng.normal(size=m), rng.normal(size=(n, m))


def torch_forward_and_grads(fn, arrays, dout):
    tensors = [torch.tensor(array, requires_grad=True) for array in arrays]
    out = fn(*tensors)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), [tensor.grad.numpy() for tensor in tensors]


@pytest.mark.parametrize("seed", range(3))
def test_linear_matches_torch(seed):
    x, W, b, dout = random_layer_inputs(seed)
    out, (dx, dW, db) = torch_forward_and_grads(lambda x, W, b: F.linear(x, W.T, b), (x, W, b), dout)
    np.testing.assert_allclose(ch03.linear_forward(x, W, b), out, rtol=1e-12)
    for ours, theirs in zip(ch03.linear_backward(dout, x, W), (dx, dW, db)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, forward, backward, torch_fn, backward_takes_output", [
    ("relu", ch03.relu_forward, ch03.relu_backward, torch.relu, False),
    ("sigmoid", ch03.sigmoid_forward, ch03.sigmoid_backward, torch.sigmoid, True),
    ("tanh", ch03.tanh_forward, ch03.tanh_backward, torch.tanh, True),
])
@pytest.mark.parametrize("seed", range(3))
def test_activations_match_torch(name, forward, backward, torch_fn, backward_takes_output, seed):
    rng = np.random.default_rng(seed)
    x, dout = rng.normal(scale=3, size=(7, 5)), rng.normal(size=(7, 5))
    x[0, :3] = [0.0, 1000.0, -1000.0]
    out, (dx,) = torch_forward_and_grads(torch_fn, (x,), dout)
    ours = forward(x)
    np.testing.assert_allclose(ours, out, rtol=1e-12, atol=1e-300)
    # numpy's and torch's tanh may differ in the last bit, and 1 − out² near saturation magnifies that
    np.testing.assert_allclose(backward(dout, ours if backward_takes_output else x), dx, rtol=1e-8, atol=1e-300)


@pytest.mark.parametrize("seed", range(3))
def test_softmax_cross_entropy_matches_torch(seed):
    rng = np.random.default_rng(seed)
    logits, y = rng.normal(scale=3, size=(8, 5)), rng.integers(0, 5, size=8)
    logits_t = torch.tensor(logits, requires_grad=True)
    loss_t = F.cross_entropy(logits_t, torch.from_numpy(y))  # mean over the batch, like ours
    loss_t.backward()
    loss, dlogits = ch03.softmax_cross_entropy(logits, y)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, logits_t.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_softmax_cross_entropy_is_finite_at_plus_minus_1000():
    logits, y = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]]), np.array([1, 2])
    loss, dlogits = ch03.softmax_cross_entropy(logits, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    assert loss == pytest.approx((2000 + 1 + math.log1p(math.exp(-1))) / 2, rel=1e-12)
    assert loss == pytest.approx(F.cross_entropy(torch.tensor(logits), torch.from_numpy(y)).item(), rel=1e-12)


def test_numerical_gradient_is_central_and_leaves_x_alone():
    x = np.array([[0.3, -1.2], [2.0, 0.7]])
    before = x.copy()
    grad = ch03.numerical_gradient(lambda z: float(np.sum(np.sin(z) * z[::-1])), x)
    np.testing.assert_array_equal(x, before)
    exact = np.cos(x) * x[::-1] + np.sin(x[::-1])
    np.testing.assert_allclose(grad, exact, rtol=1e-8)
    errors = [np.max(np.abs(ch03.numerical_gradient(lambda z: float(np.sum(np.exp(z))), x, h) - np.exp(x)))
              for h in (1e-2, 1e-3)]
    assert 50 < errors[0] / errors[1] < 200, "central differences: the error falls like h²"


def test_relative_error_definition():
    a = np.array([1.0, 2.0])
    assert ch03.relative_error(a, np.array([1.1, 2.0])) == pytest.approx(0.1 / 4)
    assert ch03.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert ch03.relative_error(a, a) == 0.0
    assert ch03.relative_error(a, -a) == 1.0
    b = np.array([3.0, -0.5])
    assert ch03.relative_error(a, b) == ch03.relative_error(b, a) == pytest.approx(ch03.relative_error(1e6 * a, 1e6 * b))


def scalar_loss(forward, dout):
    return lambda value: float(np.sum(forward(value) * dout))


@pytest.mark.parametrize("seed", range(2))
def test_every_layer_passes_a_gradient_check(seed):
    x, W, b, dout = random_layer_inputs(seed)
    dx, dW, db = ch03.linear_backward(dout, x, W)
    checks = [
        (dx, ch03.numerical_gradient(scalar_loss(lambda v: ch03.linear_forward(v, W, b), dout), x)),
        (dW, ch03.numerical_gradient(scalar_loss(lambda v: ch03.linear_forward(x, v, b), dout), W)),
        (db, ch03.numerical_gradient(scalar_loss(lambda v: ch03.linear_forward(x, W, v), dout), b)),
    ]
    z = x @ W
    for forward, backward, uses_output in [(ch03.relu_forward, ch03.relu_backward, False),
                                           (ch03.sigmoid_forward, ch03.sigmoid_backward, True),
                                           (ch03.tanh_forward, ch03.tanh_backward, True)]:
        analytic = backward(dout, forward(z) if uses_output else z)
        checks.append((analytic, ch03.numerical_gradient(scalar_loss(forward, dout), z)))
    y = np.random.default_rng(seed).integers(0, z.shape[1], size=len(z))
    checks.append((ch03.softmax_cross_entropy(z, y)[1],
                   ch03.numerical_gradient(lambda v: ch03.softmax_cross_entropy(v, y)[0], z)))
    for analytic, numeric in checks:
        assert ch03.relative_error(analytic, numeric) < 1e-8


def torch_two_layer_loss(params, X, y):
    hidden = torch.relu(X @ params["W1"] + params["b1"])
    return F.cross_entropy(hidden @ params["W2"] + params["b2"], y)


@pytest.mark.parametrize("seed", range(3))
def test_two_layer_network_matches_torch(seed):
    rng = np.random.default_rng(seed)
    params = ch03.init_two_layer(6, 9, 4, rng)
    params = {name: value + 0.1 * rng.normal(size=value.shape) for name, value in params.items()}
    X, y = rng.normal(size=(12, 6)), rng.integers(0, 4, size=12)
    loss, grads = ch03.two_layer_loss_and_grads(params, X, y)
    tensors = {name: torch.tensor(value, requires_grad=True) for name, value in params.items()}
    loss_t = torch_two_layer_loss(tensors, torch.tensor(X), torch.from_numpy(y))
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    for name in params:
        np.testing.assert_allclose(grads[name], tensors[name].grad.numpy(), rtol=1e-9, atol=1e-13)


def test_init_two_layer_shapes_scales_and_dtype():
    params = ch03.init_two_layer(400, 300, 10, np.random.default_rng(0), dtype=np.float32)
    assert {name: value.shape for name, value in params.items()} == \
        {"W1": (400, 300), "b1": (300,), "W2": (300, 10), "b2": (10,)}
    assert all(value.dtype == np.float32 for value in params.values())
    assert params["W1"].std() == pytest.approx(math.sqrt(2 / 400), rel=0.02)
    assert params["W2"].std() == pytest.approx(math.sqrt(1 / 300), rel=0.05)
    assert not params["b1"].any() and not params["b2"].any()


def train_from_scratch(X, y, params, lr, n_epochs, batch_size, rng):
    """Mini-batch SGD with the chapter's network, as the notebook trains it."""
    for _ in range(n_epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            batch = order[start:start + batch_size]
            _, grads = ch03.two_layer_loss_and_grads(params, X[batch], y[batch])
            params = {name: params[name] - lr * grads[name] for name in params}
    return params


def train_with_torch(X, y, params, lr, n_epochs, batch_size, rng):
    tensors = [torch.tensor(params[name], requires_grad=True) for name in ("W1", "b1", "W2", "b2")]
    optimizer = torch.optim.SGD(tensors, lr=lr)
    X_t, y_t = torch.tensor(X), torch.from_numpy(y)
    for _ in range(n_epochs):
        for batch in torch.from_numpy(rng.permutation(len(y))).split(batch_size):
            optimizer.zero_grad()
            torch_two_layer_loss(dict(zip(("W1", "b1", "W2", "b2"), tensors)), X_t[batch], y_t[batch]).backward()
            optimizer.step()
    return {name: tensor.detach().numpy() for name, tensor in zip(("W1", "b1", "W2", "b2"), tensors)}


def test_training_on_digits_matches_torch_and_beats_chance_by_far():
    X_train, X_test, y_train, y_test = digits()
    mean_image = X_train.mean(axis=0)  # the notebook's recipe: centred pixels, lr 0.2, 30 epochs of batches of 64
    X_train, X_test = X_train - mean_image, X_test - mean_image
    start = ch03.init_two_layer(64, 128, 10, np.random.default_rng(0))
    ours = train_from_scratch(X_train, y_train, start, 0.2, 30, 64, np.random.default_rng(1))
    theirs = train_with_torch(X_train, y_train, start, 0.2, 30, 64, np.random.default_rng(1))
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-7, atol=1e-9)
    scores = ch03.relu_forward(X_test @ ours["W1"] + ours["b1"]) @ ours["W2"] + ours["b2"]
    assert np.mean(scores.argmax(axis=1) == y_test) >= 0.95


def test_nothing_is_changed_in_place():
    x, W, b, dout = random_layer_inputs(0)
    y = np.array([0, 1, 2, 3, 0, 1])
    params = ch03.init_two_layer(5, 4, 4, np.random.default_rng(0))
    inputs = [x, W, b, dout, y, *params.values()]
    copies = [array.copy() for array in inputs]
    ch03.linear_forward(x, W, b)
    ch03.linear_backward(dout, x, W)
    for forward, backward in [(ch03.relu_forward, ch03.relu_backward), (ch03.sigmoid_forward, ch03.sigmoid_backward),
                              (ch03.tanh_forward, ch03.tanh_backward)]:
        backward(dout, forward(x @ W))
    ch03.softmax_cross_entropy(dout, y)
    ch03.two_layer_loss_and_grads(params, x, y)
    ch03.relative_error(dout, dout + 1)
    for array, copy in zip(inputs, copies):
        np.testing.assert_array_equal(array, copy)
