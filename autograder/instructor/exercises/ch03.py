"""Chapter 03 exercises: a scalar autograd engine, layer forward and backward passes, gradient checking,
the backward pass of a two-layer network, and a Sequential that chains layer objects."""
import functools
import itertools
import math
import types

import numpy as np

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch03_backpropagation as ref
from solutions.data import digits

# What these exercises ask you to write without (backpropagation by hand: no autograd): see autograder/learner/forbidden.py.
AUTOGRAD = ("torch",)


def _random(*shape, seed, scale=1.0):
    return np.random.default_rng(seed).normal(scale=scale, size=shape)


# ---------------------------------------------------------------- Value (a class exercise)

def _expression(expression, **leaves):
    return lambda: {"expression": expression, "leaves": dict(leaves)}


def _chain(depth):
    expression = "a"
    for _ in range(depth):
        expression = f"({expression} * b + 0.1).tanh()"
    return expression


def _value_variant(**methods):
    """A copy of the reference Value class with some methods replaced by wrong ones.

    Every method of the copy, the reference's included, sees the copy under the name `Value`, so
    all the nodes an expression builds belong to the copy (a plain subclass would build reference
    nodes inside the reference's operators, and a wrong method would never run on them).
    """
    namespace = dict(vars(ref))
    body = {}
    for name, attribute in {**vars(ref.Value), **methods}.items():
        if isinstance(attribute, types.FunctionType):
            attribute = types.FunctionType(attribute.__code__, namespace, attribute.__name__,
                                           attribute.__defaults__, attribute.__closure__)
        if name not in ("__dict__", "__weakref__"):
            body[name] = attribute
    namespace["Value"] = type("Value", (), body)
    return namespace["Value"]


def _mul_overwriting(self, other):
    cls = type(self)
    other = other if isinstance(other, cls) else cls(other)
    out = cls(self.data * other.data, (self, other), "*")

    def _backward():
        self.grad = other.data * out.grad
        other.grad = self.data * out.grad
    out._backward = _backward
    return out


def _mul_local_gradients_swapped(self, other):
    cls = type(self)
    other = other if isinstance(other, cls) else cls(other)
    out = cls(self.data * other.data, (self, other), "*")

    def _backward():
        self.grad += self.data * out.grad
        other.grad += other.data * out.grad
    out._backward = _backward
    return out


def _pow_exponent_not_lowered(self, exponent):
    out = type(self)(self.data ** exponent, (self,), f"**{exponent:g}")

    def _backward():
        self.grad += exponent * self.data ** exponent * out.grad
    out._backward = _backward
    return out


def _relu_passing_everything(self):
    out = type(self)(self.data if self.data > 0 else 0.0, (self,), "relu")

    def _backward():
        self.grad += out.grad
    out._backward = _backward
    return out


def _relu_gradient_at_zero(self):
    out = type(self)(self.data if self.data > 0 else 0.0, (self,), "relu")

    def _backward():
        self.grad += (self.data >= 0) * out.grad
    out._backward = _backward
    return out


def _tanh_derivative_from_input(self):
    out = type(self)(math.tanh(self.data), (self,), "tanh")

    def _backward():
        self.grad += (1 - self.data ** 2) * out.grad
    out._backward = _backward
    return out


def _rsub_swapped(self, other):
    return self - other


def _rtruediv_swapped(self, other):
    return self / other


def _backward_without_seed(self):
    order, visited = [], set()

    def visit(node):
        if node not in visited:
            visited.add(node)
            for child in node._prev:
                visit(child)
            order.append(node)
    visit(self)
    for node in reversed(order):
        node._backward()


def _backward_not_reversed(self):
    order, visited = [], set()

    def visit(node):
        if node not in visited:
            visited.add(node)
            for child in node._prev:
                visit(child)
            order.append(node)
    visit(self)
    self.grad = 1.0
    for node in order:
        node._backward()


def _backward_depth_first(self):
    """Calls each node's _backward the first time a depth-first walk from the output meets it,
    before every node that uses it has passed its gradient on."""
    visited = set()

    def propagate(node):
        if node not in visited:
            visited.add(node)
            node._backward()
            for child in node._prev:
                propagate(child)
    self.grad = 1.0
    propagate(self)


class _ValueWithOwnRules:
    """A correct Value written differently: each operation stores its local derivatives as numbers
    when it runs forward, subtraction and division have rules of their own, and backward orders
    the graph with Kahn's algorithm (count each node's users, release it when all have run)."""

    def __init__(self, data, _children=(), _op=""):
        self.data, self.grad = float(data), 0.0
        self._backward, self._prev, self._op = (lambda: None), tuple(_children), _op

    @classmethod
    def _wrap(cls, x):
        return x if isinstance(x, cls) else cls(x)

    def _node(self, data, children, op, local_grads):
        out = _ValueWithOwnRules(data, children, op)

        def _backward():
            for child, local in zip(children, local_grads):
                child.grad += local * out.grad
        out._backward = _backward
        return out

    def __add__(self, other):
        other = self._wrap(other)
        return self._node(self.data + other.data, (self, other), "+", (1.0, 1.0))

    def __radd__(self, other):
        return self._wrap(other) + self

    def __sub__(self, other):
        other = self._wrap(other)
        return self._node(self.data - other.data, (self, other), "-", (1.0, -1.0))

    def __rsub__(self, other):
        return self._wrap(other) - self

    def __mul__(self, other):
        other = self._wrap(other)
        return self._node(self.data * other.data, (self, other), "*", (other.data, self.data))

    def __rmul__(self, other):
        return self._wrap(other) * self

    def __truediv__(self, other):
        other = self._wrap(other)
        return self._node(self.data / other.data, (self, other), "/",
                          (1 / other.data, -self.data / other.data ** 2))

    def __rtruediv__(self, other):
        return self._wrap(other) / self

    def __neg__(self):
        return self._node(-self.data, (self,), "neg", (-1.0,))

    def __pow__(self, p):  # x ** 0 is the constant 1: local derivative 0, without computing 0.0 ** -1
        return self._node(self.data ** p, (self,), "**", (p * self.data ** (p - 1) if p != 0 else 0.0,))

    def __rpow__(self, base):
        out_data = base ** self.data
        return self._node(out_data, (self,), "**", (out_data * math.log(base),))

    def relu(self):
        return self._node(max(self.data, 0.0), (self,), "relu", (1.0 if self.data > 0 else 0.0,))

    def tanh(self):
        t = math.tanh(self.data)
        return self._node(t, (self,), "tanh", (1 - t * t,))

    def exp(self):
        e = math.exp(self.data)
        return self._node(e, (self,), "exp", (e,))

    def backward(self):
        nodes, stack = {self}, [self]
        while stack:
            for child in stack.pop()._prev:
                if child not in nodes:
                    nodes.add(child)
                    stack.append(child)
        users = dict.fromkeys(nodes, 0)
        for node in nodes:
            for child in node._prev:
                users[child] += 1
        self.grad = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            node._backward()
            for child in node._prev:
                users[child] -= 1
                if users[child] == 0:
                    ready.append(child)


