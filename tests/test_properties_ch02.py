"""Property-based differential tests for chapter 02: reference vs torch / scikit-learn / numpy / scipy, and vs
every registered alternative (with the exercise's own tolerances).

Inputs come from tests/strategies.py: regression problems of controlled magnitude, a batch of one, batch sizes
past n, schedules as callables, defaults left out, float32 throughout where the docstring allows it.
"""

from fractions import Fraction

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from solutions import ch02_gradient_descent as ch02
from tests import strategies as s


@st.composite
def problems(draw, max_rows=12, max_cols=4, exponents=(-2, 3), dtype=np.float64):
    """(X, y, w, b) of a linear regression problem with a controlled magnitude; n = 1 is allowed."""
    n, d = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    X = draw(s.scaled_arrays((n, d), exponents=exponents, dtype=dtype))
    y = draw(s.scaled_arrays((n,), exponents=exponents, dtype=dtype))
    w = draw(s.scaled_arrays((d,), exponents=(-1, 1), dtype=dtype))
    b = draw(s.floats(1e3, min_abs=1e-3))
    return X, y, w, b


def _torch_loss(X, y, w, b):
    w_t = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    loss = F.mse_loss(torch.tensor(X, dtype=torch.float64) @ w_t + b_t, torch.tensor(y, dtype=torch.float64))
    loss.backward()
    return loss.item(), w_t.grad.numpy(), b_t.grad.item()


# ---------------------------------------------------------------- mse_loss and mse_gradient

@given(problem=problems())
@s.budget(60)
def test_mse_loss_matches_scikit_learn_and_torch(problem):
    X, y, w, b = problem
    loss = ch02.mse_loss(X, y, w, b)
    assert isinstance(loss, float)
    assert loss == pytest.approx(mean_squared_error(y, X @ w + b), rel=1e-12, abs=1e-300)
    assert loss == pytest.approx(_torch_loss(X, y, w, b)[0], rel=1e-10, abs=1e-300)


@given(problem=problems())
@example(problem=(np.array([[2.0]]), np.array([3.0]), np.array([1.5]), 0.0)).via("a batch of one at the minimum")
@s.budget(60)
def test_mse_gradient_matches_torch_autograd(problem):
    X, y, w, b = problem
    _, grad_w_t, grad_b_t = _torch_loss(X, y, w, b)
    grad_w, grad_b = ch02.mse_gradient(X, y, w, b)
    assert grad_w.shape == w.shape and isinstance(grad_b, float)
    scale = 1e-12 * (1 + np.abs(X).max()) * (1 + np.abs(X @ w + b - y).max())
    np.testing.assert_allclose(grad_w, grad_w_t, rtol=1e-9, atol=scale)
    assert grad_b == pytest.approx(grad_b_t, rel=1e-9, abs=scale)


@pytest.mark.parametrize("alternative", s.alternatives("ch02.mse_loss"))
@given(problem=problems())
@s.budget(40)
def test_mse_loss_alternatives_agree(alternative, problem):
    np.testing.assert_allclose(alternative(*problem), ch02.mse_loss(*problem), **s.tolerances("ch02.mse_loss"))


@pytest.mark.parametrize("alternative", s.alternatives("ch02.mse_gradient"))
@given(problem=problems())
@s.budget(40)
def test_mse_gradient_alternatives_agree(alternative, problem):
    tol = s.tolerances("ch02.mse_gradient")
    X, y, w, b = problem
    tol["atol"] = max(tol["atol"], 1e-13 * (1 + np.abs(X).max()) * (1 + np.abs(X @ w + b - y).max()))
    for theirs, ours in zip(alternative(*problem), ch02.mse_gradient(*problem)):
        np.testing.assert_allclose(theirs, ours, **tol)


# ---------------------------------------------------------------- gradient_step

@st.composite
def steps(draw, dtype=np.float64):
    d = draw(st.integers(1, 6))
    w = draw(s.scaled_arrays((d,), exponents=(-2, 3), dtype=dtype))
    grad_w = draw(s.scaled_arrays((d,), exponents=(-3, 3), dtype=dtype))
    b, grad_b = draw(s.floats(1e3)), draw(s.floats(1e3))
    lr = draw(st.one_of(st.just(0.0), st.sampled_from([1e-3, 0.1, 1.0]), st.floats(1e-6, 10.0)))
    return w, b, grad_w, grad_b, lr


