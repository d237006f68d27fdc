"""Chapter 03: backpropagation, from a scalar autograd engine to a two-layer network in numpy, and layers as
objects (forward, backward, params, grads) that a Sequential chains into networks of any depth.

Shapes follow one convention (cs231n's): a batch of N inputs with D features is x: (N, D); a
linear layer maps it to out: (N, M) with weights W: (D, M) and bias b: (M,). Every backward
function takes the upstream gradient dout = ∂L/∂out, shaped like out, and returns ∂L/∂(input)
for each input it is asked about, shaped like that input. Every function returns new values and
leaves its inputs untouched; the layer objects keep state on purpose (what their backward pass
needs, and the last gradients), and their params() are the arrays an optimizer changes in place.
"""
import math

import numpy as np


class Value:
    """A number that remembers how it was computed, so that `backward()` can fill in gradients.

    `data` is the number. After `out.backward()`, `grad` is ∂out/∂(this value). `_prev` holds the
    Values it was computed from, `_op` the operation's symbol (to draw the graph), and `_backward`
    the rule that passes this node's `grad` on to `_prev`, using the operation's local derivatives.
    Operators: `+ - * /` between Values or with a plain number on either side; `** p` with a plain
    number p (a fractional p needs positive data, a negative p nonzero data; x ** 0 is 1 with
    gradient 0, at x = 0 too); `c ** value` with a plain number c > 0; and `relu()`, `tanh()`,
    `exp()`.
    """

    def __init__(self, data, _children=(), _op=""):
        self.data = float(data)
        self.grad = 0.0
        self._backward = lambda: None
        self._prev = tuple(_children)
        self._op = _op

    def __repr__(self):
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g})"

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)  # a plain number becomes a leaf
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():  # out = self + other: both local derivatives are 1
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        ### BEGIN SOLUTION
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def __pow__(self, exponent):
        ### BEGIN SOLUTION
        if isinstance(exponent, Value):
            raise TypeError("the exponent must be a plain number")
        out = Value(self.data ** exponent, (self,), f"**{exponent:g}")

        def _backward():  # p·x^(p−1); x^0 is the constant 1, whose derivative is 0 (also at x = 0, as in torch)
            local = exponent * self.data ** (exponent - 1) if exponent != 0 else 0.0
            self.grad += local * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def __rpow__(self, base):
        ### BEGIN SOLUTION
        out = Value(base ** self.data, (self,), f"{base:g}**")

        def _backward():
            self.grad += out.data * math.log(base) * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def relu(self):
        ### BEGIN SOLUTION
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (self.data > 0) * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def tanh(self):
        ### BEGIN SOLUTION
        out = Value(math.tanh(self.data), (self,), "tanh")

        def _backward():
            self.grad += (1 - out.data ** 2) * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def exp(self):
        ### BEGIN SOLUTION
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward():
            self.grad += out.data * out.grad
        out._backward = _backward
        return out
        ### END SOLUTION

    def __neg__(self):
        ### BEGIN SOLUTION
        return self * -1
        ### END SOLUTION

    def __radd__(self, other):
        ### BEGIN SOLUTION
        return self + other
        ### END SOLUTION

    def __sub__(self, other):
        ### BEGIN SOLUTION
        return self + (-other)
        ### END SOLUTION

    def __rsub__(self, other):
        ### BEGIN SOLUTION
        return other + (-self)
        ### END SOLUTION

    def __rmul__(self, other):
        ### BEGIN SOLUTION
        return self * other
        ### END SOLUTION

    def __truediv__(self, other):
        ### BEGIN SOLUTION
        return self * other ** -1
        ### END SOLUTION

    def __rtruediv__(self, other):
        ### BEGIN SOLUTION
        return other * self ** -1
        ### END SOLUTION

    def backward(self):
        """Fill in `grad` on every node this value was computed from (call once per graph)."""
        ### BEGIN SOLUTION
        order, visited = [], set()

        def visit(node):
            if node not in visited:
                visited.add(node)
                for child in node._prev:
                    visit(child)
                order.append(node)  # after all its children: a topological order
        visit(self)
        self.grad = 1.0
        for node in reversed(order):  # every node before the nodes it was computed from
            node._backward()
        ### END SOLUTION


def linear_forward(x, W, b):
    """A linear (fully connected) layer: out = x W + b, b added to every row.

    x: (N, D), W: (D, M), b: (M,)  ->  out: (N, M)
    """
    ### BEGIN SOLUTION
    return x @ W + b
    ### END SOLUTION


def linear_backward(dout, x, W):
    """Gradients of a linear layer: dx = dout Wᵀ, dW = xᵀ dout, db = Σₙ dout[n] (summed over the batch).

    dout: (N, M), x: (N, D), W: (D, M)  ->  (dx: (N, D), dW: (D, M), db: (M,))
    """
    ### BEGIN SOLUTION
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)
    ### END SOLUTION