register(Exercise(
    id="ch03.Value", forbids=AUTOGRAD, points=4, reference=ref.Value, call=drivers.autograd_expression, outputs=("value", "grads"),
    cases=(
        Case("sum and product", _expression("(a + b) * c", a=2.0, b=-3.0, c=0.5)),
        Case("a node used twice", _expression("a * b + a", a=-1.5, b=4.0)),
        Case("plain numbers on either side", _expression("(1 + a) * (3 - b) / 4 + 2 / b - 5 * a", a=1.5, b=-0.5)),
        Case("powers, exp and tanh", _expression("(a ** 3 + 2 ** b).tanh() * b.exp() + a ** -2", a=0.75, b=-1.0)),
        Case("relu on both sides of 0", _expression("(a * b).relu() + (a - b).relu() * b + (a + b + 0.5).relu() * a",
                                                    a=2.0, b=-3.0)),  # -0.5: a threshold at -1 would pass it
        Case("relu at exactly 0", _expression("a.relu() * b + (b - c).relu() * 2 + (a - b).relu()", a=0.0, b=1.5,
                                             c=1.5)),
        Case("a power of 0 at 0: x ** 0 is 1, its gradient 0 (the power rule would divide by 0)",
             _expression("a ** 0 * b + b ** 0 * a + (a + b) ** 1", a=0.0, b=2.5)),
        Case("a shared subexpression", _expression("(c := a * b + 1) * c.tanh() + c", a=0.5, b=-1.5)),
        Case("micrograd's test expression", _expression(
            "((c := a + b) + c + 1 + c + (-a) + ((d := a * b + b ** 3) + d * 2 + (b + a).relu()) * 4"
            " + (b - a).relu()) ** 2 / 2.0", a=-4.0, b=2.0), hidden=True),
        Case("numbers everywhere", _expression("1 - a + 1 / a + 2 ** a + (a - 1) / 2 - a / 3 * 0.5 + 3 ** -a",
                                               a=0.8), hidden=True),
        Case("a chain 40 operations deep", _expression(_chain(40), a=0.3, b=1.2), hidden=True),
        Case("relu of terms that cancel to 0", _expression("(a - a).relu() * b + (a * 0).relu()", a=1.25, b=3.0),
             hidden=True),
        Case("one node feeding many", _expression("(c := a.exp()) * c * c + c / (c + 1) - (c - 2).relu()", a=0.9),
             hidden=True),
    ),
    mistakes=(
        Mistake("gradient overwritten instead of accumulated", "A node used twice gets a gradient from each use: "
                "`self.grad += ...` in every _backward, never `self.grad = ...`.",
                _value_variant(__mul__=_mul_overwriting)),
        Mistake("output gradient not seeded with 1", "backward() starts with self.grad = 1.0 (∂out/∂out = 1); "
                "from 0, every gradient stays 0.", _value_variant(backward=_backward_without_seed)),
        Mistake("topological order not reversed", "The list is built children first; call _backward from the "
                "output down: `for node in reversed(order)`.", _value_variant(backward=_backward_not_reversed)),
        Mistake("_backward called before every use of a node is done", "A depth-first walk from the output reaches "
                "a shared node before all the nodes that use it have added their share to its grad. Sort the graph "
                "first (each node after everything it was computed from), then run _backward in reverse order.",
                _value_variant(backward=_backward_depth_first)),
        Mistake("product rule with the local gradients swapped", "For out = a · b, ∂out/∂a = b and ∂out/∂b = a: "
                "self.grad += other.data * out.grad.", _value_variant(__mul__=_mul_local_gradients_swapped)),
        Mistake("__rsub__ with the operands swapped", "`3 - a` calls a.__rsub__(3), which must compute 3 − a "
                "(other − self), not a − 3.", _value_variant(__rsub__=_rsub_swapped)),
        Mistake("__rtruediv__ with the operands swapped", "`2 / a` calls a.__rtruediv__(2), which must compute "
                "2 / a (other / self), not a / 2.", _value_variant(__rtruediv__=_rtruediv_swapped)),
        Mistake("power rule without lowering the exponent", "d/dx xⁿ = n·xⁿ⁻¹: `exponent * self.data ** "
                "(exponent - 1)`.", _value_variant(__pow__=_pow_exponent_not_lowered)),
        Mistake("ReLU passes the gradient where x < 0", "ReLU's derivative is 1 where its input is > 0 and 0 "
                "elsewhere: multiply out.grad by (self.data > 0).", _value_variant(relu=_relu_passing_everything)),
        Mistake("ReLU passes the gradient at x = 0", "At exactly 0 the course, like torch, takes ReLU's derivative "
                "as 0: multiply by (self.data > 0), not (self.data >= 0).", _value_variant(relu=_relu_gradient_at_zero)),
        Mistake("tanh's derivative computed from its input", "tanh′(x) = 1 − tanh(x)²: use the output, "
                "1 − out.data ** 2, not 1 − x².", _value_variant(tanh=_tanh_derivative_from_input)),
    ),
    alternatives=(_ValueWithOwnRules,),
))


# ---------------------------------------------------------------- linear_forward

def _linear_args(n, d, m, seed, scale=1.0):
    def make():
        rng = np.random.default_rng(seed)
        return {"x": rng.normal(scale=scale, size=(n, d)), "W": rng.normal(size=(d, m)), "b": rng.normal(size=m)}
    return make


def _linear_by_hand():
    return {"x": np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0]]),
            "W": np.array([[1.0, -1.0], [0.5, 2.0], [-2.0, 0.0]]), "b": np.array([0.25, -1.0])}


def _linear_weights_transposed(x, W, b):
    return x @ W.T + b


def _linear_without_bias(x, W, b):
    return x @ W


def _linear_bias_down_the_batch(x, W, b):
    return x @ W + b[:, None]


def _linear_dot(x, W, b):
    return np.dot(x, W) + b[np.newaxis, :]


def _linear_einsum(x, W, b):
    return np.einsum("nd,dm->nm", x, W) + b


register(Exercise(
    id="ch03.linear_forward", points=1, reference=ref.linear_forward,
    cases=(
        Case("by hand: 2 samples, 3 features, 2 outputs", _linear_by_hand),
        Case("square: N = D = M = 3", _linear_args(3, 3, 3, seed=1)),
        Case("a batch of one", _linear_args(1, 4, 2, seed=2)),
        Case("random, 64 x 20 -> 10", _linear_args(64, 20, 10, seed=3), hidden=True),
        Case("large inputs", _linear_args(8, 5, 4, seed=4, scale=1e3), hidden=True),
    ),
    mistakes=(
        Mistake("weights transposed", "With x: (N, D) and W: (D, M), out = x @ W; x @ W.T only runs when D = M.",
                _linear_weights_transposed),
        Mistake("bias forgotten", "The layer is x W + b: add b (broadcast to every row).", _linear_without_bias),
        Mistake("bias added down the batch", "b has one entry per output (column): `+ b` broadcasts it to every "
                "row; b[:, None] adds it down the samples instead.", _linear_bias_down_the_batch),
    ),
    alternatives=(_linear_dot, _linear_einsum),
))