@given(step=steps())
@s.budget(50)
def test_gradient_step_matches_torch_sgd(step):
    w, b, grad_w, grad_b, lr = step
    before = w.copy(), grad_w.copy()
    new_w, new_b = ch02.gradient_step(w, b, grad_w, grad_b, lr)
    np.testing.assert_array_equal(w, before[0])
    np.testing.assert_array_equal(grad_w, before[1])
    params = [torch.tensor(w, requires_grad=True), torch.tensor([b], dtype=torch.float64, requires_grad=True)]
    params[0].grad, params[1].grad = torch.tensor(grad_w), torch.tensor([grad_b], dtype=torch.float64)
    torch.optim.SGD(params, lr=lr).step()
    np.testing.assert_allclose(new_w, params[0].detach().numpy(), rtol=1e-12, atol=1e-300)
    assert new_b == pytest.approx(params[1].item(), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("alternative", s.alternatives("ch02.gradient_step"))
@given(step=st.one_of(steps(), steps(dtype=np.float32)))
@s.budget(40)
def test_gradient_step_alternatives_agree(alternative, step):
    w = step[0]
    w_before = w.copy()
    ours = ch02.gradient_step(*step)
    theirs = alternative(*step)
    np.testing.assert_array_equal(w, w_before)
    tol = s.tolerances("ch02.gradient_step")
    if w.dtype == np.float32:
        tol["rtol"] = max(tol["rtol"], 1e-6)
    for a, b in zip(theirs, ours):
        np.testing.assert_allclose(a, b, **tol)
    assert np.asarray(theirs[0]).dtype == np.asarray(ours[0]).dtype


# ---------------------------------------------------------------- fit_linear_regression and minibatch_sgd

def _torch_sgd(X, y, lr, n_epochs, batches):
    """Plain torch: nn.Linear from zeros, SGD, F.mse_loss on each batch; `batches(epoch)` lists index tensors.
    Returns w, b and the loss on all of (X, y) before the first epoch and after each."""
    model = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr if not callable(lr) else 1.0)
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    losses, step = [], 0
    with torch.no_grad():
        losses.append(F.mse_loss(model(X_t)[:, 0], y_t).item())
    for epoch in range(n_epochs):
        for batch in batches(epoch):
            if callable(lr):
                optimizer.param_groups[0]["lr"] = lr(step)
            optimizer.zero_grad()
            F.mse_loss(model(X_t[batch])[:, 0], y_t[batch]).backward()
            optimizer.step()
            step += 1
        with torch.no_grad():
            losses.append(F.mse_loss(model(X_t)[:, 0], y_t).item())
    return model.weight.detach().numpy()[0], model.bias.item(), np.array(losses)


def _close(ours, theirs, rtol=1e-9):
    (w, b, losses), (w_t, b_t, losses_t) = ours, theirs
    scale = 1e-12 * (1 + np.abs(w_t).max() + abs(b_t))
    np.testing.assert_allclose(w, w_t, rtol=rtol, atol=scale)
    assert b == pytest.approx(b_t, rel=rtol, abs=scale)
    np.testing.assert_allclose(losses, losses_t, rtol=rtol, atol=1e-12 * (1 + losses_t[0]))


fits = st.tuples(problems(max_rows=10, exponents=(-1, 1)), st.sampled_from([1e-3, 0.01, 0.05, 0.1]),
                 st.integers(0, 8))


@given(fit=fits)
@s.budget(30)
def test_fit_linear_regression_matches_torch_full_batch(fit):
    (X, y, _, _), lr, n_steps = fit
    ours = ch02.fit_linear_regression(X, y, lr, n_steps)
    assert ours[2].shape == (n_steps + 1,)
    _close(ours, _torch_sgd(X, y, lr, n_steps, lambda epoch: [torch.arange(len(y))]))


@pytest.mark.parametrize("alternative", s.alternatives("ch02.fit_linear_regression"))
@given(fit=fits)
@s.budget(30)
def test_fit_linear_regression_alternatives_agree(alternative, fit):
    (X, y, _, _), lr, n_steps = fit
    for a, b in zip(alternative(X, y, lr, n_steps), ch02.fit_linear_regression(X, y, lr, n_steps)):
        np.testing.assert_allclose(a, b, **s.tolerances("ch02.fit_linear_regression"))


def _schedule(kind, total):
    if kind == "constant":
        return 0.05
    if kind == "cosine":
        return lambda step: ch02.cosine_schedule(step, total, 0.1)  # lr_min left at its default
    return lambda step: 0.1 / (1 + step)


sgd_cases = st.tuples(problems(max_rows=9, exponents=(-1, 1)), st.integers(1, 11), st.integers(0, 3),
                      st.sampled_from(["constant", "cosine", "decay"]), st.integers(0, 1000))


