"""Chapter 02 exercises: gradient descent on linear regression."""
import copy
import functools
import math

import numpy as np

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from autograder.learner.wire import Table
from solutions import ch02_gradient_descent as ref
from solutions.data import diabetes

# What these exercises ask you to write without (scikit-learn does what these exercises ask you to write): see autograder/learner/forbidden.py.
SKLEARN = ("sklearn",)


@functools.lru_cache(maxsize=1)
def _diabetes_rows():
    X_train, _, y_train, _, _ = diabetes()
    return X_train[:40], y_train[:40]


def _diabetes(**extra):
    """Case arguments: 40 training rows of the diabetes data, plus `extra` (copied afresh each time)."""
    X, y = _diabetes_rows()
    return lambda: {"X": X.copy(), "y": y.copy(), **copy.deepcopy(extra)}


def _problem(n, d, seed, scale=1.0, **extra):
    """Case arguments: a random regression problem (a linear signal, an offset of 0.5, noise), plus `extra`."""
    def make():
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d)) * scale
        y = X @ rng.normal(size=d) + 0.5 + 0.1 * rng.normal(size=n)
        return {"X": X, "y": y, **copy.deepcopy(extra)}
    return make


def _by_hand(**extra):
    return lambda: {"X": np.array([[1.0], [2.0]]), "y": np.array([1.0, 4.0]), **copy.deepcopy(extra)}


def _weights(d, seed):
    return np.random.default_rng(seed).normal(size=d)


def _at_the_minimum():
    args = _problem(30, 2, 3)()
    w, b = ref.least_squares(**args)
    return {**args, "w": w, "b": b}


# ---------------------------------------------------------------- mse_loss

_RESIDUAL_BROADCAST_HINT = ("y[:, None] (or y.reshape(-1, 1)) has shape (n, 1); with the (n,) prediction X @ w + b it "
                            "broadcasts to an (n, n) table of every prediction minus every target. Keep y of shape (n,).")

def _mse_sum(X, y, w, b):
    return float(np.sum((X @ w + b - y) ** 2))


def _mse_half(X, y, w, b):
    return float(np.mean((X @ w + b - y) ** 2) / 2)


def _mse_without_bias(X, y, w, b):
    return float(np.mean((X @ w - y) ** 2))


def _mse_residual_broadcast(X, y, w, b):
    return float(np.mean((X @ w + b - y[:, None]) ** 2))


def _mean_absolute_error(X, y, w, b):
    return float(np.mean(np.abs(X @ w + b - y)))


def _root_mse(X, y, w, b):
    return float(np.sqrt(np.mean((X @ w + b - y) ** 2)))


def _mse_loop(X, y, w, b):
    total = 0.0
    for i in range(len(y)):
        prediction = sum(X[i, j] * w[j] for j in range(len(w))) + b
        total += (y[i] - prediction) ** 2
    return total / len(y)


def _mse_dot(X, y, w, b):
    residual = y - (np.dot(X, w) + b)
    return residual.dot(residual) / residual.size


register(Exercise(
    id="ch02.mse_loss", points=1, reference=ref.mse_loss,
    cases=(
        Case("two points, by hand", _by_hand(w=np.array([1.0]), b=0.5)),
        Case("diabetes, 40 patients, 10 features", _diabetes(w=_weights(10, 1), b=150.0)),
        Case("one sample", lambda: {"X": np.array([[0.5, -2.0, 1.0]]), "y": np.array([3.0]),
                                     "w": np.array([1.0, 0.5, -1.0]), "b": -0.25}),
        Case("random, 200 x 5", _problem(200, 5, 7, w=_weights(5, 8), b=-1.0), hidden=True),
        Case("large values", _problem(50, 3, 9, scale=1e3, w=_weights(3, 10), b=2e3), hidden=True),
    ),
    mistakes=(
        Mistake("sum instead of mean", "The MSE averages the squared errors: divide the sum by n.", _mse_sum),
        Mistake("half MSE", "The course's MSE is (1/n) Σ (ŷ − y)², without the ½ some books add.", _mse_half),
        Mistake("bias unused", "The prediction is X @ w + b: add b.", _mse_without_bias),
        Mistake("absolute instead of squared errors", "Square the residuals: (ŷ − y) ** 2.", _mean_absolute_error),
        Mistake("root of the MSE", "That is the RMSE; the MSE has no square root.", _root_mse),
        Mistake("residual broadcast to (n, n)", _RESIDUAL_BROADCAST_HINT, _mse_residual_broadcast),
    ),
    alternatives=(_mse_loop, _mse_dot),
))