# ---------------------------------------------------------------- linear_backward

def _linear_backward_args(n, d, m, seed):
    def make():
        rng = np.random.default_rng(seed)
        return {"dout": rng.normal(size=(n, m)), "x": rng.normal(size=(n, d)), "W": rng.normal(size=(d, m))}
    return make


def _linear_backward_by_hand():
    return {"dout": np.array([[1.0, -2.0], [0.5, 3.0]]), **{k: v for k, v in _linear_by_hand().items() if k != "b"}}


def _linear_backward_zero_upstream():
    args = _linear_backward_args(5, 3, 2, seed=15)()
    return {**args, "dout": np.zeros((5, 2))}


def _db_not_summed(dout, x, W):
    return dout @ W.T, x.T @ dout, dout


def _db_averaged(dout, x, W):
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)


def _db_wrong_axis(dout, x, W):
    return dout @ W.T, x.T @ dout, dout.sum(axis=1)


def _dW_transposed(dout, x, W):
    return dout @ W.T, dout.T @ x, dout.sum(axis=0)


def _dx_without_transpose(dout, x, W):
    return dout @ W, x.T @ dout, dout.sum(axis=0)


def _divided_by_batch_again(dout, x, W):
    n = len(x)
    return dout @ W.T, x.T @ dout / n, dout.sum(axis=0) / n


def _linear_backward_loops(dout, x, W):
    n, d = x.shape
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros(W.shape[1])
    for i in range(n):
        dx[i] = W @ dout[i]
        dW += np.outer(x[i], dout[i])
        db += dout[i]
    return dx, dW, db


def _linear_backward_einsum(dout, x, W):
    return np.einsum("nm,dm->nd", dout, W), np.einsum("nd,nm->dm", x, dout), np.ones(len(x)) @ dout


register(Exercise(
    id="ch03.linear_backward", forbids=AUTOGRAD, points=2, reference=ref.linear_backward, outputs=("dx", "dW", "db"),
    cases=(
        Case("by hand: 2 samples, 3 features, 2 outputs", _linear_backward_by_hand),
        Case("square: N = D = M = 3", _linear_backward_args(3, 3, 3, seed=11)),
        Case("a batch of one", _linear_backward_args(1, 4, 2, seed=12)),
        Case("random, 64 x 20 -> 10", _linear_backward_args(64, 20, 10, seed=13), hidden=True),
        Case("zero upstream gradient", _linear_backward_zero_upstream, hidden=True),
    ),
    mistakes=(
        Mistake("bias gradient not summed over the batch", "b is added to every row, so its gradient collects "
                "every row's: db = dout.sum(axis=0), shape (M,).", _db_not_summed),
        Mistake("bias gradient averaged over the batch", "Sum, don't average: the 1/N of a mean loss is already in "
                "dout.", _db_averaged),
        Mistake("bias gradient summed over the wrong axis", "Sum over the samples, axis 0: db has one entry per "
                "output.", _db_wrong_axis),
        Mistake("transposed weight gradient", "dW has W's shape (D, M): x.T @ dout, not dout.T @ x.", _dW_transposed),
        Mistake("input gradient without transposing W", "out = x W, so dx = dout Wᵀ: dout @ W.T, shape (N, D).",
                _dx_without_transpose),
        Mistake("gradients divided by the batch size again", "A layer's backward does not average: the mean's 1/N "
                "is applied once, in the loss's gradient.", _divided_by_batch_again),
    ),
    alternatives=(_linear_backward_loops, _linear_backward_einsum),
))


# ---------------------------------------------------------------- relu_forward and relu_backward

def _a_few_values():
    return {"x": np.array([-2.0, -0.5, 0.0, 0.5, 2.0])}


def _a_matrix():
    return {"x": np.array([[0.1, -3.0, 4.0], [7.0, -0.2, 0.0]])}


def _relu_np_max(x):
    return np.max(x, 0)


def _relu_in_place(x):
    x[x < 0] = 0
    return x


def _relu_mask(x):
    return (x > 0).astype(np.float64)


def _relu_where(x):
    return np.where(x <= 0, 0.0, x)  # not np.where(x > 0, x, 0.0), which turns NaN into 0


def _relu_times_mask(x):
    # x times ReLU's derivative, with -inf set to 0 first (-inf · 0 is NaN); NaN stays NaN
    return np.nan_to_num(x, nan=np.nan, posinf=np.inf, neginf=0.0) * (x > 0)


register(Exercise(
    id="ch03.relu_forward", points=1, reference=ref.relu_forward,
    cases=(
        Case("a few values, 0 included", _a_few_values),
        Case("a 2 x 3 matrix", _a_matrix),
        Case("random, 1000 values", lambda: {"x": _random(1000, seed=21)}, hidden=True),
        Case("all negative", lambda: {"x": -np.abs(_random(3, 4, seed=22))}, hidden=True),
    ),
    mistakes=(
        Mistake("np.max instead of np.maximum", "np.max(x, 0) is the largest entry along axis 0; the element-wise "
                "maximum with 0 is np.maximum(x, 0).", _relu_np_max),
        Mistake("input changed in place", "x[x < 0] = 0 overwrites the caller's array; build a new one "
                "(np.maximum returns one).", _relu_in_place),
        Mistake("the mask instead of the values", "(x > 0) is ReLU's derivative; ReLU itself keeps the positive "
                "values: max(x, 0).", _relu_mask),
    ),
    alternatives=(_relu_where, _relu_times_mask),
))


def _relu_backward_by_hand():
    return {"dout": np.array([1.0, 2.0, 3.0, 4.0, 5.0]), **_a_few_values()}


def _relu_backward_matrix():
    return {"dout": np.array([[1.5, -2.0, 0.5], [3.0, 1.0, -1.0]]), **_a_matrix()}


def _relu_backward_inverted(dout, x):
    return dout * (x < 0)


def _relu_backward_everywhere(dout, x):
    return dout.copy()


def _relu_backward_at_zero(dout, x):
    return dout * (x >= 0)


def _relu_backward_mask_only(dout, x):
    return (x > 0).astype(np.float64)


def _relu_backward_times_output(dout, x):
    return dout * np.maximum(x, 0)


def _relu_backward_copyto(dout, x):
    dx = np.zeros_like(dout, dtype=np.result_type(dout, 0.0))
    np.copyto(dx, dout, where=x > 0)
    return dx


def _relu_backward_copy_and_zero(dout, x):
    dx = dout.copy()
    dx[x <= 0] = 0
    return dx


