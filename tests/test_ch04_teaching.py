"""What chapter 04 teaches around its exercises, held to computations made here, apart from the notebook's code:

- the eigenvalue picture of gradient descent and momentum on a quadratic (section 8): the rate per direction in
  closed form against the spectral radius of the step's matrix and against runs of the reference step function,
  lr < 2 / λmax, momentum's floor √μ, the tuned rates and momentum's √κ fewer steps, and the rates the notebook prints;
- Nesterov: torch's parameter is Sutskever's look-ahead point θ + μ v (section 1), and both refuse a dampening;
- centered RMSprop on a constant gradient: the spread g² αᵗ (1 − αᵗ), the reference and torch agreeing while it is
  well above rounding (section 2);
- the Optimizer class skips a parameter without a gradient as torch does after zero_grad() (section 9);
- the answers of the chapter's two questions on learning rates and momentum.
"""
import math
import re

import nbformat
import numpy as np
import pytest
import torch

from autograder.instructor import notebooks
from autograder.learner.questions import get
from solutions import ch04_optimizers as ch04


# ---------------------------------------------------------------- the eigenvalue picture

def heavy_ball_matrix(lr, curvature, momentum, nesterov=False):
    """torch's SGD along one direction of curvature λ, on the state (θ, b), written from the formulas: b' = μ b + λ θ,
    θ' = θ − lr · b' (heavy ball) or θ' = θ − lr · (λ θ + μ b') (Nesterov)."""
    lam, mu = curvature, momentum
    if nesterov:
        return np.array([[1 - lr * lam * (1 + mu), -lr * mu * mu], [lam, mu]])
    return np.array([[1 - lr * lam, -lr * mu], [lam, mu]])


def spectral_radius(matrix):
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


def measured_rate(curvature, steps, **hyper):
    """The rate per step of the reference sgd_momentum_step along one direction, from a run: the largest |θ| over the
    last 60 steps against the largest over 60 steps that end `steps` // 2 steps before, per step."""
    theta, state, path = np.ones(1), {}, []
    for _ in range(steps):
        theta, state = ch04.sgd_momentum_step(theta, curvature * theta, state, **hyper)
        path.append(abs(theta[0]))
    path, gap = np.array(path), steps // 2
    return (path[-60:].max() / path[-60 - gap:-gap].max()) ** (1 / gap)


@pytest.mark.parametrize("lr", [0.01, 0.05, 0.075, 2 / 26, 0.079])
@pytest.mark.parametrize("curvature", [1.0, 25.0])
def test_gradient_descent_multiplies_each_direction_by_1_minus_lr_lambda(lr, curvature):
    theta, state = np.array([1.0]), {}
    for _ in range(5):
        new, state = ch04.sgd_momentum_step(theta, curvature * theta, state, lr=lr)
        assert new[0] == pytest.approx((1 - lr * curvature) * theta[0], rel=1e-12)
        theta = new


def test_gradient_descent_converges_below_2_over_the_largest_curvature_and_diverges_above():
    for lr, converges in [(0.0799, True), (0.0801, False)]:
        p, state = np.array([-9.0, 1.5]), {}
        for _ in range(3000):
            p, state = ch04.sgd_momentum_step(p, np.array([1.0, 25.0]) * p, state, lr=lr)
        assert (np.abs(p).max() < 1e-3) == converges


SETTINGS = [  # (lr, μ, nesterov, the closed form of the rate along curvatures 1 and 25, in the complex regime)
    (0.02, 0.9, False, lambda lr, mu, lam: math.sqrt(mu)),
    (0.05, 0.9, False, lambda lr, mu, lam: math.sqrt(mu)),
    (0.02, 0.9, True, lambda lr, mu, lam: math.sqrt(mu * (1 - lr * lam))),
    (0.03, 0.8, True, lambda lr, mu, lam: math.sqrt(mu * (1 - lr * lam))),
]


@pytest.mark.parametrize("lr, mu, nesterov, closed", SETTINGS)
@pytest.mark.parametrize("curvature", [1.0, 25.0])
def test_momentum_rates_match_closed_forms_the_matrix_and_a_run(lr, mu, nesterov, closed, curvature):
    matrix = heavy_ball_matrix(lr, curvature, mu, nesterov)
    assert np.iscomplex(np.linalg.eigvals(matrix)).all()  # the spiralling regime the closed forms are for
    predicted = closed(lr, mu, curvature)
    assert spectral_radius(matrix) == pytest.approx(predicted, rel=1e-12)
    assert np.linalg.det(matrix) == pytest.approx(mu * (1 - lr * curvature) if nesterov else mu, rel=1e-12)
    steps = int(min(3000, 400 / -math.log(predicted)))
    assert measured_rate(curvature, steps, lr=lr, momentum=mu, nesterov=nesterov) == pytest.approx(predicted, rel=5e-3)