# ---------------------------------------------------------------- mse_gradient

def _gradient_parts(X, y, w, b):
    residual = X @ w + b - y
    return residual, len(y)


def _grad_sign_flipped(X, y, w, b):
    residual, n = _gradient_parts(X, y, w, b)
    return -2 / n * (X.T @ residual), -2 / n * float(residual.sum())


def _grad_without_two(X, y, w, b):
    residual, n = _gradient_parts(X, y, w, b)
    return X.T @ residual / n, float(residual.sum()) / n


def _grad_without_mean(X, y, w, b):
    residual, n = _gradient_parts(X, y, w, b)
    return 2 * (X.T @ residual), 2 * float(residual.sum())


def _grad_bias_as_weight(X, y, w, b):
    residual, n = _gradient_parts(X, y, w, b)
    grad_w = 2 / n * (X.T @ residual)
    return grad_w, grad_w.copy()


def _grad_bias_unused(X, y, w, b):
    residual = X @ w - y
    n = len(y)
    return 2 / n * (X.T @ residual), 2 / n * float(residual.sum())


def _grad_residual_broadcast(X, y, w, b):
    residual = X @ w + b - y[:, None]
    n = len(y)
    return 2 / n * (X.T @ residual), 2 / n * float(residual.sum())


def _grad_mean_over_features(X, y, w, b):
    residual, n = _gradient_parts(X, y, w, b)
    return 2 * np.mean(X * residual[:, None], axis=1), 2 / n * float(residual.sum())


def _grad_loop(X, y, w, b):
    n, d = X.shape
    grad_w, grad_b = np.zeros(d), 0.0
    for i in range(n):
        error = X[i] @ w + b - y[i]
        grad_w += 2 * error * X[i] / n
        grad_b += 2 * error / n
    return grad_w, grad_b


def _grad_mean_form(X, y, w, b):
    residual = (X @ w + b - y)[:, None]
    return 2 * np.mean(residual * X, axis=0), 2 * np.mean(residual)


register(Exercise(
    id="ch02.mse_gradient", points=2, reference=ref.mse_gradient, outputs=("grad_w", "grad_b"),
    cases=(
        Case("two points, by hand", _by_hand(w=np.array([1.0]), b=0.5)),
        Case("diabetes, 40 patients, 10 features", _diabetes(w=_weights(10, 1), b=150.0)),
        Case("one sample, 3 features", lambda: {"X": np.array([[0.5, -2.0, 1.0]]), "y": np.array([3.0]),
                                                "w": np.array([1.0, 0.5, -1.0]), "b": -0.25}),
        Case("random, 200 x 5", _problem(200, 5, 7, w=_weights(5, 8), b=-1.0), hidden=True),
        Case("at the minimum the gradient is ~0", _at_the_minimum, hidden=True),
    ),
    mistakes=(
        Mistake("gradient sign flipped", "The gradient of (ŷ − y)² is 2(ŷ − y)·x; writing (y − ŷ) flips its sign, "
                "and the descent then climbs the loss (the article's bug).", _grad_sign_flipped),
        Mistake("missing factor 2", "d/dŷ (ŷ − y)² = 2(ŷ − y): keep the 2.", _grad_without_two),
        Mistake("missing 1/n", "The loss is a mean, so its gradient is too: divide by n.", _grad_without_mean),
        Mistake("bias gradient written as the weight's", "∂J/∂b has no x in it: (2/n) Σ (ŷᵢ − yᵢ), one number "
                "(the article's bug).", _grad_bias_as_weight),
        Mistake("bias unused in the prediction", "The prediction is X @ w + b: the residual needs b.", _grad_bias_unused),
        Mistake("averaged over features instead of samples", "Sum over the samples (axis 0): Xᵀ @ residual.",
                _grad_mean_over_features),
        Mistake("residual broadcast to (n, n)", _RESIDUAL_BROADCAST_HINT, _grad_residual_broadcast),
    ),
    alternatives=(_grad_loop, _grad_mean_form),
))