register(Exercise(
    id="ch03.relu_backward", forbids=AUTOGRAD, points=1, reference=ref.relu_backward,
    cases=(
        Case("a few values, 0 included", _relu_backward_by_hand),
        Case("a 2 x 3 matrix", _relu_backward_matrix),
        Case("random, 1000 values", lambda: {"dout": _random(1000, seed=23), "x": _random(1000, seed=24)}, hidden=True),
        Case("all negative: no gradient", lambda: {"dout": _random(3, 4, seed=25),
                                                   "x": -np.abs(_random(3, 4, seed=26))}, hidden=True),
    ),
    mistakes=(
        Mistake("ReLU backward passes the gradient where x < 0", "The gradient flows only where the input was "
                "positive: dout * (x > 0).", _relu_backward_inverted),
        Mistake("mask forgotten: the gradient passes everywhere", "Where x ≤ 0 ReLU's output is flat, so dx = 0 "
                "there: dout * (x > 0).", _relu_backward_everywhere),
        Mistake("gradient passed at x = 0", "Use x > 0, not x >= 0: at exactly 0 the course (like torch) takes "
                "the derivative as 0.", _relu_backward_at_zero),
        Mistake("the mask without the upstream gradient", "Chain rule: multiply the local derivative (x > 0) by "
                "dout.", _relu_backward_mask_only),
        Mistake("multiplied by ReLU's output instead of its derivative", "ReLU′(x) is 1 where x > 0, not x: "
                "dout * (x > 0).", _relu_backward_times_output),
    ),
    alternatives=(_relu_backward_copyto, _relu_backward_copy_and_zero),
))


# ---------------------------------------------------------------- sigmoid_forward and sigmoid_backward

def _large_magnitudes():
    return {"x": np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])}


def _sigmoid_overflowing(x):
    return np.exp(x) / (1 + np.exp(x))


def _sigmoid_sign_flipped(x):
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(x))


def _sigmoid_is_tanh(x):
    return np.tanh(x)


def _sigmoid_by_sign(x):
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1 / (1 + np.exp(-x[positive]))
    exp_x = np.exp(x[~positive])
    out[~positive] = exp_x / (1 + exp_x)
    return out


def _sigmoid_via_tanh(x):
    return 0.5 * (1 + np.tanh(x / 2))


register(Exercise(
    id="ch03.sigmoid_forward", points=1, reference=ref.sigmoid_forward,
    cases=(
        Case("a few values", _a_few_values),
        Case("large magnitudes: ±1000", _large_magnitudes),
        Case("random, 1000 values", lambda: {"x": _random(1000, seed=31, scale=10)}, hidden=True),
        Case("a 2 x 3 matrix", _a_matrix, hidden=True),
    ),
    mistakes=(
        Mistake("overflow for large x", "e^x overflows to inf for x > 709 and inf / inf is NaN; use e^(−|x|), "
                "which never overflows, and pick the formula by the sign of x.", _sigmoid_overflowing),
        Mistake("sign flipped", "σ(x) = 1 / (1 + e^(−x)): the exponent is −x.", _sigmoid_sign_flipped),
        Mistake("tanh instead of sigmoid", "tanh runs from −1 to 1; σ runs from 0 to 1.", _sigmoid_is_tanh),
    ),
    alternatives=(_sigmoid_by_sign, _sigmoid_via_tanh),
))


def _saturated_outputs():
    return {"dout": np.array([1.0, -1.0, 2.0]), "out": ref.sigmoid_forward(np.array([-40.0, 0.0, 40.0]))}


def _sigmoid_backward_by_hand():
    return {"dout": np.array([1.0, -2.0, 0.5, 3.0]), "out": ref.sigmoid_forward(np.array([-2.0, 0.0, 1.0, 3.0]))}


def _sigmoid_backward_random(shape, seed):
    def make():
        return {"dout": _random(*shape, seed=seed), "out": ref.sigmoid_forward(_random(*shape, seed=seed + 1, scale=3))}
    return make


def _sigmoid_backward_of_sigmoid(dout, out):
    s = ref.sigmoid_forward(out)
    return dout * s * (1 - s)


def _sigmoid_backward_without_dout(dout, out):
    return out * (1 - out)


def _sigmoid_backward_tanh_rule(dout, out):
    return dout * (1 - out ** 2)


def _sigmoid_backward_expanded(dout, out):
    return dout * (out - out * out)


register(Exercise(
    id="ch03.sigmoid_backward", forbids=AUTOGRAD, points=1, reference=ref.sigmoid_backward,
    cases=(
        Case("a few values", _sigmoid_backward_by_hand),
        Case("a 2 x 3 matrix", _sigmoid_backward_random((2, 3), seed=33)),
        Case("random, 1000 values", _sigmoid_backward_random((1000,), seed=35), hidden=True),
        Case("saturated outputs", _saturated_outputs, hidden=True),
    ),
    mistakes=(
        Mistake("sigmoid backward using x instead of σ(x): σ applied to the output again", "`out` already is "
                "σ(x), so σ′(x) = out (1 − out). σ(out) (1 − σ(out)) is the derivative at the wrong point.",
                _sigmoid_backward_of_sigmoid),
        Mistake("the local derivative without the upstream gradient", "Chain rule: dx = dout · out (1 − out).",
                _sigmoid_backward_without_dout),
        Mistake("tanh's derivative", "1 − out² is tanh's; the sigmoid's is out (1 − out).",
                _sigmoid_backward_tanh_rule),
    ),
    alternatives=(_sigmoid_backward_expanded,),
))


# ---------------------------------------------------------------- tanh_forward and tanh_backward

def _tanh_overflowing(x):
    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))


def _tanh_is_sigmoid(x):
    return ref.sigmoid_forward(x)


def _tanh_from_sigmoid_without_doubling(x):
    return 2 * ref.sigmoid_forward(x) - 1


def _tanh_from_sigmoid(x):
    with np.errstate(over="ignore"):  # exp(2000) is inf, and 2 / inf − 1 is the right −1
        return 2 / (1 + np.exp(-2 * x)) - 1


def _tanh_stable_exponentials(x):
    e = np.exp(-2 * np.abs(x))
    return np.sign(x) * -np.expm1(-2 * np.abs(x)) / (1 + e)


register(Exercise(
    id="ch03.tanh_forward", points=1, reference=ref.tanh_forward,
    cases=(
        Case("a few values", _a_few_values),
        Case("large magnitudes: ±1000", _large_magnitudes),
        Case("random, 1000 values", lambda: {"x": _random(1000, seed=41, scale=5)}, hidden=True),
        Case("a 2 x 3 matrix", _a_matrix, hidden=True),
    ),
    mistakes=(
        Mistake("overflow for large |x|", "e^x overflows to inf for x > 709 and inf / inf is NaN; np.tanh is "
                "stable, or write tanh(x) = 2σ(2x) − 1 with a stable σ.", _tanh_overflowing),
        Mistake("sigmoid instead of tanh", "tanh runs from −1 to 1: tanh(x) = 2σ(2x) − 1.", _tanh_is_sigmoid),
        Mistake("2σ(x) − 1 instead of 2σ(2x) − 1", "tanh(x) = 2σ(2x) − 1: double x inside σ.",
                _tanh_from_sigmoid_without_doubling),
    ),
    alternatives=(_tanh_from_sigmoid, _tanh_stable_exponentials),
))


