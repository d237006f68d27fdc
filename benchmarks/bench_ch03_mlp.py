"""Chapter 03: one training step of the two-layer network, from scratch in numpy against the same network in torch (CPU, float32).

A step is the forward pass, the mean softmax cross-entropy, the backward pass and the SGD update,
on the same batch, from the same starting weights, in float32. numpy runs the chapter's network
written for speed (`NumpyTwoLayer`: buffers allocated once, the learning rate folded into the
score gradient so that the updates are single in-place subtractions); torch runs nn.Sequential
(Linear, ReLU, Linear) with F.cross_entropy, autograd and optim.SGD. Two sizes: the digits network
of the chapter (batch 64, 64 -> 128 -> 10) and a large one (batch 512, 1024 -> 1024 -> 10). The
float32 matrix-multiply throughput of this machine is measured in the same run, and the large
step's rate is reported as a fraction of it.
"""
import numpy as np
import torch
import torch.nn.functional as F

from benchmarks.harness import Comparison, compare, median_time
from solutions import ch03_backpropagation as ch03
from solutions.data import digits

LEARNING_RATE = 0.01


class NumpyTwoLayer:
    """The chapter's network scores = relu(X W1 + b1) W2 + b2 with a fast, in-place training step.

    params: {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)}, float32, copied and then owned;
    `step` takes batches of exactly `batch_size` rows.
    """

    def __init__(self, params, batch_size):
        self.W1, self.b1, self.W2, self.b2 = (params[name].astype(np.float32) for name in ("W1", "b1", "W2", "b2"))
        n_hidden, n_classes = self.W2.shape
        self.hidden = np.empty((batch_size, n_hidden), np.float32)
        self.dhidden = np.empty((batch_size, n_hidden), np.float32)
        self.scores = np.empty((batch_size, n_classes), np.float32)
        self.dW1, self.dW2 = np.empty_like(self.W1), np.empty_like(self.W2)
        self.rows = np.arange(batch_size)

    def step(self, X, y, lr):
        """One SGD step on the batch X: (N, D) float32, y: (N,) int64; returns the batch's mean loss."""
        n = len(y)
        hidden = np.matmul(X, self.W1, out=self.hidden)
        hidden += self.b1
        np.maximum(hidden, 0, out=hidden)
        scores = np.matmul(hidden, self.W2, out=self.scores)
        scores += self.b2
        scores -= scores.max(axis=1, keepdims=True)
        true_class = scores[self.rows, y]
        np.exp(scores, out=scores)
        totals = scores.sum(axis=1)
        loss = float(np.mean(np.log(totals) - true_class))
        # scores becomes lr · ∂L/∂scores = lr · (softmax − onehot) / N; every gradient below is linear
        # in it, so they all come out already multiplied by lr
        scores *= (lr / n) / totals[:, None]
        scores[self.rows, y] -= lr / n
        np.matmul(hidden.T, scores, out=self.dW2)
        dhidden = np.matmul(scores, self.W2.T, out=self.dhidden)  # before W2 changes
        self.W2 -= self.dW2
        self.b2 -= scores.sum(axis=0)
        np.multiply(dhidden, hidden > 0, out=dhidden)
        np.matmul(X.T, dhidden, out=self.dW1)
        self.W1 -= self.dW1
        self.b1 -= dhidden.sum(axis=0)
        return loss

    def params(self):
        return {"W1": self.W1, "b1": self.b1, "W2": self.W2, "b2": self.b2}


def torch_two_layer(params):
    """nn.Sequential(Linear, ReLU, Linear) holding the same float32 weights (nn.Linear stores W transposed)."""
    n_inputs, n_hidden = params["W1"].shape
    model = torch.nn.Sequential(torch.nn.Linear(n_inputs, n_hidden), torch.nn.ReLU(),
                                torch.nn.Linear(n_hidden, params["W2"].shape[1]))
    with torch.no_grad():
        for layer, W, b in ((model[0], "W1", "b1"), (model[2], "W2", "b2")):
            layer.weight.copy_(torch.from_numpy(params[W].T))
            layer.bias.copy_(torch.from_numpy(params[b]))
    return model


def torch_step(model, optimizer, X, y):
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(X), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_step(params, X, y, lr):
    """The chapter's own functions, as the notebook trains: pure, a new dict of parameters per step."""
    loss, grads = ch03.two_layer_loss_and_grads(params, X, y)
    return loss, {name: params[name] - lr * grads[name] for name in params}


def step_flops(batch_size, n_inputs, n_hidden, n_classes):
    """Floating-point operations of one step's matrix products: X W1 and hidden W2 forward; hidden.T dscores,
    dscores W2.T and X.T dhidden backward (2 per multiply-add; the input's gradient is never needed)."""
    return 2 * batch_size * (2 * n_inputs * n_hidden + 3 * n_hidden * n_classes)