# ---------------------------------------------------------------- gradient_step

def _step_ascent(w, b, grad_w, grad_b, lr):
    return w + lr * grad_w, b + lr * grad_b


def _step_lr_only_on_w(w, b, grad_w, grad_b, lr):
    return w - lr * grad_w, b - grad_b


def _step_bias_frozen(w, b, grad_w, grad_b, lr):
    return w - lr * grad_w, b


def _step_in_place(w, b, grad_w, grad_b, lr):
    w -= lr * grad_w
    return w, b - lr * grad_b


def _step_subtract(w, b, grad_w, grad_b, lr):
    return np.subtract(w, np.multiply(grad_w, lr)), float(np.subtract(b, lr * grad_b))


def _step_copy_then_update(w, b, grad_w, grad_b, lr):
    new_w = w.copy()
    new_w -= lr * grad_w
    b -= lr * grad_b
    return new_w, b


def _step_args(d, seed, lr):
    def make():
        rng = np.random.default_rng(seed)
        return {"w": rng.normal(size=d), "b": float(rng.normal()), "grad_w": rng.normal(size=d),
                "grad_b": float(rng.normal()), "lr": lr}
    return make


register(Exercise(
    id="ch02.gradient_step", points=1, reference=ref.gradient_step, outputs=("w", "b"),
    cases=(
        Case("by hand", lambda: {"w": np.array([1.0, -2.0]), "b": 0.5, "grad_w": np.array([4.0, -2.0]),
                                 "grad_b": 3.0, "lr": 0.25}),
        Case("random, 10 weights", _step_args(10, 2, 0.1)),
        Case("random, learning rate 1e-3", _step_args(4, 3, 1e-3), hidden=True),
        Case("zero learning rate changes nothing", _step_args(3, 4, 0.0), hidden=True),
    ),
    mistakes=(
        Mistake("gradient ascent", "Descent moves against the gradient: subtract lr * gradient.", _step_ascent),
        Mistake("learning rate applied only to w", "Scale both gradients by lr, the bias's too.", _step_lr_only_on_w),
        Mistake("bias never updated", "Update b as well: b − lr * grad_b.", _step_bias_frozen),
        Mistake("w updated in place", "`w -= ...` changes the caller's array; return w − lr * grad_w instead.",
                _step_in_place),
    ),
    alternatives=(_step_subtract, _step_copy_then_update),
))


# ---------------------------------------------------------------- fit_linear_regression (the article's bugs)

def _fit_with(gradient, predict_with_bias=True, record_start=True, lr_on_bias=True):
    def fit(X, y, lr, n_steps):
        w, b = np.zeros(X.shape[1]), 0.0
        loss = ref.mse_loss if predict_with_bias else _mse_without_bias
        losses = [loss(X, y, w, b)] if record_start else []
        for _ in range(n_steps):
            grad_w, grad_b = gradient(X, y, w, b)
            w, b = w - lr * grad_w, b - (lr if lr_on_bias else 1.0) * grad_b
            losses.append(loss(X, y, w, b))
        return w, b, np.array(losses)
    return fit


def _fit_recording_before_each_step(X, y, lr, n_steps):
    w, b = np.zeros(X.shape[1]), 0.0
    losses = []
    for _ in range(n_steps):
        losses.append(ref.mse_loss(X, y, w, b))
        grad_w, grad_b = ref.mse_gradient(X, y, w, b)
        w, b = w - lr * grad_w, b - lr * grad_b
    return w, b, np.array(losses)


