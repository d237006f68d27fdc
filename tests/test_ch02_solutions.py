"""Chapter 02's references against independent ones: scikit-learn, torch, finite differences."""
import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_squared_error

from solutions import ch02_gradient_descent as ch02
from solutions.data import diabetes


@pytest.fixture(scope="module")
def data():
    X_train, X_test, y_train, y_test, _ = diabetes()
    return X_train, y_train


def random_problem(seed, n=60, d=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ rng.normal(size=d) + 1.5 + 0.1 * rng.normal(size=n), rng.normal(size=d), float(rng.normal())


def test_diabetes_is_standardized_on_the_training_split(data):
    X_train, _ = data
    assert X_train.shape == (331, 10)
    np.testing.assert_allclose(X_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X_train.std(axis=0), 1, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_mse_matches_scikit_learn(seed):
    X, y, w, b = random_problem(seed)
    assert ch02.mse_loss(X, y, w, b) == pytest.approx(mean_squared_error(y, X @ w + b), rel=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_gradient_matches_torch_autograd(seed):
    X, y, w, b = random_problem(seed)
    w_t = torch.tensor(w, requires_grad=True)
    b_t = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.mse_loss(torch.tensor(X) @ w_t + b_t, torch.tensor(y))
    loss.backward()
    grad_w, grad_b = ch02.mse_gradient(X, y, w, b)
    np.testing.assert_allclose(grad_w, w_t.grad.numpy(), rtol=1e-10)
    assert grad_b == pytest.approx(b_t.grad.item(), rel=1e-10)


def test_gradient_matches_central_differences():
    X, y, w, b = random_problem(5)
    h = 1e-6
    numeric_w = [(ch02.mse_loss(X, y, w + h * e, b) - ch02.mse_loss(X, y, w - h * e, b)) / (2 * h)
                 for e in np.eye(len(w))]
    numeric_b = (ch02.mse_loss(X, y, w, b + h) - ch02.mse_loss(X, y, w, b - h)) / (2 * h)
    grad_w, grad_b = ch02.mse_gradient(X, y, w, b)
    np.testing.assert_allclose(grad_w, numeric_w, rtol=1e-6)
    assert grad_b == pytest.approx(numeric_b, rel=1e-6)


def test_least_squares_matches_scikit_learn(data):
    X, y = data
    w, b = ch02.least_squares(X, y)
    model = LinearRegression().fit(X, y)
    np.testing.assert_allclose(w, model.coef_, rtol=1e-9)
    assert b == pytest.approx(model.intercept_, rel=1e-12)


def test_least_squares_is_exact_on_features_far_from_zero():
    """Features around 1e5 that vary by about 1 (the exercise's visible case): [X 1] has nearly parallel columns,
    and the normal equations lose most digits, but least squares recovers an exact line to about 1e-9."""
    rng = np.random.default_rng(34)
    X = 1e5 + rng.normal(size=(20, 2))
    w_true, b_true = np.array([1.5, -0.25]), 7.0
    w, b = ch02.least_squares(X, X @ w_true + b_true)
    np.testing.assert_allclose(w, w_true, rtol=1e-9)
    assert b == pytest.approx(b_true, abs=1e-3)
    model = LinearRegression().fit(X, X @ w_true + b_true)
    np.testing.assert_allclose(w, model.coef_, rtol=1e-8)


def test_gradient_descent_converges_to_least_squares(data):
    X, y = data
    w, b, losses = ch02.fit_linear_regression(X, y, lr=0.2, n_steps=20000)
    w_exact, b_exact = ch02.least_squares(X, y)
    np.testing.assert_allclose(w, w_exact, atol=1e-6)
    assert b == pytest.approx(b_exact)
    assert np.all(np.diff(losses) <= 1e-9), "full-batch descent below the stability limit never raises the loss"


def test_full_batch_minibatch_equals_gradient_descent(data):
    X, y = data
    w_gd, b_gd, losses_gd = ch02.fit_linear_regression(X, y, lr=0.1, n_steps=15)
    w_sgd, b_sgd, losses_sgd = ch02.minibatch_sgd(X, y, lr=0.1, n_epochs=15, batch_size=len(y),
                                                  rng=np.random.default_rng(0))
    np.testing.assert_allclose(w_sgd, w_gd, rtol=1e-10)
    np.testing.assert_allclose(losses_sgd, losses_gd, rtol=1e-10)


def test_minibatch_sgd_matches_torch_sgd_on_the_same_batches():
    X, y, _, _ = random_problem(7, n=50, d=3)
    batch_size, n_epochs, lr = 8, 3, 0.05
    w, b, _ = ch02.minibatch_sgd(X, y, lr=lr, n_epochs=n_epochs, batch_size=batch_size, rng=np.random.default_rng(1))

    model = torch.nn.Linear(3, 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(1)
    X_t, y_t = torch.tensor(X), torch.tensor(y)
    for _ in range(n_epochs):
        order = torch.from_numpy(rng.permutation(len(y)))
        for batch in order.split(batch_size):
            optimizer.zero_grad()
            torch.nn.functional.mse_loss(model(X_t[batch])[:, 0], y_t[batch]).backward()
            optimizer.step()
    np.testing.assert_allclose(w, model.weight.detach().numpy()[0], rtol=1e-10)
    assert b == pytest.approx(model.bias.item(), rel=1e-10)


def test_cosine_schedule_matches_torch():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=40, eta_min=0.01)
    for step in range(41):
        assert ch02.cosine_schedule(step, 40, 0.3, 0.01) == pytest.approx(optimizer.param_groups[0]["lr"], abs=1e-12)
        optimizer.step()
        scheduler.step()
    assert ch02.cosine_schedule(100, 40, 0.3, 0.01) == 0.01


def test_nothing_is_changed_in_place(data):
    X, y = data
    X_copy, y_copy = X.copy(), y.copy()
    ch02.minibatch_sgd(X, y, 0.01, 2, 16, np.random.default_rng(0))
    ch02.least_squares(X, y)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)