def matmul_gflops(size=1024):
    """This machine's float32 matrix-multiply rate in GFLOP/s: numpy's and torch's, a (size x size) product."""
    rng = np.random.default_rng(0)
    A, B = rng.standard_normal((2, size, size), dtype=np.float32)
    out = np.empty_like(A)
    A_t, B_t = torch.from_numpy(A), torch.from_numpy(B)
    flops = 2 * size ** 3
    return (flops / median_time(lambda: np.matmul(A, B, out=out)) / 1e9,
            flops / median_time(lambda: torch.mm(A_t, B_t)) / 1e9)


def check_fast_step_matches_the_chapter(params, X, y):
    fast = NumpyTwoLayer(params, len(y))
    loss = fast.step(X, y, LEARNING_RATE)
    expected_loss, expected = reference_step(params, X, y, LEARNING_RATE)
    assert abs(loss - expected_loss) < 1e-4 * max(1.0, expected_loss)
    for name, value in fast.params().items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-3, atol=1e-5)


def torch_stepper(params, X, y):
    model = torch_two_layer(params)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
    return lambda: torch_step(model, optimizer, X_t, y_t)


def compare_step(label, X, y, n_hidden, n_classes):
    params = ch03.init_two_layer(X.shape[1], n_hidden, n_classes, np.random.default_rng(0), dtype=np.float32)
    check_fast_step_matches_the_chapter(params, X, y)
    fast = NumpyTwoLayer(params, len(y))
    result = compare(f"training step, {label}", ("numpy from scratch", lambda: fast.step(X, y, LEARNING_RATE)),
                     ("torch nn.Sequential + SGD", torch_stepper(params, X, y)))
    return result, params


def run():
    X_train, _, y_train, _ = digits()
    X_digits, y_digits = X_train[:64].astype(np.float32), y_train[:64]
    digits_step, digits_params = compare_step("digits: batch 64, 64 -> 128 -> 10", X_digits, y_digits, 128, 10)
    digits_step.note = (f"tiny matrices ({step_flops(64, 64, 128, 10) / 1e6:.1f} MFLOP of products per step, a few µs "
                        "of arithmetic): both are bound by fixed costs per operation. numpy's step is about 25 calls "
                        "of 1-5 µs each; torch's also builds and walks an autograd graph, sends every operator through "
                        "its dispatcher and runs the optimizer's loop over the parameters.")

    pure = compare("training step, digits, the notebook's pure functions",
                   ("numpy, new arrays each step", lambda: reference_step(digits_params, X_digits, y_digits, LEARNING_RATE)),
                   ("torch nn.Sequential + SGD", torch_stepper(digits_params, X_digits, y_digits)))
    pure.note = ("ch03.two_layer_loss_and_grads plus a new parameter dict, as the notebook trains: every "
                 "intermediate is a fresh array, and still no autograd or dispatch costs.")

    rng = np.random.default_rng(1)
    X_large = rng.standard_normal((512, 1024), dtype=np.float32)
    y_large = rng.integers(0, 10, size=512)
    large_step, _ = compare_step("large: batch 512, 1024 -> 1024 -> 10", X_large, y_large, 1024, 10)
    numpy_gflops, torch_gflops = matmul_gflops()
    flops = step_flops(512, 1024, 1024, 10)
    achieved, torch_achieved = flops / large_step.ours_s / 1e9, flops / large_step.peer_s / 1e9
    large_step.note = (f"matrix-multiply bound: {flops / 1e9:.2f} GFLOP of products per step. numpy's step runs at "
                       f"{achieved:.0f} GFLOP/s, {achieved / numpy_gflops:.0%} of numpy's float32 1024^3 matmul "
                       f"({numpy_gflops:.0f} GFLOP/s) and {achieved / max(numpy_gflops, torch_gflops):.0%} of the faster "
                       f"library's; torch's step runs at {torch_achieved:.0f} GFLOP/s. The rest of the time is "
                       "element-wise work on (512, 1024) arrays (bias, ReLU, its mask, sums, the W1 update).")
    matmul = Comparison("float32 matmul 1024 x 1024 x 1024", "numpy (OpenBLAS)", "torch",
                        2 * 1024 ** 3 / numpy_gflops / 1e9, 2 * 1024 ** 3 / torch_gflops / 1e9,
                        note=f"the machine's throughput: numpy {numpy_gflops:.0f} GFLOP/s, torch {torch_gflops:.0f} GFLOP/s.")
    return [digits_step, pure, large_step, matmul]