def _fit_as_in_the_article(X, y, lr, n_steps):
    """All three bugs at once: (y − ŷ), ŷ = X @ w without b, and the bias gradient set to the weight's."""
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [_mse_without_bias(X, y, w, b)]
    for _ in range(n_steps):
        residual = y - X @ w
        grad_w = X.T @ residual / len(y)
        w, b = w - lr * grad_w, b - lr * float(grad_w.mean())
        losses.append(_mse_without_bias(X, y, w, b))
    return w, b, np.array(losses)


def _fit_bias_gradient_as_weight(X, y, lr, n_steps):
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [ref.mse_loss(X, y, w, b)]
    for _ in range(n_steps):
        grad_w, _ = ref.mse_gradient(X, y, w, b)
        w, b = w - lr * grad_w, b - lr * float(grad_w.mean())
        losses.append(ref.mse_loss(X, y, w, b))
    return w, b, np.array(losses)


def _fit_closed_loop(X, y, lr, n_steps):
    n = len(y)
    theta = np.zeros(X.shape[1] + 1)
    design = np.column_stack([X, np.ones(n)])
    losses = np.empty(n_steps + 1)
    for t in range(n_steps + 1):
        residual = design @ theta - y
        losses[t] = residual @ residual / n
        if t < n_steps:
            theta = theta - lr * 2 / n * design.T @ residual
    return theta[:-1], theta[-1], losses


def _fit_args(n, d, seed, lr, n_steps):
    return _problem(n, d, seed, lr=lr, n_steps=n_steps)


register(Exercise(
    id="ch02.fit_linear_regression", forbids=SKLEARN, points=2, reference=ref.fit_linear_regression, outputs=("w", "b", "losses"),
    uses=("mse_loss", "mse_gradient", "gradient_step"),
    cases=(
        Case("one feature, 20 steps", _fit_args(30, 1, 11, 0.1, 20)),
        Case("diabetes, 40 patients, 25 steps", _diabetes(lr=0.05, n_steps=25)),
        Case("no steps: the starting point", _fit_args(5, 2, 12, 0.1, 0)),
        Case("random, 100 x 4, 60 steps", _fit_args(100, 4, 13, 0.2, 60), hidden=True),
        Case("diabetes, tiny learning rate", _diabetes(lr=1e-4, n_steps=10), hidden=True),
    ),
    mistakes=(
        Mistake("gradient sign flipped", "With (y − ŷ) in the gradient the update climbs the loss: the losses grow. "
                "Use ŷ − y (the article's first bug).", _fit_with(_grad_sign_flipped)),
        Mistake("bias unused in the prediction", "The article updates b but predicts with X @ w alone; predict "
                "with X @ w + b (its second bug).", _fit_with(_grad_bias_unused, predict_with_bias=False)),
        Mistake("bias gradient written as the weight's", "The bias's gradient is (2/n) Σ (ŷᵢ − yᵢ), not the "
                "weights' (the article's third bug).", _fit_bias_gradient_as_weight),
        Mistake("the article's code as written", "All three bugs at once: the sign of the gradient, the unused "
                "bias, and the bias's gradient.", _fit_as_in_the_article),
        Mistake("learning rate not applied to the bias", "Scale grad_b by lr too.",
                _fit_with(ref.mse_gradient, lr_on_bias=False)),
        Mistake("starting loss not recorded", "losses[0] is the loss before the first step; record it, then one "
                "loss after each step (n_steps + 1 in all).", _fit_with(ref.mse_gradient, record_start=False)),
        Mistake("losses recorded before each step", "A loss recorded at the top of the loop is the loss before that "
                "step, so the loss after the last step is missing: record losses[0] before the loop, then one loss "
                "after each step (n_steps + 1 in all).", _fit_recording_before_each_step),
    ),
    alternatives=(_fit_closed_loop,),
))


# ---------------------------------------------------------------- minibatch_sgd