@given(case=sgd_cases)
@example(case=((np.array([[1.0]]), np.array([2.0]), np.array([0.0]), 0.0), 1, 2, "constant", 0)).via("n = 1")
@s.budget(30)
def test_minibatch_sgd_matches_torch_sgd_on_the_same_batches(case):
    (X, y, _, _), batch_size, n_epochs, kind, seed = case
    lr = _schedule(kind, 8)
    ours = ch02.minibatch_sgd(X, y, lr, n_epochs, batch_size, np.random.default_rng(seed))
    orders = np.random.default_rng(seed)
    theirs = _torch_sgd(X, y, lr, n_epochs,
                        lambda epoch: torch.from_numpy(orders.permutation(len(y))).split(batch_size))
    _close(ours, theirs)


@given(case=sgd_cases)
@s.budget(20)
def test_minibatch_sgd_with_a_full_batch_is_gradient_descent(case):
    (X, y, _, _), _, n_epochs, _, seed = case
    ours = ch02.minibatch_sgd(X, y, 0.05, n_epochs, len(y) + seed % 3, np.random.default_rng(seed))
    _close(ours, ch02.fit_linear_regression(X, y, 0.05, n_epochs), rtol=1e-10)


@pytest.mark.parametrize("alternative", s.alternatives("ch02.minibatch_sgd"))
@given(case=sgd_cases)
@s.budget(30)
def test_minibatch_sgd_alternatives_agree(alternative, case):
    (X, y, _, _), batch_size, n_epochs, kind, seed = case
    lr = _schedule(kind, 8)
    ours = ch02.minibatch_sgd(X, y, lr, n_epochs, batch_size, np.random.default_rng(seed))
    theirs = alternative(X, y, lr, n_epochs, batch_size, np.random.default_rng(seed))
    for a, b in zip(theirs, ours):
        np.testing.assert_allclose(a, b, **s.tolerances("ch02.minibatch_sgd"))


# ---------------------------------------------------------------- cosine_schedule

schedules = st.tuples(st.integers(1, 40), st.sampled_from([1.0, 0.1, 3e-4, 0.5]),
                      st.sampled_from([None, 0.0, 0.001, 0.01]))


@given(schedule=schedules)
@example(schedule=(1, 0.5, None)).via("T = 1, lr_min left at its default")
@s.budget(30)
def test_cosine_schedule_matches_torch_until_T_and_then_stays_at_lr_min(schedule):
    """torch's CosineAnnealingLR goes back up after T_max (a period of 2·T_max); by design the course stays at
    lr_min from step T on. Both agree on 0..T."""
    total, lr_max, lr_min = schedule
    extra = {} if lr_min is None else {"lr_min": lr_min}
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr_max)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=lr_min or 0.0)
    for step in range(total + 1):
        assert ch02.cosine_schedule(step, total, lr_max, **extra) == \
            pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9, abs=1e-12 * lr_max)
        optimizer.step()
        scheduler.step()
    for step in (total, total + 1, 3 * total + 7):
        assert ch02.cosine_schedule(step, total, lr_max, **extra) == (lr_min or 0.0)
    assert ch02.cosine_schedule(0, total, lr_max, **extra) == pytest.approx(lr_max, rel=1e-15)


@pytest.mark.parametrize("alternative", s.alternatives("ch02.cosine_schedule"))
@given(schedule=st.tuples(st.one_of(st.integers(1, 40), st.sampled_from([1000, 10 ** 6])),
                          st.sampled_from([1.0, 0.1, 3e-4, 10.0]), st.sampled_from([None, 0.0, 1e-5, 0.01])),
       steps=st.lists(st.integers(0, 10 ** 6 + 5), min_size=1, max_size=20))
@s.budget(40)
def test_cosine_schedule_alternatives_agree(alternative, schedule, steps):
    total, lr_max, lr_min = schedule
    extra = {} if lr_min is None else {"lr_min": lr_min}
    for step in [0, 1, total - 1, total, total + 1] + steps:
        step = max(step, 0)
        np.testing.assert_allclose(alternative(step, total, lr_max, **extra),
                                   ch02.cosine_schedule(step, total, lr_max, **extra),
                                   **s.tolerances("ch02.cosine_schedule"))


# ---------------------------------------------------------------- least_squares

@st.composite
def independent_columns(draw, max_rows=12, max_cols=4, offset_exponents=(0, 0)):
    """(X, y) with linearly independent columns of [X 1], n >= d + 1 (n = d + 1: as many samples as unknowns);
    with offset_exponents, each column is shifted by up to 10**k, which is allowed but ill-conditioned."""
    d = draw(st.integers(1, max_cols))
    n = draw(st.integers(d + 1, max(d + 1, max_rows)))
    X = draw(s.scaled_arrays((n, d), exponents=(0, 0)))
    X = X + np.array([draw(st.sampled_from([0.0, 1.0, -1.0])) * 10.0 ** draw(st.integers(*offset_exponents))
                      for _ in range(d)])
    y = draw(s.scaled_arrays((n,), exponents=(-1, 3)))
    design = np.column_stack([X, np.ones(n)])
    s.assume(np.linalg.matrix_rank(design) == d + 1)
    return X, y