def relu_forward(x):
    """ReLU, element-wise: max(x, 0).

    x: array of any shape  ->  out: same shape
    """
    ### BEGIN SOLUTION
    return np.maximum(x, 0.0)
    ### END SOLUTION


def relu_backward(dout, x):
    """Gradient of ReLU: dout where x > 0, and 0 where x ≤ 0 (at x = 0 too, as in torch).

    dout: same shape as x, x: the forward input  ->  dx: same shape
    """
    ### BEGIN SOLUTION
    return np.where(x > 0, dout, 0.0)  # not dout * (x > 0): an infinite dout times 0 would be NaN
    ### END SOLUTION


def sigmoid_forward(x):
    """The logistic function σ(x) = 1 / (1 + e^(−x)), element-wise, without overflow for any x.

    x: array of any shape  ->  out: same shape, values in [0, 1]
    """
    ### BEGIN SOLUTION
    z = np.exp(-np.abs(x))  # never overflows: the exponent is ≤ 0
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))
    ### END SOLUTION


def sigmoid_backward(dout, out):
    """Gradient of the sigmoid from its forward output: σ′(x) = σ(x) (1 − σ(x)), so dx = dout · out (1 − out).

    dout: same shape as out, out: σ(x) from the forward pass  ->  dx: same shape
    """
    ### BEGIN SOLUTION
    return dout * out * (1 - out)
    ### END SOLUTION


def tanh_forward(x):
    """The hyperbolic tangent, element-wise, without overflow for any x.

    x: array of any shape  ->  out: same shape, values in [−1, 1]
    """
    ### BEGIN SOLUTION
    return np.tanh(x)
    ### END SOLUTION


def tanh_backward(dout, out):
    """Gradient of tanh from its forward output: tanh′(x) = 1 − tanh(x)², so dx = dout · (1 − out²).

    dout: same shape as out, out: tanh(x) from the forward pass  ->  dx: same shape
    """
    ### BEGIN SOLUTION
    return dout * (1 - out ** 2)
    ### END SOLUTION


def softmax_cross_entropy(logits, y):
    """Softmax cross-entropy averaged over the batch, and its gradient; finite for logits up to 1e300.

    L = (1/N) Σₙ (log Σ_c exp(z[n, c]) − z[n, yₙ]),   ∂L/∂z = (softmax(z) − onehot(y)) / N.
    Subtracting each row's maximum first changes nothing mathematically and keeps exp from
    overflowing; the log-probabilities are computed directly, never as the log of a probability
    that may have rounded to 0. So the loss and the gradient are finite for any logits with
    |z| ≤ 1e300, however far apart (in batches of fewer than 10⁷ rows). Not for every finite
    float64: for [[-1e308, 1e308]] the exact loss, 2e308, is beyond float64's largest, 1.8e308.
    logits: (N, C) floats, y: (N,) int64 in [0, C)  ->  (loss: float, dlogits: (N, C))
    """
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    loss = -log_probs[rows, y].mean()
    dlogits = np.exp(log_probs)
    dlogits[rows, y] -= 1
    return float(loss), dlogits / len(y)
    ### END SOLUTION


def numerical_gradient(f, x, h=1e-5):
    """The gradient of f at x by central differences, one entry at a time.

    grad[i] = (f(x + h eᵢ) − f(x − h eᵢ)) / 2h for every index i of x (eᵢ: 1 at i, 0 elsewhere).
    Perturbs a float64 copy of x; x itself is left as it was.
    f: function of an array shaped like x, returning a float; x: array of any shape; h: float
    ->  grad: float64 array shaped like x
    """
    ### BEGIN SOLUTION
    point = np.array(x, dtype=np.float64)
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + h
        f_plus = f(point)
        point[index] = original - h
        f_minus = f(point)
        point[index] = original
        grad[index] = (f_plus - f_minus) / (2 * h)
    return grad
    ### END SOLUTION


def relative_error(analytic, numeric):
    """How far two gradients differ, relative to their size: one number for a gradient check.

    error = maxᵢ |aᵢ − nᵢ| / max(maxᵢ (|aᵢ| + |nᵢ|), tiny), with tiny = np.finfo(np.float64).tiny,
    so that two all-zero gradients give 0. Below about 1e-7 the two agree to float64's
    finite-difference accuracy; above 1e-3 one of them is wrong.
    analytic, numeric: arrays of the same shape  ->  float
    """
    ### BEGIN SOLUTION
    difference = np.max(np.abs(analytic - numeric))
    scale = np.max(np.abs(analytic) + np.abs(numeric))
    return float(difference / max(scale, np.finfo(np.float64).tiny))
    ### END SOLUTION


def two_layer_loss_and_grads(params, X, y):
    """Loss and gradients of the network scores = relu(X W1 + b1) W2 + b2 under mean softmax cross-entropy.

    params: {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}, X: (N, D), y: (N,) int64 in [0, C)
    ->  (loss: float, grads: dict with the keys of params, each gradient shaped like its parameter)
    """
    ### BEGIN SOLUTION
    hidden_in = linear_forward(X, params["W1"], params["b1"])
    hidden = relu_forward(hidden_in)
    scores = linear_forward(hidden, params["W2"], params["b2"])
    loss, dscores = softmax_cross_entropy(scores, y)
    dhidden, dW2, db2 = linear_backward(dscores, hidden, params["W2"])
    _, dW1, db1 = linear_backward(relu_backward(dhidden, hidden_in), X, params["W1"])
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    ### END SOLUTION