def _sgd_variant(orders, drop_last=False, shuffle_y=True, step_per_epoch=False, divide_by_n=False):
    """The reference loop with one mistake switched on; `orders()` makes a fresh order_of(rng, n)."""
    def sgd(X, y, lr, n_epochs, batch_size, rng):
        learning_rate = lr if callable(lr) else (lambda step: lr)
        order_of = orders()
        n = len(y)
        w, b = np.zeros(X.shape[1]), 0.0
        losses = [ref.mse_loss(X, y, w, b)]
        step = 0
        for epoch in range(n_epochs):
            order = order_of(rng, n)
            stop = n - n % batch_size if drop_last else n
            for start in range(0, stop, batch_size):
                batch = order[start:start + batch_size]
                targets = y[batch] if shuffle_y else y[start:start + batch_size]
                grad_w, grad_b = ref.mse_gradient(X[batch], targets, w, b)
                if divide_by_n:
                    grad_w, grad_b = grad_w * len(batch) / n, grad_b * len(batch) / n
                w, b = ref.gradient_step(w, b, grad_w, grad_b, learning_rate(epoch if step_per_epoch else step))
                step += 1
            losses.append(ref.mse_loss(X, y, w, b))
        return w, b, np.array(losses)
    return sgd


def _fresh_orders():
    return lambda rng, n: rng.permutation(n)


def _one_order():
    first = []

    def order_of(rng, n):
        if not first:
            first.append(rng.permutation(n))
        return first[0]
    return order_of


def _reshuffled_orders():
    last = []

    def order_of(rng, n):
        last[:] = [rng.permutation(last[0] if last else n)]
        return last[0]
    return order_of


def _sgd_with_shuffle(X, y, lr, n_epochs, batch_size, rng):
    """Shuffles a fresh index array with rng.shuffle: the same random stream as rng.permutation(n)."""
    w, b = np.zeros(X.shape[1]), 0.0
    losses = [float(np.mean((X @ w + b - y) ** 2))]
    step = 0
    for _ in range(n_epochs):
        indices = np.arange(len(y))
        rng.shuffle(indices)
        X_shuffled, y_shuffled = X[indices], y[indices]
        for start in range(0, len(y), batch_size):
            Xb, yb = X_shuffled[start:start + batch_size], y_shuffled[start:start + batch_size]
            residual = Xb @ w + b - yb
            rate = lr(step) if callable(lr) else lr
            w = w - rate * 2 * Xb.T @ residual / len(yb)
            b = b - rate * 2 * residual.mean()
            step += 1
        losses.append(float(np.mean((X @ w + b - y) ** 2)))
    return w, b, np.array(losses)


def _sgd_args(n, d, seed, lr, n_epochs, batch_size):
    def make():
        args = _problem(n, d, seed)()
        return {**args, "lr": lr, "n_epochs": n_epochs, "batch_size": batch_size,
                "rng": np.random.default_rng(seed + 100)}
    return make


def _cosine(total_steps, lr_max):
    """A cosine schedule as a table of its rates (a table, unlike a function, travels to the sandbox)."""
    return Table([ref.cosine_schedule(step, total_steps, lr_max) for step in range(total_steps + 1)])


register(Exercise(
    id="ch02.minibatch_sgd", forbids=SKLEARN, points=2, reference=ref.minibatch_sgd, outputs=("w", "b", "losses"),
    uses=("mse_loss", "mse_gradient", "gradient_step"),
    cases=(
        Case("10 samples, batches of 3 (the last has 1), 3 epochs", _sgd_args(10, 2, 21, 0.1, 3, 3)),
        Case("batch size 1: stochastic descent", _sgd_args(8, 3, 22, 0.05, 2, 1)),
        Case("batch size n: full-batch descent", _sgd_args(12, 2, 23, 0.1, 4, 12)),
        Case("a cosine schedule as lr", _sgd_args(20, 2, 24, _cosine(12, 0.2), 3, 5)),
        Case("diabetes-sized, 300 x 10, batches of 32", _sgd_args(300, 10, 25, 0.02, 3, 32), hidden=True),
        Case("batch larger than the data", _sgd_args(6, 2, 26, 0.1, 2, 10), hidden=True),
    ),
    mistakes=(
        Mistake("never reshuffles", "Draw a new order with rng.permutation(n) at the start of every epoch.",
                _sgd_variant(_one_order)),
        Mistake("shuffles the previous epoch's order", "Each epoch's order is rng.permutation(n), a fresh "
                "permutation of 0..n-1; shuffling last epoch's order again is just as random but draws other "
                "numbers, so the results cannot match.", _sgd_variant(_reshuffled_orders)),
        Mistake("shuffles X without y", "Index X and y with the same batch indices, or the targets no longer "
                "belong to their rows.", _sgd_variant(_fresh_orders, shuffle_y=False)),
        Mistake("drops the last partial batch", "Keep the last, smaller batch: range(0, n, batch_size) and slices "
                "that stop at n.", _sgd_variant(_fresh_orders, drop_last=True)),
        Mistake("gradient scaled by the whole data set", "Average over the batch (mse_gradient on the batch), not "
                "over all n rows.", _sgd_variant(_fresh_orders, divide_by_n=True)),
        Mistake("schedule stepped per epoch", "The schedule takes the step number: count every batch's update.",
                _sgd_variant(_fresh_orders, step_per_epoch=True)),
    ),
    alternatives=(_sgd_with_shuffle,),
))


