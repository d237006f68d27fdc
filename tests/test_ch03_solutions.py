"""Chapter 03's references against independent ones: torch.autograd (float64), central differences."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from solutions import ch03_backpropagation as ch03
from solutions.data import digits

EXPRESSIONS = {
    "micrograd's sanity check": (lambda a, b: ((c := a + b) + c + 1 + c + (-a) + ((d := a * b + b ** 3) + d * 2
                                 + (b + a).relu()) * 4 + (b - a).relu()) ** 2 / 2.0 + 10.0 / (c - d), (-4.0, 2.0)),
    "a node used twice": (lambda a, b: a * b + a * a, (-1.5, 4.0)),
    "numbers on either side": (lambda a, b: (1 + a) * (3 - b) / 4 + 2 / b - 5 * a + (a - 1) / 2 - 2 * b, (1.5, -0.5)),
    "powers, exp, tanh": (lambda a, b: (a ** 3 + 2 ** b).tanh() * b.exp() + a ** -2 + a ** 0.5, (0.75, -1.0)),
    "relu on both sides": (lambda a, b: (a * b).relu() + (a - b).relu() * b, (2.0, -3.0)),
    "relu at exactly 0": (lambda a, b: a.relu() * b + (b - 1.5).relu() * 2 + (a - b).relu(), (0.0, 1.5)),
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


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.float32])
def test_numerical_gradient_works_on_a_float64_copy_of_an_integer_or_float32_x(dtype):
    """The docstring's promise: x ± h is formed in float64 (an integer x cannot hold it, a float32 one rounds it
    to 7 digits) and the gradient is float64, whatever x's dtype."""
    x = np.array([[1, -2], [3, 0]], dtype=dtype)
    seen = []
    grad = ch03.numerical_gradient(lambda z: seen.append(z.dtype) or float(np.sum(z ** 3) + z[0, 0] * z[1, 1]), x)
    assert grad.dtype == np.float64 and set(seen) == {np.dtype(np.float64)}
    exact = 3.0 * x.astype(np.float64) ** 2 + np.array([[x[1, 1], 0], [0, x[0, 0]]])
    np.testing.assert_allclose(grad, exact, rtol=1e-8, atol=1e-8)
    assert x.dtype == dtype


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


def notebook_splits():
    """The notebook's data: 20 % of the training images held out (stratified) for validation, pixels centred
    by the mean image of the rest."""
    X_train, X_test, y_train, y_test = digits()
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.2, stratify=y_train, random_state=0)
    mean_image = X_fit.mean(axis=0)
    return X_fit - mean_image, X_val - mean_image, X_test - mean_image, y_fit, y_val, y_test


def test_training_on_digits_matches_torch():
    X_fit, _, _, y_fit, _, _ = notebook_splits()  # the notebook's recipe: lr 0.2, batches of 64
    start = ch03.init_two_layer(64, 128, 10, np.random.default_rng(0))
    ours = train_from_scratch(X_fit, y_fit, start, 0.2, 10, 64, np.random.default_rng(1))
    theirs = train_with_torch(X_fit, y_fit, start, 0.2, 10, 64, np.random.default_rng(1))
    for name in ours:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-7, atol=1e-9)


def test_the_epoch_chosen_on_validation_beats_chance_by_far_on_test():
    """The notebook's headline: the test accuracy of the network of the epoch with the best validation accuracy."""
    X_fit, X_val, X_test, y_fit, y_val, y_test = notebook_splits()
    rng = np.random.default_rng(0)
    params, best = ch03.init_two_layer(64, 128, 10, rng), (-1.0, None)
    for _ in range(60):
        params = train_from_scratch(X_fit, y_fit, params, 0.2, 1, 64, rng)
        accuracy = np.mean(scores_of(params, X_val).argmax(axis=1) == y_val)
        if accuracy > best[0]:
            best = accuracy, params
    assert best[0] >= 0.95
    assert np.mean(scores_of(best[1], X_test).argmax(axis=1) == y_test) >= 0.95


def scores_of(params, X):
    return ch03.relu_forward(X @ params["W1"] + params["b1"]) @ params["W2"] + params["b2"]


# ---------------------------------------------------------------- layers as objects, Sequential

ARCHITECTURES = {
    "Linear, ReLU, Linear": ((6, 8, 3), ("relu",)),
    "Linear, Tanh, Linear, Sigmoid, Linear": ((5, 7, 4, 2), ("tanh", "sigmoid")),
    "Linear, ReLU, Linear, ReLU, Linear": ((64, 32, 16, 10), ("relu", "relu")),
    "one Linear": ((4, 3), ()),
}
OURS = {"relu": ch03.ReLU, "sigmoid": ch03.Sigmoid, "tanh": ch03.Tanh}
THEIRS = {"relu": torch.nn.ReLU, "sigmoid": torch.nn.Sigmoid, "tanh": torch.nn.Tanh}


def both_networks(widths, activations, rng):
    """Our Sequential and torch's nn.Sequential (float64) with the same weights: Linear layers of the widths,
    each followed by the next activation."""
    ours, theirs = [], []
    for i, (n_in, n_out) in enumerate(zip(widths, widths[1:])):
        layer = ch03.Linear(rng.normal(size=(n_in, n_out)) / math.sqrt(n_in), np.zeros(n_out))
        module = torch.nn.Linear(n_in, n_out).double()
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(layer.W.T))
            module.bias.copy_(torch.from_numpy(layer.b))
        ours.append(layer)
        theirs.append(module)
        if i < len(activations):
            ours.append(OURS[activations[i]]())
            theirs.append(THEIRS[activations[i]]())
    return ch03.Sequential(*ours), torch.nn.Sequential(*theirs)