def test_the_reference_step_is_the_matrix_of_the_formulas():
    """The step function, given (θ, b), moves them exactly as the 2 x 2 matrix the chapter writes down."""
    rng = np.random.default_rng(0)
    for nesterov in (False, True):
        for _ in range(20):
            lr, mu, lam = rng.uniform(0.001, 0.1), rng.uniform(0.1, 0.99), rng.uniform(0.5, 50)
            theta, buf = rng.normal(size=2)
            new, state = ch04.sgd_momentum_step(np.array([theta]), np.array([lam * theta]),
                                                {"momentum_buffer": np.array([buf])}, lr=lr, momentum=mu,
                                                nesterov=nesterov)
            expected = heavy_ball_matrix(lr, lam, mu, nesterov) @ [theta, buf]
            np.testing.assert_allclose([new[0], state["momentum_buffer"][0]], expected, rtol=1e-12, atol=1e-14)


def test_no_learning_rate_beats_the_square_root_of_the_momentum():
    for lr in np.logspace(-4, 0, 200):
        for lam in (1.0, 25.0, 1e4):
            assert spectral_radius(heavy_ball_matrix(lr, lam, 0.9)) >= math.sqrt(0.9) - 1e-12


@pytest.mark.parametrize("kappa", [25, 100, 10_000])
def test_tuned_rates_and_the_square_root_of_kappa(kappa):
    root = math.sqrt(kappa)
    plain = max(abs(1 - 2 / (1 + kappa) * lam) for lam in (1, kappa))
    assert plain == pytest.approx((kappa - 1) / (kappa + 1), rel=1e-12)
    lr, mu = 4 / (1 + root) ** 2, ((root - 1) / (root + 1)) ** 2
    heavy = max(spectral_radius(heavy_ball_matrix(lr, lam, mu)) for lam in (1, kappa))
    assert heavy == pytest.approx((root - 1) / (root + 1), rel=1e-6)  # a double eigenvalue: computed to √eps
    for lam in np.geomspace(1, kappa, 7):  # every curvature between the ends, not only the ends
        assert spectral_radius(heavy_ball_matrix(lr, lam, mu)) <= (root - 1) / (root + 1) + 1e-6
    fewer = math.log(heavy) / math.log(plain)
    assert fewer == pytest.approx(root, rel=0.05 if kappa > 25 else 0.02)
    if kappa == 25:
        steps = max(int(300 / -math.log(heavy)), 200)
        assert measured_rate(25.0, steps, lr=lr, momentum=mu) == pytest.approx(heavy, rel=1e-2)


def notebook_outputs(marker):
    """The text of the stored output of the chapter's code cell whose output contains `marker`."""
    notebook = nbformat.read(notebooks.chapter_notebook("ch04"), as_version=4)
    texts = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells if cell.cell_type == "code"]
    found = [text for text in texts if marker in text]
    assert len(found) == 1, marker
    return found[0]


def test_the_rates_the_notebook_prints_are_those_of_the_closed_forms():
    kappa, root = 25, 5.0
    expected = {  # label -> (rate along x, rate along y)
        "SGD lr 0.075 (section 7)": (abs(1 - 0.075), abs(1 - 0.075 * 25)),
        "momentum 0.9, lr 0.02 (section 7)": (math.sqrt(0.9), math.sqrt(0.9)),
        "Nesterov 0.9, lr 0.02 (section 7)": (math.sqrt(0.9 * (1 - 0.02)), math.sqrt(0.9 * (1 - 0.02 * 25))),
        "SGD, the best lr": ((kappa - 1) / (kappa + 1),) * 2,
        "momentum, the best lr and μ": ((root - 1) / (root + 1),) * 2,
    }
    table = notebook_outputs("rate along x (λ = 1)")
    for label, (x, y) in expected.items():
        row = next(line for line in table.splitlines() if line.startswith(label))
        printed = [float(value) for value in row[len(label):].split()]
        assert printed[:2] == [round(x, 3), round(y, 3)], label
        assert printed[2] == round(math.log(10) / -math.log(max(x, y)), 1), label
    speedups = notebook_outputs("times fewer")
    for kappa in (25, 100, 10_000):
        row = next(line for line in speedups.splitlines() if re.match(rf"κ = +{kappa:,d}:", line))
        plain, heavy = (kappa - 1) / (kappa + 1), (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
        assert f"best SGD {math.log(10) / -math.log(plain):8.1f}" in row
        assert f"best momentum {math.log(10) / -math.log(heavy):6.1f}" in row


# ---------------------------------------------------------------- Nesterov

def sutskever(gradient, theta, lr, mu, steps):
    v, out = np.zeros_like(theta), []
    for _ in range(steps):
        v = mu * v - lr * gradient(theta + mu * v)
        theta = theta + v
        out.append((theta, v))
    return out


def test_torchs_nesterov_parameter_is_sutskevers_look_ahead_point():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 4))
    H = A @ A.T + 0.5 * np.eye(4)  # a quadratic that is not diagonal
    lr, mu, start = 0.5 / np.linalg.eigvalsh(H).max(), 0.9, rng.normal(size=4)
    theirs = sutskever(lambda p: H @ p, start, lr, mu, 100)
    tensor = torch.tensor(start, requires_grad=True)
    optimizer = torch.optim.SGD([tensor], lr=lr, momentum=mu, nesterov=True)
    for theta, v in theirs:
        tensor.grad = torch.from_numpy(H @ tensor.detach().numpy())
        optimizer.step()
        np.testing.assert_allclose(tensor.detach().numpy(), theta + mu * v, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(-lr * optimizer.state[tensor]["momentum_buffer"].numpy(), v, rtol=1e-9, atol=1e-12)
    assert not np.allclose(theirs[0][0], tensor.detach().numpy())  # the two forms report different points


@pytest.mark.parametrize("momentum, dampening", [(0.9, 0.0), (0.9, 0.5), (0.0, 0.0), (0.5, 0.1)])
def test_nesterov_is_refused_where_torch_refuses_it(momentum, dampening):
    try:
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1, momentum=momentum, dampening=dampening,
                        nesterov=True)
        refused = False
    except ValueError:
        refused = True
    call = lambda: ch04.sgd_momentum_step(np.ones(2), np.ones(2), {}, lr=0.1, momentum=momentum,  # noqa: E731
                                          dampening=dampening, nesterov=True)
    if refused:
        with pytest.raises(ValueError):
            call()
    else:
        call()