# ---------------------------------------------------------------- cosine_schedule

def _cosine_without_half(step, total_steps, lr_max, lr_min=0.0):
    progress = min(step, total_steps) / total_steps
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def _cosine_sine(step, total_steps, lr_max, lr_min=0.0):
    progress = min(step, total_steps) / total_steps
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.sin(math.pi * progress))


def _cosine_forgets_lr_min(step, total_steps, lr_max, lr_min=0.0):
    progress = min(step, total_steps) / total_steps
    return lr_min + 0.5 * lr_max * (1 + math.cos(math.pi * progress))


def _cosine_not_clamped(step, total_steps, lr_max, lr_min=0.0):
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * step / total_steps))


def _cosine_off_by_one(step, total_steps, lr_max, lr_min=0.0):
    progress = min(step + 1, total_steps) / total_steps
    return lr_min + 0.5 * (lr_max - lr_min) * (1 + math.cos(math.pi * progress))


def _linear_decay(step, total_steps, lr_max, lr_min=0.0):
    return lr_max - (lr_max - lr_min) * min(step, total_steps) / total_steps


def _cosine_numpy(step, total_steps, lr_max, lr_min=0.0):
    if step >= total_steps:
        return lr_min
    return lr_min + (lr_max - lr_min) * (1 + np.cos(np.pi * step / total_steps)) / 2


def _cosine_as_sine_squared(step, total_steps, lr_max, lr_min=0.0):
    t = min(step, total_steps) / total_steps
    return lr_min + (lr_max - lr_min) * math.cos(math.pi * t / 2) ** 2


register(Exercise(
    id="ch02.cosine_schedule", points=1, reference=ref.cosine_schedule, call=drivers.at_every_step,
    cases=(
        Case("T = 4 steps, from 1.0 to the default lr_min", lambda: {"total_steps": 4, "lr_max": 1.0}),
        Case("T = 10 steps, from 0.1 to 0.001", lambda: {"total_steps": 10, "lr_max": 0.1, "lr_min": 0.001}),
        Case("T = 1 step", lambda: {"total_steps": 1, "lr_max": 0.5, "lr_min": 0.1}, hidden=True),
        Case("T = 1000 steps", lambda: {"total_steps": 1000, "lr_max": 3e-4, "lr_min": 3e-5}, hidden=True),
    ),
    mistakes=(
        Mistake("missing the ½", "lr(0) must be lr_max: ½ (lr_max − lr_min) (1 + cos 0) = lr_max − lr_min.",
                _cosine_without_half),
        Mistake("sine instead of cosine", "Use cos(π t / T): it starts at 1 and ends at −1.", _cosine_sine),
        Mistake("lr_min left out of the amplitude", "The cosine swings over (lr_max − lr_min), so it ends at lr_min.",
                _cosine_forgets_lr_min),
        Mistake("not clamped after the last step", "After step T stay at lr_min: use min(step, T).",
                _cosine_not_clamped),
        Mistake("off by one step", "Step 0 gets lr_max: use t = step, not step + 1.", _cosine_off_by_one),
        Mistake("linear decay", "That falls in a straight line; the schedule follows ½ (1 + cos(π t / T)).",
                _linear_decay),
    ),
    alternatives=(_cosine_numpy, _cosine_as_sine_squared),
))