def _condition(X):
    return np.linalg.cond(np.column_stack([X, np.ones(len(X))]))


def _theta(X, y):
    w, b = ch02.least_squares(X, y)
    return np.append(w, b)


@given(problem=independent_columns())
@s.budget(50)
def test_least_squares_matches_lstsq_scipy_and_scikit_learn(problem):
    X, y = problem
    cond = _condition(X)
    s.assume(cond < 1e6)
    w, b = ch02.least_squares(X, y)
    assert w.shape == (X.shape[1],) and isinstance(b, float)
    theta = np.append(w, b)
    design = np.column_stack([X, np.ones(len(X))])
    tol = {"rtol": 1e-12 * cond, "atol": 1e-12 * cond * (1 + np.abs(y).max())}
    np.testing.assert_allclose(theta, np.linalg.lstsq(design, y, rcond=None)[0], **tol)
    np.testing.assert_allclose(theta, scipy.linalg.lstsq(design, y)[0], **tol)
    model = LinearRegression().fit(X, y)
    np.testing.assert_allclose(theta, np.append(model.coef_, model.intercept_), **tol)
    # the residual is orthogonal to every column of [X 1]: the normal equations hold
    residual = design @ theta - y
    np.testing.assert_allclose(design.T @ residual, 0.0, atol=1e-10 * cond * (1 + np.abs(y).max()) * len(y))


@pytest.mark.parametrize("alternative", s.alternatives("ch02.least_squares"))
@given(problem=independent_columns())
@s.budget(40)
def test_least_squares_alternatives_agree_when_well_conditioned(alternative, problem):
    X, y = problem
    s.assume(_condition(X) < 1e3)
    w, b = alternative(X, y)
    np.testing.assert_allclose(np.append(w, b), _theta(X, y), **s.tolerances("ch02.least_squares"))


def _exact_least_squares(X, y):
    """θ = (w, b) solving the normal equations [X 1]ᵀ[X 1] θ = [X 1]ᵀ y in exact rational arithmetic (every
    float64 is a fraction): the true least-squares solution of the float64 data, for small problems."""
    design = [[Fraction(v) for v in row] + [Fraction(1)] for row in X.tolist()]
    target = [Fraction(v) for v in y.tolist()]
    k = len(design[0])
    M = [[sum(row[i] * row[j] for row in design) for j in range(k)]
         + [sum(row[i] * t for row, t in zip(design, target))] for i in range(k)]
    for col in range(k):  # Gauss-Jordan; [X 1] has independent columns, so the pivots are nonzero
        pivot = next(r for r in range(col, k) if M[r][col] != 0)
        M[col], M[pivot] = M[pivot], M[col]
        for r in range(k):
            if r != col and M[r][col] != 0:
                factor = M[r][col] / M[col][col]
                M[r] = [a - factor * b for a, b in zip(M[r], M[col])]
    return np.array([float(M[i][k] / M[i][i]) for i in range(k)])


@pytest.mark.parametrize("alternative", s.alternatives("ch02.least_squares"))
@given(problem=independent_columns(offset_exponents=(2, 6)))
@example(problem=(np.array([[99999.0], [100000.0]]), np.array([-1.0, 0.0]))).via("an offset of 1e5, n = d + 1")
@example(problem=(np.array([[0.0, 0.0], [1.0, 1.0 + 1e-6], [2.0, 2.0], [3.0, 3.0 - 1e-6]]),
                  np.array([1.0, 0.0, 2.0, 1.0]))).via("nearly collinear columns")
@s.budget(40)
def test_least_squares_alternatives_are_as_accurate_as_lstsq_on_any_independent_columns(alternative, problem):
    """Ill-conditioned but allowed inputs (offsets up to 1e6, nearly collinear columns). Here the reference
    itself is off the exact solution by up to about cond([X 1]) · eps · |θ|, more than the exercise's
    tolerance, so two correct, backward-stable solvers (lstsq's SVD, QR) may differ by that much. An
    alternative must be within the exercise's tolerance of the exact solution, or at most 100 times further
    from it than lstsq: solving the normal equations, which squares the condition number, is not."""
    X, y = problem
    exact = _exact_least_squares(X, y)
    reference_error = np.abs(_theta(X, y) - exact)
    w, b = alternative(X, y)
    error = np.abs(np.append(w, b) - exact)
    tol = s.tolerances("ch02.least_squares")
    allowed = tol["atol"] + tol["rtol"] * np.abs(exact) + 100 * reference_error
    assert np.all(error <= allowed), (error, reference_error, exact)