def init_two_layer(n_inputs, n_hidden, n_classes, rng, dtype=np.float64):
    """Starting parameters for `two_layer_loss_and_grads`: He-scaled normal weights, zero biases.

    W1 ~ N(0, 2/D) keeps the variance of the ReLU layer's output about that of its input; W2 ~ N(0, 1/H).
    n_inputs: D, n_hidden: H, n_classes: C, rng: numpy Generator
    ->  {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)} of `dtype`
    """
    return {"W1": (rng.standard_normal((n_inputs, n_hidden)) * math.sqrt(2 / n_inputs)).astype(dtype),
            "b1": np.zeros(n_hidden, dtype=dtype),
            "W2": (rng.standard_normal((n_hidden, n_classes)) * math.sqrt(1 / n_hidden)).astype(dtype),
            "b2": np.zeros(n_classes, dtype=dtype)}


class Linear:
    """A linear layer as an object: its parameters, what its backward pass needs from the forward pass, its gradients.

    Linear(W: (D, M), b: (M,)). forward(x: (N, D)) -> out: (N, M), and keeps x; backward(grad_out: (N, M))
    -> grad_in: (N, D), and sets dW: (D, M), db: (M,) from the x of the last forward. params() -> [W, b],
    the arrays themselves, so that an optimizer changing them in place (p -= lr * g) trains the layer;
    grads() -> [dW, db], in the same order. A layer object keeps one forward pass: use each object once
    in a network.
    """

    def __init__(self, W, b):
        self.W, self.b = W, b
        self.dW, self.db = np.zeros_like(W), np.zeros_like(b)
        self.x = None

    @classmethod
    def he(cls, n_in, n_out, rng):
        """A layer of n_in -> n_out with weights N(0, 2/n_in) (He scaling, for a ReLU after it), bias 0."""
        return cls(rng.standard_normal((n_in, n_out)) * math.sqrt(2 / n_in), np.zeros(n_out))

    def forward(self, x):
        self.x = x
        return linear_forward(x, self.W, self.b)

    def backward(self, grad_out):
        grad_in, self.dW, self.db = linear_backward(grad_out, self.x, self.W)
        return grad_in

    def params(self):
        return [self.W, self.b]

    def grads(self):
        return [self.dW, self.db]


class ReLU:
    """ReLU as a layer: forward(x) -> max(x, 0), keeping x; backward(grad_out) -> grad_out where x > 0, else 0.
    No parameters: params() and grads() are empty."""

    def forward(self, x):
        self.x = x
        return relu_forward(x)

    def backward(self, grad_out):
        return relu_backward(grad_out, self.x)

    def params(self):
        return []

    def grads(self):
        return []


class Sigmoid:
    """The sigmoid as a layer: forward(x) -> σ(x), keeping its output, which is all backward needs. No parameters."""

    def forward(self, x):
        self.out = sigmoid_forward(x)
        return self.out

    def backward(self, grad_out):
        return sigmoid_backward(grad_out, self.out)

    def params(self):
        return []

    def grads(self):
        return []


class Tanh:
    """tanh as a layer: forward(x) -> tanh(x), keeping its output, which is all backward needs. No parameters."""

    def forward(self, x):
        self.out = tanh_forward(x)
        return self.out

    def backward(self, grad_out):
        return tanh_backward(grad_out, self.out)

    def params(self):
        return []

    def grads(self):
        return []


class Sequential:
    """Layers applied one after another, itself a layer with the same interface (like torch.nn.Sequential).

    Sequential(*layers), each layer having forward(x), backward(grad_out), params() and grads().
    forward(x) feeds x to the first layer, each layer's output to the next, and returns the last output.
    backward(grad_out) takes ∂L/∂(that output) and runs the layers' backward passes in reverse order, each
    layer's input gradient becoming the upstream gradient of the layer before it; it returns ∂L/∂x.
    params() lists every layer's parameters in layer order (the arrays themselves); grads() lists their
    gradients from the last backward pass in the same order, so that zip(params(), grads()) pairs them.
    """

    def __init__(self, *layers):
        self.layers = list(layers)

    def forward(self, x):
        ### BEGIN SOLUTION
        for layer in self.layers:
            x = layer.forward(x)
        return x
        ### END SOLUTION

    def backward(self, grad_out):
        ### BEGIN SOLUTION
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out
        ### END SOLUTION

    def params(self):
        ### BEGIN SOLUTION
        return [p for layer in self.layers for p in layer.params()]
        ### END SOLUTION

    def grads(self):
        ### BEGIN SOLUTION
        return [g for layer in self.layers for g in layer.grads()]
        ### END SOLUTION