def _tanh_backward_by_hand():
    return {"dout": np.array([1.0, -2.0, 0.5, 3.0]), "out": np.tanh(np.array([-2.0, 0.0, 0.5, 1.5]))}


def _tanh_backward_random(shape, seed):
    def make():
        return {"dout": _random(*shape, seed=seed), "out": np.tanh(_random(*shape, seed=seed + 1, scale=2))}
    return make


def _tanh_backward_of_tanh(dout, out):
    return dout * (1 - np.tanh(out) ** 2)


def _tanh_backward_without_dout(dout, out):
    return 1 - out ** 2


def _tanh_backward_not_squared(dout, out):
    return dout * (1 - out)


def _tanh_backward_sigmoid_rule(dout, out):
    return dout * out * (1 - out)


def _tanh_backward_factored(dout, out):
    return dout * (1 - out) * (1 + out)


register(Exercise(
    id="ch03.tanh_backward", forbids=AUTOGRAD, points=1, reference=ref.tanh_backward,
    cases=(
        Case("a few values", _tanh_backward_by_hand),
        Case("a 2 x 3 matrix", _tanh_backward_random((2, 3), seed=43)),
        Case("random, 1000 values", _tanh_backward_random((1000,), seed=45), hidden=True),
        Case("saturated outputs", lambda: {"dout": np.array([1.0, -1.0]), "out": np.tanh(np.array([-30.0, 30.0]))},
             hidden=True),
    ),
    mistakes=(
        Mistake("tanh applied to the output again", "`out` already is tanh(x): tanh′(x) = 1 − out².",
                _tanh_backward_of_tanh),
        Mistake("the local derivative without the upstream gradient", "Chain rule: dx = dout · (1 − out²).",
                _tanh_backward_without_dout),
        Mistake("1 − out instead of 1 − out²", "tanh′(x) = 1 − tanh(x)²: square the output.", _tanh_backward_not_squared),
        Mistake("the sigmoid's derivative", "out (1 − out) is the sigmoid's; tanh's is 1 − out².",
                _tanh_backward_sigmoid_rule),
    ),
    alternatives=(_tanh_backward_factored,),
))


# ---------------------------------------------------------------- softmax_cross_entropy

def _logits_by_hand():
    return {"logits": np.array([[1.0, 2.0, 3.0], [1.0, -1.0, 0.0]]), "y": np.array([2, 0])}


def _logits_huge():
    return {"logits": np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 999.0]]), "y": np.array([1, 2])}


def _logits_random(n, c, seed, labels=None, scale=2.0):
    def make():
        rng = np.random.default_rng(seed)
        y = rng.integers(0, c, size=n) if labels is None else np.array(labels)
        return {"logits": rng.normal(scale=scale, size=(n, c)), "y": y.astype(np.int64)}
    return make


def _ce_parts(logits, y):
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[y]
    return probs, onehot, len(y)


def _ce_max_not_subtracted(logits, y):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[y]
    return float(-np.mean(np.log(probs[np.arange(len(y)), y]))), (probs - onehot) / len(y)


def _ce_log_of_probability(logits, y):
    probs, onehot, n = _ce_parts(logits, y)
    return float(-np.mean(np.log(probs[np.arange(n), y]))), (probs - onehot) / n


def _ce_sum(logits, y):
    probs, onehot, n = _ce_parts(logits, y)
    loss, _ = ref.softmax_cross_entropy(logits, y)
    return loss * n, probs - onehot


def _ce_gradient_not_averaged(logits, y):
    probs, onehot, _ = _ce_parts(logits, y)
    return ref.softmax_cross_entropy(logits, y)[0], probs - onehot


def _ce_gradient_sign_flipped(logits, y):
    probs, onehot, n = _ce_parts(logits, y)
    return ref.softmax_cross_entropy(logits, y)[0], (onehot - probs) / n


def _ce_softmax_over_samples(logits, y):
    shifted = logits - logits.max(axis=0, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))
    n = len(y)
    dlogits = np.exp(log_probs)
    dlogits[np.arange(n), y] -= 1
    return float(-log_probs[np.arange(n), y].mean()), dlogits / n


def _ce_logaddexp(logits, y):
    log_probs = logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)
    onehot = np.eye(logits.shape[1])[y]
    return float(-(log_probs * onehot).sum() / len(y)), (np.exp(log_probs) - onehot) / len(y)


def _ce_loop(logits, y):
    n = len(y)
    loss, dlogits = 0.0, np.empty_like(logits)
    for i in range(n):
        row = logits[i] - logits[i].max()
        log_total = np.log(np.sum(np.exp(row)))
        loss += (log_total - row[y[i]]) / n
        dlogits[i] = np.exp(row - log_total) / n
        dlogits[i, y[i]] -= 1 / n
    return loss, dlogits


register(Exercise(
    id="ch03.softmax_cross_entropy", points=2, reference=ref.softmax_cross_entropy, outputs=("loss", "dlogits"),
    cases=(
        Case("by hand: 2 samples, 3 classes", _logits_by_hand),
        Case("logits of ±1000", _logits_huge),
        Case("labels 0 and 9 among 10 classes", _logits_random(4, 10, seed=51, labels=[0, 9, 3, 9])),
        Case("random, 64 x 10", _logits_random(64, 10, seed=52), hidden=True),
        Case("a batch of one", _logits_random(1, 5, seed=53), hidden=True),
        Case("equal logits: the loss is log C", lambda: {"logits": np.zeros((3, 4)), "y": np.array([0, 1, 3])},
             hidden=True),
        Case("large logits, 16 x 3", _logits_random(16, 3, seed=54, scale=300.0), hidden=True),
    ),
    mistakes=(
        Mistake("softmax without subtracting the max (overflow)", "exp(1000) overflows to inf and inf / inf is "
                "NaN. Subtract each row's maximum before exp: softmax is unchanged.", _ce_max_not_subtracted),
        Mistake("log of a probability that rounded to 0", "A probability like e^(−2000) is 0 in floating point "
                "and its log is −inf. Compute log-probabilities directly: shifted − log Σ exp(shifted).",
                _ce_log_of_probability),
        Mistake("loss summed instead of averaged over the batch", "The loss is the mean over the N samples, and so "
                "its gradient carries a 1/N.", _ce_sum),
        Mistake("gradient not divided by the batch size", "The loss is a mean, so ∂L/∂z = (softmax(z) − onehot(y)) "
                "/ N.", _ce_gradient_not_averaged),
        Mistake("gradient sign flipped", "∂L/∂z = softmax(z) − onehot(y): the probabilities minus the labels.",
                _ce_gradient_sign_flipped),
        Mistake("softmax over the wrong axis", "Each sample's probabilities sum to 1 over the classes: reduce over "
                "axis=1 (with keepdims=True).", _ce_softmax_over_samples),
    ),
    alternatives=(_ce_logaddexp, _ce_loop),
))


# ---------------------------------------------------------------- numerical_gradient