def torch_parameter_grads(network):
    """Each parameter's gradient in the course's layout: a weight (M, D) as (D, M), a bias as it is."""
    return [p.grad.numpy().T for p in network.parameters()]


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("seed", range(2))
def test_sequential_matches_torch_nn_sequential(name, seed):
    widths, activations = ARCHITECTURES[name]
    rng = np.random.default_rng(seed)
    ours, theirs = both_networks(widths, activations, rng)
    x, dout = rng.normal(size=(9, widths[0])), rng.normal(size=(9, widths[-1]))
    x[0] = 0.0  # with zero biases, every unit's input is exactly 0 for this row: ReLU's kink, relu'(0) = 0
    out = ours.forward(x)
    dx = ours.backward(dout)
    x_t = torch.tensor(x, requires_grad=True)
    out_t = theirs(x_t)
    out_t.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-13)
    theirs_grads = torch_parameter_grads(theirs)
    assert [g.shape for g in ours.grads()] == [g.shape for g in theirs_grads] == [p.shape for p in ours.params()]
    for g, g_t in zip(ours.grads(), theirs_grads):
        np.testing.assert_allclose(g, g_t, rtol=1e-10, atol=1e-13)


def test_relu_layer_at_exactly_zero_passes_no_gradient_like_torch():
    x = np.array([[-1.0, 0.0, 2.0], [0.0, 0.0, -0.0]])
    layer = ch03.ReLU()
    layer.forward(x)
    x_t = torch.tensor(x, requires_grad=True)
    torch.relu(x_t).backward(torch.ones_like(x_t))
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), x_t.grad.numpy())
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])


def test_params_are_the_layers_own_arrays_and_an_optimizer_in_place_trains_like_torch_sgd():
    """The interface chapter 04's optimizers rely on: params() are the arrays themselves, grads() match them."""
    X_fit, _, _, y_fit, _, _ = notebook_splits()
    ours, theirs = both_networks((64, 32, 16, 10), ("relu", "relu"), np.random.default_rng(0))
    layers_own = [p for layer in ours.layers for p in layer.params()]
    assert all(a is b for a, b in zip(ours.params(), layers_own)) and len(ours.params()) == len(layers_own) == 6
    optimizer = torch.optim.SGD(theirs.parameters(), lr=0.2)
    X_t, y_t = torch.from_numpy(X_fit), torch.from_numpy(y_fit)
    order = np.random.default_rng(1).permutation(len(y_fit))
    for start in range(0, len(order), 64):  # one epoch in batches of 64, as the notebook trains
        batch = order[start:start + 64]
        _, dscores = ch03.softmax_cross_entropy(ours.forward(X_fit[batch]), y_fit[batch])
        ours.backward(dscores)
        for p, g in zip(ours.params(), ours.grads()):
            p -= 0.2 * g
        optimizer.zero_grad()
        F.cross_entropy(theirs(X_t[batch]), y_t[batch]).backward()
        optimizer.step()
    for p, p_t in zip(ours.params(), theirs.parameters()):
        np.testing.assert_allclose(p, p_t.detach().numpy().T, rtol=1e-8, atol=1e-10)


def test_the_graders_torch_layers_compute_what_the_chapters_layers_compute():
    """The check of ch03.Sequential runs it on layers computed by torch (drivers.through_layers): on the same
    weights, they must give what a Sequential of the chapter's own layers gives."""
    from autograder.learner import drivers, registry

    exercise = registry.get("ch03.Sequential")
    kinds = {"relu": ch03.ReLU, "sigmoid": ch03.Sigmoid, "tanh": ch03.Tanh}
    for case in exercise.cases:
        args = case.make_args()
        out, grads, dx, own = drivers.through_layers(ch03.Sequential, args)
        layers = [ch03.Linear(spec["W"].copy(), spec["b"].copy()) if spec["kind"] == "linear" else kinds[spec["kind"]]()
                  for spec in args["layers"]]
        network = ch03.Sequential(*layers)
        np.testing.assert_allclose(out, network.forward(args["x"]), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(dx, network.backward(args["grad_out"]), rtol=1e-9, atol=1e-13)
        assert own and len(grads) == len(network.grads())
        for g, expected in zip(grads, network.grads()):
            np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-13)


def test_the_notebook_gives_the_solutions_code_verbatim():
    """init_two_layer and the layer classes are given code in the notebook (a learner's copy has no solutions
    module to import them from): each must be the solutions' source, word for word."""
    import inspect

    import nbformat

    from autograder.instructor import notebooks

    notebook = nbformat.read(notebooks.chapter_notebook("ch03"), as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    for obj in (ch03.init_two_layer, ch03.Linear, ch03.ReLU, ch03.Sigmoid, ch03.Tanh):
        assert inspect.getsource(obj).rstrip() in code, f"the notebook's {obj.__name__} differs from solutions/"
    assert "from solutions.ch03" not in code and "import ch03" not in code


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