# ---------------------------------------------------------------- least_squares

def _ls_no_intercept(X, y):
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    return w, 0.0


def _ls_bias_from_the_wrong_end(X, y):
    design = np.column_stack([X, np.ones(len(X))])
    theta, *_ = np.linalg.lstsq(design, y, rcond=None)
    return theta[1:], float(theta[0])


def _ls_bias_added_afterwards(X, y):
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    return w, float(np.mean(y - X @ w))


def _ls_qr(X, y):
    """[1 X] = QR, then R θ = Qᵀ y: stable where the normal equations (XᵀX θ = Xᵀy) square the condition
    number and lose half the digits (an offset column of 1e5 or nearly collinear columns)."""
    q, r = np.linalg.qr(np.hstack([np.ones((len(X), 1)), X]))
    theta = np.linalg.solve(r, q.T @ y)
    return theta[1:], theta[0]


def _ls_centered(X, y):
    """Centre X and y, fit w through the origin, then b = mean(y) − mean(X) · w (lstsq on the centred X,
    not its normal equations, which would square its condition number)."""
    x_mean, y_mean = X.mean(axis=0), y.mean()
    w, *_ = np.linalg.lstsq(X - x_mean, y - y_mean, rcond=None)
    return w, y_mean - x_mean @ w


def _ls_normal_equations(X, y):
    design = np.column_stack([X, np.ones(len(X))])
    theta = np.linalg.solve(design.T @ design, design.T @ y)
    return theta[:-1], float(theta[-1])


def _far_from_zero(n, d, seed, offset):
    """Features that vary by about 1 around `offset` (a year, a price): [X 1] has two nearly parallel columns."""
    def make():
        rng = np.random.default_rng(seed)
        X = offset + rng.normal(size=(n, d))
        return {"X": X, "y": (X - offset) @ rng.normal(size=d) + 0.5 + 0.1 * rng.normal(size=n)}
    return make


def _ls_pinv(X, y):
    theta = np.linalg.pinv(np.c_[X, np.ones(len(X))]) @ y
    return theta[:-1], theta[-1]


register(Exercise(
    id="ch02.least_squares", points=1, reference=ref.least_squares, outputs=("w", "b"), atol=1e-8,
    cases=(
        Case("an exact line y = 2x + 1", lambda: {"X": np.array([[0.0], [1.0], [2.0], [3.0]]),
                                                  "y": np.array([1.0, 3.0, 5.0, 7.0])}),
        Case("diabetes, 40 patients, 10 features", _diabetes()),
        Case("random, 50 x 3 with an offset", _problem(50, 3, 31)),
        Case("features around 1e5 that vary by about 1: forming AᵀA squares the condition number",
             _far_from_zero(20, 2, 34, 1e5)),
        Case("random, 500 x 8", _problem(500, 8, 32), hidden=True),
        Case("as many samples as unknowns", _problem(4, 3, 33), hidden=True),
    ),
    mistakes=(
        Mistake("no intercept", "Append a column of ones to X so that the bias is solved for too.", _ls_no_intercept),
        Mistake("bias read from the wrong end", "If the ones column is last, θ[-1] is b and θ[:-1] is w.",
                _ls_bias_from_the_wrong_end),
        Mistake("bias fitted after the weights", "Fitting w through the origin and adding mean(y − X w) as b is "
                "not the least-squares solution; solve for w and b together.", _ls_bias_added_afterwards),
        Mistake("normal equations", "Solving AᵀA θ = Aᵀy (np.linalg.solve or inv of A.T @ A) squares A's condition "
                "number: with features around 1e5 that vary by about 1, most of float64's 16 digits are lost. "
                "np.linalg.lstsq(A, y, rcond=None) solves the least-squares problem without forming AᵀA.",
                _ls_normal_equations),
    ),
    alternatives=(_ls_qr, _ls_centered, _ls_pinv),
))