def _numerical_args(f, x, h=None, dtype=np.float64):
    def make():
        args = {"f": f, "x": np.array(x, dtype=dtype)}
        return args if h is None else {**args, "h": h}
    return make


def _one_sided(f, x, h=1e-5):
    point, grad = np.array(x, dtype=np.float64), np.zeros(np.shape(x))
    base = f(point)
    for index in np.ndindex(point.shape):
        point[index] += h
        grad[index] = (f(point) - base) / h
        point[index] -= h
    return grad


def _central_loop(f, point, h, width):
    """The reference's loop on `point` (each entry moved by ±h, then put back), dividing by `width`;
    each mistake below changes what it is given."""
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + h
        f_plus = f(point)
        point[index] = original - h
        f_minus = f(point)
        point[index] = original
        grad[index] = (f_plus - f_minus) / width
    return grad


def _central_without_half(f, x, h=1e-5):
    return _central_loop(f, np.array(x, dtype=np.float64), h, h)


def _loop_never_restoring(f, point, h):
    """Each entry is moved by +h, then by −2h, and left there: every later f(point) sees the drift."""
    grad = np.zeros(point.shape)
    for index in np.ndindex(point.shape):
        point[index] += h
        f_plus = f(point)
        point[index] -= 2 * h
        grad[index] = (f_plus - f(point)) / (2 * h)
    return grad


def _caller_x_not_restored(f, x, h=1e-5):
    return _loop_never_restoring(f, x, h)


def _copy_not_restored(f, x, h=1e-5):
    return _loop_never_restoring(f, np.array(x, dtype=np.float64), h)


def _whole_rows_perturbed(f, x, h=1e-5):
    point, grad = np.array(x, dtype=np.float64), np.zeros(np.shape(x))
    for i in range(len(point)):
        original = point[i].copy()
        point[i] = original + h
        f_plus = f(point)
        point[i] = original - h
        f_minus = f(point)
        point[i] = original
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def _perturbed_in_own_dtype(f, x, h=1e-5):
    return _central_loop(f, x.copy(), h, 2 * h)


def _numerical_basis_vectors(f, x, h=1e-5):
    x = np.asarray(x, dtype=np.float64)
    grad = np.empty(x.size)
    for i, step in enumerate(np.eye(x.size) * h):
        step = step.reshape(x.shape)
        grad[i] = (f(x + step) - f(x - step)) / (2 * h)
    return grad.reshape(x.shape)