# ---------------------------------------------------------------- centered RMSprop

def test_centered_rmsprop_on_a_constant_gradient():
    g, alpha, lr = 0.1, 0.9, 0.01
    param, state = np.zeros(1), {}
    tensor = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.RMSprop([tensor], lr=lr, alpha=alpha, centered=True)
    for t in range(1, 101):
        param, state = ch04.rmsprop_step(param, np.array([g]), state, lr=lr, alpha=alpha, centered=True)
        tensor.grad = torch.full((1,), g, dtype=torch.float64)
        optimizer.step()
        spread = state["square_avg"][0] - state["grad_avg"][0] ** 2
        assert spread == pytest.approx(g * g * alpha ** t * (1 - alpha ** t), rel=1e-6)
        assert param[0] == pytest.approx(tensor.item(), rel=1e-6)  # while the spread is well above rounding
    for _ in range(1000):  # further on, torch's rounding drives v − a² below 0, and its square root is NaN
        tensor.grad = torch.full((1,), g, dtype=torch.float64)
        optimizer.step()
        if torch.isnan(tensor).any():
            break
    assert torch.isnan(tensor).any()


# ---------------------------------------------------------------- the Optimizer class

def test_zero_grad_empties_the_buffers_and_step_skips_what_got_no_gradient_as_torch_does():
    rng = np.random.default_rng(2)
    start = [rng.normal(size=(3, 2)), rng.normal(size=2)]
    used, unused = (torch.tensor(a.copy(), requires_grad=True) for a in start)
    theirs = torch.optim.SGD([used, unused], lr=0.1, momentum=0.9, weight_decay=0.1)
    arrays = [a.copy() for a in start]
    ours = ch04.Optimizer(arrays, "sgd", lr=0.1, momentum=0.9, weight_decay=0.1)
    x = torch.from_numpy(rng.normal(size=(4, 3)))
    for step in range(6):
        theirs.zero_grad()  # set_to_none=True, torch's default
        ours.zero_grad()
        assert ours.grads == [None, None]
        if step == 3:  # a step where no loss reached either parameter: nothing moves
            theirs.step()
            ours.step()
        else:
            (x @ used).pow(2).sum().backward()  # `unused` is not in the loss: its p.grad stays None
            ours.accumulate([used.grad.numpy().copy(), None])
            theirs.step()
            ours.step()
        np.testing.assert_allclose(arrays[0], used.detach().numpy(), rtol=1e-12)
        np.testing.assert_array_equal(arrays[1], start[1])
        np.testing.assert_array_equal(unused.detach().numpy(), start[1])
    assert ours.state[1] == {} and unused not in theirs.state


# ---------------------------------------------------------------- the questions

def test_the_largest_stable_learning_rate_is_2_over_the_largest_curvature():
    def end(lr):
        p, state = np.array([1.0, 1.0]), {}
        for _ in range(4000):
            p, state = ch04.sgd_momentum_step(p, np.array([1.0, 100.0]) * p, state, lr=lr)
        return np.abs(p).max()

    assert end(0.0199) < 1e-6 and end(0.015) < 1e-6 and end(0.0201) > 1.0
    question = get("ch04.largest_lr")
    assert question.choices[question.right].startswith("lr < 0.02")


def test_momentum_09_shrinks_the_error_by_at_best_the_square_root_of_09():
    best = min(spectral_radius(heavy_ball_matrix(lr, lam, 0.9)) for lr in np.logspace(-4, 0, 400) for lam in (1, 100))
    assert best == pytest.approx(math.sqrt(0.9), rel=1e-9)
    question = get("ch04.momentum_rate")
    assert "√0.9" in question.choices[question.right] and f"{math.sqrt(0.9):.3f}" in question.choices[question.right]
