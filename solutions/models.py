"""Networks the chapters train after they have been built by hand, written with torch.nn.

Chapter 03 builds a multi-layer perceptron from numpy layers; the chapters after it need that network's
gradients without handing out chapter 03's answers, so they take it from here, where torch's autograd does
the backward pass. This module travels with a learner's copy of the course, like `common.py` and `data.py`.
"""
import math

import numpy as np
import torch


def mlp(sizes, seed=0, dtype=torch.float64, activation=torch.nn.ReLU):
    """A stack of Linear layers with `activation` between them, started as chapter 03 starts its layers.

    Weights are He-scaled normals (variance 2 / fan-in) drawn from numpy's Generator(seed), in chapter 03's
    (fan-in, fan-out) order and stored transposed, as torch.nn.Linear keeps them; biases start at 0.
    sizes: [D, H1, ..., C]  ->  torch.nn.Sequential in `dtype`
    """
    rng, layers = np.random.default_rng(seed), []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        linear = torch.nn.Linear(n_in, n_out, dtype=dtype)
        with torch.no_grad():
            weight = rng.standard_normal((n_in, n_out)) * math.sqrt(2 / n_in)
            linear.weight.copy_(torch.from_numpy(weight.T.copy()))
            linear.bias.zero_()
        layers += [linear, activation()]
    return torch.nn.Sequential(*layers[:-1])


def parameter_arrays(model):
    """The model's parameters as numpy arrays that share memory with them: writing into an array
    (`array[...] = new`) changes the model. ->  list of arrays, in `model.parameters()` order"""
    return [p.detach().numpy() for p in model.parameters()]


def loss_and_grads(model, X, y):
    """Mean softmax cross-entropy of the model's scores on a batch, and its gradients.

    X: (N, D) array, y: (N,) int array  ->  (loss: float, list of gradient arrays shaped like
    `parameter_arrays(model)`, fresh copies)
    """
    model.zero_grad(set_to_none=True)
    scores = model(torch.from_numpy(np.asarray(X, dtype=np.float64)).to(next(model.parameters()).dtype))
    loss = torch.nn.functional.cross_entropy(scores, torch.from_numpy(np.asarray(y, dtype=np.int64)))
    loss.backward()
    return loss.item(), [p.grad.numpy().copy() for p in model.parameters()]


def sgd_gradient_sequence(X, y, n_hidden, steps, batch_size, lr, rng):
    """The gradients of `steps` steps of plain SGD on chapter 03's two-layer network (D -> n_hidden -> C, ReLU),
    each on a batch drawn from (X, y) with `rng`: a real gradient sequence, not white noise, to replay through
    an optimizer. The network starts from mlp([D, n_hidden, C], seed) with a seed drawn from `rng`.

    X: (N, D), y: (N,) int in [0, C)
    ->  tuple of `steps` dicts {"W1": (D, H), "b1": (H,), "W2": (H, C), "b2": (C,)} in chapter 03's layout
    """
    model = mlp([X.shape[1], n_hidden, int(y.max()) + 1], seed=int(rng.integers(2**31)))
    params, sequence = parameter_arrays(model), []
    for _ in range(steps):
        batch = rng.choice(len(y), batch_size, replace=False)
        _, grads = loss_and_grads(model, X[batch], y[batch])
        sequence.append({"W1": grads[0].T.copy(), "b1": grads[1], "W2": grads[2].T.copy(), "b2": grads[3]})
        for param, grad in zip(params, grads):
            param -= lr * grad
    return tuple(sequence)


def digits_cnn(seed=0, channels=(16, 32), dropout=0.25, dtype=torch.float32):
    """A small convolutional network for the 8 x 8 digits (chapter 07 trains it; later chapters reuse it):

    Conv2d(1, c1, 3, padding=1) -> ReLU -> Conv2d(c1, c2, 3, padding=1) -> ReLU -> MaxPool2d(2)  (c2 x 4 x 4)
    -> Dropout(dropout) -> Flatten -> Linear(c2 · 16, 10)
    Its starting weights are torch's default ones drawn from torch.manual_seed(seed), without touching the global
    generator's state. channels: (c1, c2).  x: (N, 1, 8, 8)  ->  scores (N, 10)
    """
    first, second = channels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, first, 3, padding=1, dtype=dtype), torch.nn.ReLU(),
            torch.nn.Conv2d(first, second, 3, padding=1, dtype=dtype), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Dropout(dropout), torch.nn.Flatten(), torch.nn.Linear(second * 16, 10, dtype=dtype))