def _numerical_in_place_restored(f, x, h=1e-5):
    """cs231n's way: perturb one array in place and put every entry back exactly; here a float64 copy of x,
    as the docstring promises (an int or float32 x would round x ± h in its own dtype)."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    iterator = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not iterator.finished:
        index = iterator.multi_index
        saved = x[index]
        x[index] = saved + h
        f_plus = f(x)
        x[index] = saved - h
        f_minus = f(x)
        x[index] = saved
        grad[index] = (f_plus - f_minus) / (2 * h)
        iterator.iternext()
    return grad


register(Exercise(
    id="ch03.numerical_gradient", forbids=AUTOGRAD, points=2, reference=ref.numerical_gradient, call=drivers.formula_as_f,
    cases=(
        Case("f(x) = x₀ x₁ + x₁², at (3, −2)", _numerical_args("x[0] * x[1] + x[1] ** 2", [3.0, -2.0])),
        Case("a 3 x 2 matrix x", _numerical_args("np.sum(np.tanh(x @ x.T))", np.arange(6.0).reshape(3, 2) / 4 - 0.5)),
        Case("f(x) = Σ x³ with h = 1e-3", _numerical_args("np.sum(x ** 3)", [1.0, -2.0, 0.5], h=1e-3)),
        Case("an integer x: the docstring's float64 copy holds x ± h", _numerical_args(
            "np.sum(x ** 3) + x[0, 0] * x[1, 1]", [[1, -2], [3, 0]], dtype=np.int64)),
        Case("a 2 x 2 x 2 array", _numerical_args("np.sum(np.exp(x) * np.sin(x))", np.linspace(-1, 1, 8).reshape(2, 2, 2)),
             hidden=True),
        Case("softmax cross-entropy's gradient", _numerical_args(
            "np.mean(np.log(np.exp(x).sum(axis=1)) - x[[0, 1, 2], [1, 0, 2]])",
            [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [2.0, 2.0, 2.0]]), hidden=True),
        Case("one entry", _numerical_args("np.sum(x ** 3)", [0.7]), hidden=True),
        Case("a float32 x: float32 cannot hold x ± h (its spacing near 2 is 2.4e-7, h is 1e-5)", _numerical_args(
            "np.sum(np.sin(x) * x)", [0.7, -1.3, 2.1], dtype=np.float32), hidden=True),
    ),
    mistakes=(
        Mistake("one-sided differences", "(f(x + h) − f(x)) / h is off by about h·f″/2; the central difference "
                "(f(x + h) − f(x − h)) / 2h is off by about h²·f‴/6, far smaller.", _one_sided),
        Mistake("central difference not divided by 2h", "x + h and x − h are 2h apart: divide by 2 * h.",
                _central_without_half),
        Mistake("x left perturbed", "Every entry must be put back after its two evaluations (save it, set "
                "x + h, x − h, then the saved value), or work on a copy: the caller's x must not change.",
                _caller_x_not_restored),
        Mistake("perturbed entries not put back", "After its two evaluations each entry must get its saved value "
                "back; left at x − h, it shifts the point at which every later entry's difference is taken.",
                _copy_not_restored),
        Mistake("perturbed in x's own dtype", "x.copy() keeps x's dtype: an integer x cannot hold x + h (it rounds "
                "back to x, and every difference is 0), a float32 one rounds it to 7 digits. Perturb a float64 copy, "
                "np.array(x, dtype=np.float64), as the docstring says.", _perturbed_in_own_dtype),
        Mistake("a whole row perturbed at once", "x[i] of a 2-D array is a whole row; step through every single "
                "entry with np.ndindex(x.shape) (or x.flat).", _whole_rows_perturbed),
    ),
    alternatives=(_numerical_basis_vectors, _numerical_in_place_restored),
))


# ---------------------------------------------------------------- relative_error

def _pair(analytic, numeric):
    return lambda: {"analytic": np.array(analytic, dtype=np.float64), "numeric": np.array(numeric, dtype=np.float64)}


def _nearly_equal(shape, seed, scale=1.0):
    def make():
        rng = np.random.default_rng(seed)
        analytic = rng.normal(scale=scale, size=shape)
        return {"analytic": analytic, "numeric": analytic + rng.normal(scale=1e-8 * scale, size=shape)}
    return make


_TINY = np.finfo(np.float64).tiny


def _error_entrywise(analytic, numeric):
    return float(np.max(np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), _TINY)))


def _error_without_abs(analytic, numeric):
    return float(np.max(analytic - numeric) / max(np.max(np.abs(analytic) + np.abs(numeric)), _TINY))


def _error_relative_to_analytic(analytic, numeric):
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(analytic)), _TINY))


def _error_unguarded(analytic, numeric):
    with np.errstate(invalid="ignore"):
        return float(np.max(np.abs(analytic - numeric)) / np.max(np.abs(analytic) + np.abs(numeric)))


def _error_abs_of_sum(analytic, numeric):
    return float(np.max(np.abs(analytic - numeric)) / max(np.max(np.abs(analytic + numeric)), _TINY))


def _error_with_norms(analytic, numeric):
    scale = np.linalg.norm((np.abs(analytic) + np.abs(numeric)).ravel(), np.inf)
    # max(scale, tiny), as the docstring's formula: `if scale > 0` would divide subnormals by themselves
    return float(np.linalg.norm((analytic - numeric).ravel(), np.inf) / max(scale, np.finfo(np.float64).tiny))


register(Exercise(
    id="ch03.relative_error", points=1, reference=ref.relative_error,
    cases=(
        Case("by hand", _pair([1.0, 2.0], [1.1, 2.0])),
        Case("opposite signs", _pair([2.0, 0.5], [-2.0, 0.5])),
        Case("both gradients zero", _pair(np.zeros(3), np.zeros(3))),
        Case("a 4 x 3 gradient, nearly equal", _nearly_equal((4, 3), seed=71)),
        Case("identical", _pair([0.5, -1.0, 2.0], [0.5, -1.0, 2.0]), hidden=True),
        Case("large magnitudes", _nearly_equal((10,), seed=72, scale=1e6), hidden=True),
        Case("one of them zero", _pair([0.0, 0.0], [1e-3, -2e-3]), hidden=True),
    ),
    mistakes=(
        Mistake("entry-wise ratio", "This course divides the largest difference by the largest |a| + |n|; the "
                "ratio taken entry by entry blows up where both gradients are nearly 0 (dead ReLU units).",
                _error_entrywise),
        Mistake("no absolute value on the difference", "max |a − n|: without abs a negative difference is missed.",
                _error_without_abs),
        Mistake("relative to the analytic gradient only", "Divide by max(|a| + |n|): both gradients set the "
                "scale, and a zero analytic gradient must not divide by 0.", _error_relative_to_analytic),
        Mistake("no guard for all-zero gradients", "Two zero gradients give 0 / 0 = NaN: divide by "
                "max(scale, np.finfo(np.float64).tiny).", _error_unguarded),
        Mistake("|a + n| instead of |a| + |n|", "Take absolute values before adding: |a + n| vanishes when the two "
                "have opposite signs.", _error_abs_of_sum),
    ),
    alternatives=(_error_with_norms,),
))


# ---------------------------------------------------------------- two_layer_loss_and_grads

@functools.lru_cache(maxsize=1)
def _digits_rows():
    X_train, _, y_train, _ = digits()
    return X_train[:12], y_train[:12]


def _network_args(n, d, h, c, seed, data=None):
    def make():
        rng = np.random.default_rng(seed)
        params = ref.init_two_layer(d, h, c, rng)
        params = {name: value + 0.1 * rng.normal(size=value.shape) for name, value in params.items()}
        if data is None:
            X, y = rng.normal(size=(n, d)), rng.integers(0, c, size=n).astype(np.int64)
        else:
            X, y = (array.copy() for array in data())
        return {"params": params, "X": X, "y": y}
    return make


def _network_mistake(relu_in_forward=True, relu_in_backward=True, dW2_from_pre_activation=False, divide_again=False):
    def two_layer_loss_and_grads(params, X, y):
        hidden_in = ref.linear_forward(X, params["W1"], params["b1"])
        hidden = ref.relu_forward(hidden_in) if relu_in_forward else hidden_in
        scores = ref.linear_forward(hidden, params["W2"], params["b2"])
        loss, dscores = ref.softmax_cross_entropy(scores, y)
        dhidden, dW2, db2 = ref.linear_backward(dscores, hidden_in if dW2_from_pre_activation else hidden, params["W2"])
        dhidden_in = ref.relu_backward(dhidden, hidden_in) if relu_in_backward and relu_in_forward else dhidden
        _, dW1, db1 = ref.linear_backward(dhidden_in, X, params["W1"])
        grads = {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
        if divide_again:
            grads = {name: grad / len(y) for name, grad in grads.items()}
        return loss, grads
    return two_layer_loss_and_grads


def _network_inline(params, X, y):
    W1, b1, W2, b2 = params["W1"], params["b1"], params["W2"], params["b2"]
    pre = X @ W1 + b1
    hidden = np.where(pre > 0, pre, 0.0)
    scores = hidden @ W2 + b2
    scores = scores - scores.max(axis=1, keepdims=True)
    log_probs = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
    n = len(y)
    onehot = np.zeros_like(scores)
    onehot[np.arange(n), y] = 1
    dscores = (np.exp(log_probs) - onehot) / n
    dpre = (dscores @ W2.T) * (pre > 0)
    return float(-(log_probs * onehot).sum() / n), {"W1": X.T @ dpre, "b1": dpre.sum(axis=0),
                                                     "W2": hidden.T @ dscores, "b2": dscores.sum(axis=0)}


register(Exercise(
    id="ch03.two_layer_loss_and_grads", forbids=AUTOGRAD, points=3, reference=ref.two_layer_loss_and_grads, outputs=("loss", "grads"),
    uses=("linear_forward", "linear_backward", "relu_forward", "relu_backward", "softmax_cross_entropy"),
    cases=(
        Case("4 samples, 3 features, 5 hidden units, 2 classes", _network_args(4, 3, 5, 2, seed=81)),
        Case("12 digits, 64 pixels, 8 hidden units, 10 classes", _network_args(12, 64, 8, 10, seed=82,
                                                                                data=_digits_rows)),
        Case("a batch of one", _network_args(1, 6, 4, 3, seed=83)),
        Case("random, 32 x 10, 8 hidden units, 4 classes", _network_args(32, 10, 8, 4, seed=84), hidden=True),
        Case("as many hidden units as classes", _network_args(7, 5, 3, 3, seed=85), hidden=True),
    ),
    mistakes=(
        Mistake("ReLU skipped in the backward pass", "Between the two linear layers the gradient goes back through "
                "the ReLU: relu_backward(dhidden, hidden_in) before the first layer's backward.",
                _network_mistake(relu_in_backward=False)),
        Mistake("W2's gradient from the pre-activation", "The second layer's input is the ReLU's output; pass that "
                "(not X W1 + b1) to linear_backward for W2.", _network_mistake(dW2_from_pre_activation=True)),
        Mistake("ReLU forgotten in the forward pass", "scores = relu(X W1 + b1) W2 + b2: without the ReLU the "
                "network is one linear map.", _network_mistake(relu_in_forward=False)),
        Mistake("gradients divided by the batch size again", "softmax_cross_entropy's gradient already carries the "
                "1/N of the mean; the layers' backward passes add no other.", _network_mistake(divide_again=True)),
    ),
    alternatives=(_network_inline,),
))


# ---------------------------------------------------------------- Sequential (a class exercise)

def _network_of(*kinds, widths, n, seed, scale=1.0, zeros=False):
    """Case arguments for through_layers: layers of the given kinds ("linear" takes the next width), inputs x: (n,
    widths[0]) and an upstream gradient shaped like the output. With zeros, some entries of x are exactly 0."""
    def make():
        rng = np.random.default_rng(seed)
        layers, width, sizes = [], widths[0], iter(widths[1:])
        for kind in kinds:
            if kind == "linear":
                following = next(sizes)
                layers.append({"kind": "linear", "W": rng.normal(size=(width, following)) / math.sqrt(width),
                               "b": rng.normal(scale=0.5, size=following)})
                width = following
            else:
                layers.append({"kind": kind})
        x = rng.normal(scale=scale, size=(n, widths[0]))
        if zeros:
            x[:, ::2] = 0.0
        return {"layers": layers, "x": x, "grad_out": rng.normal(size=(n, width))}
    return make


def _sequential_variant(forward=None, backward=None, params=None, grads=None):
    """The reference Sequential with some methods replaced by wrong ones."""
    methods = {name: method for name, method in
               (("forward", forward), ("backward", backward), ("params", params), ("grads", grads)) if method}
    return type("Sequential", (ref.Sequential,), methods)


def _backward_in_forward_order(self, grad_out):
    for layer in self.layers:
        grad_out = layer.backward(grad_out)
    return grad_out


def _backward_output_gradient_to_every_layer(self, grad_out):
    for layer in reversed(self.layers):
        grad_in = layer.backward(grad_out)
    return grad_in


def _backward_without_return(self, grad_out):
    for layer in reversed(self.layers):
        grad_out = layer.backward(grad_out)


def _forward_every_layer_on_the_input(self, x):
    for layer in self.layers:
        out = layer.forward(x)
    return out


def _grads_in_backward_order(self):
    return [g for layer in reversed(self.layers) for g in layer.grads()]


def _params_per_layer(self):
    return [layer.params() for layer in self.layers]


def _grads_per_layer(self):
    return [layer.grads() for layer in self.layers]


def _params_copied(self):
    return [p.copy() for layer in self.layers for p in layer.params()]


class _SequentialReduced:
    """A correct Sequential written with functools.reduce and itertools.chain, the layers kept as a tuple."""

    def __init__(self, *layers):
        self.layers = tuple(layers)

    def forward(self, x):
        return functools.reduce(lambda value, layer: layer.forward(value), self.layers, x)

    def backward(self, grad_out):
        return functools.reduce(lambda grad, layer: layer.backward(grad), self.layers[::-1], grad_out)

    def params(self):
        return list(itertools.chain.from_iterable(layer.params() for layer in self.layers))

    def grads(self):
        return list(itertools.chain.from_iterable(layer.grads() for layer in self.layers))


class _SequentialRecursive:
    """A correct Sequential as a head layer and the Sequential of the rest (an empty one passes values through)."""

    def __init__(self, *layers):
        self.head = layers[0] if layers else None
        self.rest = _SequentialRecursive(*layers[1:]) if len(layers) > 1 else None

    def forward(self, x):
        if self.head is None:
            return x
        x = self.head.forward(x)
        return self.rest.forward(x) if self.rest else x

    def backward(self, grad_out):
        if self.head is None:
            return grad_out
        if self.rest:
            grad_out = self.rest.backward(grad_out)
        return self.head.backward(grad_out)

    def params(self):
        return ([] if self.head is None else self.head.params()) + (self.rest.params() if self.rest else [])

    def grads(self):
        return ([] if self.head is None else self.head.grads()) + (self.rest.grads() if self.rest else [])


register(Exercise(
    id="ch03.Sequential", forbids=AUTOGRAD, points=3, reference=ref.Sequential, call=drivers.through_layers,
    outputs=("forward(x)", "grads()", "backward(grad_out)", "params() are the layers' own arrays"),
    cases=(
        Case("Linear, ReLU, Linear, every layer 3 wide", _network_of("linear", "relu", "linear", widths=(3, 3, 3),
                                                                       n=4, seed=91)),
        Case("a batch of one: 5 -> 4 -> 2", _network_of("linear", "relu", "linear", widths=(5, 4, 2), n=1, seed=92)),
        Case("ReLU first, on inputs that are exactly 0", _network_of("relu", "linear", "tanh", widths=(4, 4), n=3,
                                                                     seed=93, zeros=True)),
        Case("five layers: Linear, Tanh, Linear, Sigmoid, Linear", _network_of(
            "linear", "tanh", "linear", "sigmoid", "linear", widths=(6, 8, 5, 3), n=16, seed=94), hidden=True),
        Case("one layer", _network_of("linear", widths=(3, 2), n=5, seed=95), hidden=True),
        Case("no parameters: ReLU then Tanh", _network_of("relu", "tanh", widths=(4,), n=6, seed=96), hidden=True),
        Case("large inputs: sigmoid and tanh saturate", _network_of("linear", "sigmoid", "linear", "tanh", "linear",
                                                                     widths=(4, 4, 4, 2), n=8, seed=97, scale=1e3),
             hidden=True),
    ),
    mistakes=(
        Mistake("layers backpropagated in forward order", "The last layer's output is the closest to the loss, so "
                "its backward runs first: `for layer in reversed(self.layers)`.",
                _sequential_variant(backward=_backward_in_forward_order)),
        Mistake("every layer given the output's gradient", "Each layer's backward returns the gradient for its own "
                "input, which is the upstream gradient of the layer before: `grad_out = layer.backward(grad_out)`.",
                _sequential_variant(backward=_backward_output_gradient_to_every_layer)),
        Mistake("backward returns nothing", "Return the first layer's input gradient, ∂L/∂x: a Sequential is itself "
                "a layer, and the layer before it needs that gradient.",
                _sequential_variant(backward=_backward_without_return)),
        Mistake("every layer applied to the input", "Each layer takes the previous layer's output: "
                "`x = layer.forward(x)` in the loop, then return x.",
                _sequential_variant(forward=_forward_every_layer_on_the_input)),
        Mistake("gradients listed in reverse layer order", "grads() must list the gradients in the order params() "
                "lists the parameters, first layer first, so that zip(params(), grads()) pairs each array with its "
                "own gradient.", _sequential_variant(grads=_grads_in_backward_order)),
        Mistake("one list per layer instead of one flat list", "params() and grads() list the arrays themselves, "
                "first layer's first, not one list per layer: `[p for layer in self.layers for p in "
                "layer.params()]`, so that an optimizer can zip them.",
                _sequential_variant(params=_params_per_layer, grads=_grads_per_layer)),
        Mistake("params() returns copies", "Return the layers' own arrays (layer.params()), not copies: an optimizer "
                "that updates copies in place leaves the network unchanged.",
                _sequential_variant(params=_params_copied)),
    ),
    alternatives=(_SequentialReduced, _SequentialRecursive),
))
