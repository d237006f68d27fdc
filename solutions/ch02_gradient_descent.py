"""Chapter 02: gradient descent on linear regression, from scratch in numpy.

The model is ŷ = X @ w + b with X: (n, d), w: (d,), b a float. Its loss is the mean squared error
J(w, b) = (1/n) Σᵢ (ŷᵢ − yᵢ)², whose gradient is ∂J/∂w = (2/n) Xᵀ(ŷ − y) and ∂J/∂b = (2/n) Σᵢ (ŷᵢ − yᵢ).
Every function returns new values and leaves its inputs untouched.
"""
import math

import numpy as np


def mse_loss(X, y, w, b):
    """Mean squared error of the linear model on (X, y).

    X: (n, d), y: (n,), w: (d,), b: float  ->  float
    """
    ### BEGIN SOLUTION
    residual = X @ w + b - y
    return float(np.mean(residual ** 2))
    ### END SOLUTION


def mse_gradient(X, y, w, b):
    """Gradient of `mse_loss` with respect to w and b.

    X: (n, d), y: (n,), w: (d,), b: float  ->  (grad_w: (d,), grad_b: float)
    """
    ### BEGIN SOLUTION
    residual = X @ w + b - y
    n = len(y)
    grad_w = 2 / n * (X.T @ residual)
    grad_b = 2 / n * float(np.sum(residual))
    return grad_w, grad_b
    ### END SOLUTION


def gradient_step(w, b, grad_w, grad_b, lr):
    """One step of gradient descent: move both parameters against their gradient by lr.

    w: (d,), b: float, grad_w: (d,), grad_b: float, lr: float  ->  (new w: (d,), new b: float)
    """
    ### BEGIN SOLUTION
    return w - lr * grad_w, b - lr * grad_b
    ### END SOLUTION


def fit_linear_regression(X, y, lr, n_steps):
    """Full-batch gradient descent from w = 0, b = 0 (the corrected version of the article's code).

    X: (n, d), y: (n,), lr: float, n_steps: int
    ->  (w: (d,), b: float, losses: (n_steps + 1,)), where losses[t] is the loss after t steps
        (losses[0] at the starting point).
    """
    ### BEGIN SOLUTION
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [mse_loss(X, y, w, b)]
    for _ in range(n_steps):
        grad_w, grad_b = mse_gradient(X, y, w, b)
        w, b = gradient_step(w, b, grad_w, grad_b, lr)
        losses.append(mse_loss(X, y, w, b))
    return w, b, np.array(losses)
    ### END SOLUTION


def minibatch_sgd(X, y, lr, n_epochs, batch_size, rng):
    """Mini-batch stochastic gradient descent from w = 0, b = 0.

    Each epoch draws a new order with `rng.permutation(n)` and walks it in consecutive batches of
    `batch_size` rows (the last batch may be smaller), taking one gradient step per batch.
    batch_size=1 is stochastic gradient descent; batch_size=n is full-batch descent.
    `lr` is a float, or a schedule: a function of the step number (0 for the first step).

    X: (n, d), y: (n,), lr: float or callable, n_epochs: int, batch_size: int, rng: numpy Generator
    ->  (w: (d,), b: float, losses: (n_epochs + 1,)), losses[e] being the loss on all of (X, y)
        after e epochs.
    """
    ### BEGIN SOLUTION
    learning_rate = lr if callable(lr) else (lambda step: lr)
    n = len(y)
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [mse_loss(X, y, w, b)]
    step = 0
    for _ in range(n_epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            grad_w, grad_b = mse_gradient(X[batch], y[batch], w, b)
            w, b = gradient_step(w, b, grad_w, grad_b, learning_rate(step))
            step += 1
        losses.append(mse_loss(X, y, w, b))
    return w, b, np.array(losses)
    ### END SOLUTION


def cosine_schedule(step, total_steps, lr_max, lr_min=0.0):
    """Cosine decay from lr_max at step 0 to lr_min at step total_steps, then flat at lr_min.

    lr(t) = lr_min + ½ (lr_max − lr_min) (1 + cos(π t / T))  for 0 ≤ t ≤ T.
    step: int, total_steps: int > 0, lr_max: float, lr_min: float  ->  float
    """
    ### BEGIN SOLUTION
    progress = min(step, total_steps) / total_steps
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))
    ### END SOLUTION


def least_squares(X, y):
    """The closed-form minimiser of the MSE: solve min ‖[X 1] θ − y‖² with θ = (w, b).

    X: (n, d) with linearly independent columns, y: (n,)  ->  (w: (d,), b: float)
    """
    ### BEGIN SOLUTION
    design = np.column_stack([X, np.ones(len(X))])
    theta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return theta[:-1], float(theta[-1])
    ### END SOLUTION
