"""Chapter 05's references against independent ones: dropout's statistics and dtype against
torch.nn.functional.dropout, and its expectation over every mask (the input itself; an L2 penalty on a linear model),
the SGD step with L2 against torch.optim.SGD(weight_decay=...) over 100 steps of a real loss, the L1 proximal step on
a case solved by hand and, iterated, against scikit-learn's Lasso, early stopping on a traced run, and batch
normalization against torch.nn.BatchNorm1d in float64 (outputs, gradients, running statistics over several steps,
evaluation mode), against torch's layer_norm on the transposed input, and the chapter's claims about its backward
pass and about a batch of two."""
import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Lasso

from solutions import ch05_regularization as ch05
from solutions.data import diabetes, digits


# ---------------------------------------------------------------- dropout

@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics_match_torch(p):
    """On 200 000 entries: the mean is preserved (within 5 standard errors), the share of zeros is p, the kept
    entries are x / (1 − p), as torch's; in evaluation both are the identity."""
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(400, 500))
    layer = ch05.Dropout(p, np.random.default_rng(1))
    ours = layer.forward(x)
    torch.manual_seed(2)
    theirs = torch.nn.functional.dropout(torch.from_numpy(x.copy()), p=p, training=True).numpy()
    standard_error = math.sqrt(np.mean(x * x) * p / (1 - p) / x.size)  # of mean(x · mask) − mean(x)
    for out in (ours, theirs):
        assert abs(out.mean() - x.mean()) < 5 * standard_error
        assert abs((out == 0).mean() - p) < 5 * math.sqrt(p * (1 - p) / x.size)
        kept = out != 0
        np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
    dout = np.random.default_rng(3).normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(dout) == 0, ours == 0)  # the forward's mask, not a new one
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), x)
    np.testing.assert_array_equal(layer.backward(dout), dout)
    assert torch.equal(torch.nn.functional.dropout(torch.from_numpy(x), p=p, training=False), torch.from_numpy(x))


def test_dropout_keeps_float32_as_torch_does():
    """A float32 input gives float32 outputs, in training, in backward and in evaluation; the kept entries are
    x / (1 − p) to float32's precision, as torch's."""
    x = np.random.default_rng(6).normal(size=(50, 40)).astype(np.float32)
    layer = ch05.Dropout(0.3, np.random.default_rng(7))
    out = layer.forward(x)
    theirs = torch.nn.functional.dropout(torch.from_numpy(x), p=0.3, training=True)
    assert out.dtype == np.float32 == theirs.numpy().dtype
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / np.float32(0.7), rtol=2e-7)
    assert layer.eval().forward(x).dtype == np.float32 and layer.backward(x).dtype == np.float32


def test_inverted_dropout_averages_to_its_input_and_on_a_linear_model_to_an_l2_penalty():
    """Exactly, over every mask of a tiny problem (2 rows, 3 inputs: 64 masks, each with its probability): the mean of
    Dropout's output is x, and the mean squared error of a linear model on dropped-out inputs is the plain one plus
    p/(1 − p)·Σⱼ wⱼ²·Σᵢ xᵢⱼ², the penalty chapter 05 derives."""
    import itertools

    rng = np.random.default_rng(8)
    X, y, w, p = rng.normal(size=(2, 3)), rng.normal(size=2), rng.normal(size=3), 0.3
    mean_out, mean_loss = np.zeros_like(X), 0.0
    for kept in itertools.product([0.0, 1.0], repeat=X.size):
        keep = np.array(kept).reshape(X.shape)
        probability = np.prod(np.where(keep == 1, 1 - p, p))
        dropped = X * keep / (1 - p)
        mean_out += probability * dropped
        mean_loss += probability * np.sum((y - dropped @ w) ** 2)
    np.testing.assert_allclose(mean_out, X, rtol=1e-12)
    penalty = p / (1 - p) * np.sum(w ** 2 * np.sum(X ** 2, axis=0))
    assert mean_loss == pytest.approx(np.sum((y - X @ w) ** 2) + penalty, rel=1e-12)


def test_dropout_p_one_and_zero_match_torch():
    x = np.random.default_rng(4).normal(size=(3, 4))
    for p in (0.0, 1.0):
        ours = ch05.Dropout(p, np.random.default_rng(5)).forward(x)
        theirs = torch.nn.functional.dropout(torch.from_numpy(x), p=p, training=True).numpy()
        np.testing.assert_array_equal(ours, theirs)


# ---------------------------------------------------------------- L2 and SGD

def softmax_regression_grad(W, b, X, y):
    Wt, bt = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(torch.from_numpy(X) @ Wt + bt, torch.from_numpy(y))
    loss.backward()
    return Wt.grad.numpy(), bt.grad.numpy()


@pytest.mark.parametrize("weight_decay", [1e-3, 0.1])
def test_sgd_l2_step_matches_torch_sgd_weight_decay_over_100_steps(weight_decay):
    X, _, y, _ = digits()
    rng = np.random.default_rng(0)
    W0, b0 = rng.normal(scale=0.1, size=(64, 10)), np.zeros(10)
    ours = [W0.copy(), b0.copy()]
    tensors = [torch.tensor(W0.copy(), requires_grad=True), torch.tensor(b0.copy(), requires_grad=True)]
    optimizer = torch.optim.SGD(tensors, lr=0.5, weight_decay=weight_decay)
    for _ in range(100):
        batch = rng.choice(len(y), 64, replace=False)
        grads = softmax_regression_grad(*ours, X[batch], y[batch])
        ours = [ch05.sgd_l2_step(p, g, 0.5, weight_decay) for p, g in zip(ours, grads)]
        optimizer.zero_grad()
        theirs = torch.nn.functional.cross_entropy(torch.from_numpy(X[batch]) @ tensors[0] + tensors[1],
                                                   torch.from_numpy(y[batch]))
        theirs.backward()
        optimizer.step()
        for a, t in zip(ours, tensors):
            np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-10, atol=1e-13)


def test_l2_penalty_gradient_is_what_autograd_gives_and_sgd_adds():
    weights = [np.random.default_rng(1).normal(size=(3, 2)), np.arange(4.0)]
    penalty, grads = ch05.l2_penalty(weights, 0.3)
    tensors = [torch.tensor(w, requires_grad=True) for w in weights]
    theirs = 0.15 * sum((t ** 2).sum() for t in tensors)
    theirs.backward()
    assert penalty == pytest.approx(theirs.item(), rel=1e-14)
    for g, t in zip(grads, tensors):
        np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-14)


# ---------------------------------------------------------------- L1

def test_l1_prox_step_on_a_case_solved_by_hand():
    """J(θ) = ½‖θ − a‖² and lr = 1 make z = a whatever θ is, and the step returns the minimizer of
    ½‖θ − a‖² + λ‖θ‖₁, solved entry by entry: a − λ where a > λ, a + λ where a < −λ, 0 between."""
    a = np.array([3.0, -0.5, 1.0, -2.0, 0.25, -1.5])
    theta = np.array([10.0, 4.0, -7.0, 0.0, 1.0, 2.0])
    new = ch05.l1_prox_step(theta, theta - a, 1.0, 1.0)
    np.testing.assert_array_equal(new, [2.0, 0.0, 0.0, -1.0, 0.0, -0.5])
    # lr 0.5, λ 1: threshold 0.5; z = θ − 0.5·(θ − a) = (θ + a) / 2
    new = ch05.l1_prox_step(theta, theta - a, 0.5, 1.0)
    np.testing.assert_allclose(new, [6.0, 1.25, -2.5, -0.5, 0.125, 0.0], rtol=1e-15)


def test_iterated_l1_prox_steps_reach_scikit_learns_lasso():
    """ISTA, θ ← prox(θ − lr·∇J(θ)) with J = ‖y − Xθ‖² / (2n) and lr = 1 / L, converges to the minimizer of
    scikit-learn's Lasso objective J(θ) + α‖θ‖₁, sparsity pattern included."""
    X, _, y, _, _ = diabetes()
    y = (y - y.mean()) / y.std()
    X = X - X.mean(axis=0)
    n = len(y)
    lr = 1 / np.linalg.eigvalsh(X.T @ X / n).max()
    for alpha in (0.01, 0.1):
        theta = np.zeros(X.shape[1])
        for _ in range(5000):
            theta = ch05.l1_prox_step(theta, X.T @ (X @ theta - y) / n, lr, alpha)
        lasso = Lasso(alpha=alpha, fit_intercept=False, tol=1e-12, max_iter=100_000).fit(X, y)
        np.testing.assert_allclose(theta, lasso.coef_, atol=1e-6)
        np.testing.assert_array_equal(theta == 0, lasso.coef_ == 0)
        assert (theta == 0).any()


def test_l1_subgradient_is_torchs_abs_gradient_zero_included():
    w = np.array([[-2.0, 0.0, 3.0], [0.0, -0.0, 1e-300]])
    penalty, (grad,) = ch05.l1_penalty([w], 0.7)
    t = torch.tensor(w, requires_grad=True)
    (0.7 * t.abs().sum()).backward()
    assert penalty == pytest.approx(0.7 * 5.0, rel=1e-15)
    np.testing.assert_array_equal(grad, t.grad.numpy())


# ---------------------------------------------------------------- early stopping

def test_early_stopping_traced_by_hand_restores_the_best_weights():
    weights = [np.zeros((2, 2)), np.zeros(2)]
    stopper = ch05.EarlyStopping(patience=2, min_delta=0.01)
    losses = [1.0, 0.7, 0.695, 0.5, 0.52, 0.6, 0.4]
    stops = []
    for epoch, loss in enumerate(losses):
        for w in weights:
            w[...] = epoch  # training changes the network's own arrays in place
        stops.append(stopper.step(loss, weights))
        if stops[-1]:
            break
    assert stops == [False, False, False, False, False, True]  # 0.695 is not 0.01 better than 0.7
    assert (stopper.best_loss, stopper.best_epoch) == (0.5, 3)
    assert all(np.array_equal(w, np.full(w.shape, 3.0)) for w in stopper.best_weights)
    assert all(np.array_equal(w, np.full(w.shape, 5.0)) for w in weights)


# ---------------------------------------------------------------- batch normalization

def test_batchnorm_matches_torch_batchnorm1d_over_several_steps_and_in_eval():
    rng = np.random.default_rng(0)
    D = 5
    bn = torch.nn.BatchNorm1d(D, eps=1e-4, momentum=0.2, dtype=torch.float64)
    gamma, beta = rng.normal(size=D) + 1, rng.normal(size=D)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    running_mean, running_var = np.zeros(D), np.ones(D)
    for step, n in enumerate([16, 7, 2, 32]):
        x = 3.0 * rng.normal(size=(n, D)) + np.arange(D)
        dout = rng.normal(size=(n, D))
        out, running_mean, running_var = ch05.batchnorm_forward(x, gamma, beta, running_mean, running_var,
                                                                training=True, momentum=0.2, eps=1e-4)
        dx, dgamma, dbeta = ch05.batchnorm_backward(dout, x, gamma, eps=1e-4)
        bn.train()
        bn.zero_grad()
        xt = torch.tensor(x, requires_grad=True)
        theirs = bn(xt)
        theirs.backward(torch.from_numpy(dout))
        np.testing.assert_allclose(out, theirs.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(dgamma, bn.weight.grad.numpy(), rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(dbeta, bn.bias.grad.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(running_mean, bn.running_mean.numpy(), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(running_var, bn.running_var.numpy(), rtol=1e-12, atol=1e-14)
        assert bn.num_batches_tracked.item() == step + 1
    bn.eval()
    x = rng.normal(size=(3, D))
    out, mean_after, var_after = ch05.batchnorm_forward(x, gamma, beta, running_mean, running_var, training=False,
                                                        eps=1e-4)
    np.testing.assert_allclose(out, bn(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert np.array_equal(mean_after, running_mean) and np.array_equal(var_after, running_var)
    assert mean_after is not running_mean


def test_layer_norm_is_batch_norm_of_the_transposed_input():
    x = np.random.default_rng(2).normal(size=(4, 6)) * 3 + 1
    ours = ch05.batchnorm_forward(x.T, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4))[0].T
    theirs = torch.nn.functional.layer_norm(torch.from_numpy(x), (6,)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_a_batch_of_two_normalizes_to_plus_and_minus_one_up_to_eps():
    """x̂ = ±((a − b)/2) / √((a − b)²/4 + ε) for N = 2: ±1 where |a − b| ≫ √ε, whatever a and b are."""
    pair = np.array([[3.0, -200.0, 0.5], [1.0, 100.0, 0.5 + 2e-3]])
    out, _, _ = ch05.batchnorm_forward(pair, np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), eps=1e-5)
    half = (pair[0] - pair[1]) / 2
    np.testing.assert_allclose(out[0], half / np.sqrt(half ** 2 + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(out[1], -out[0], rtol=1e-12)
    np.testing.assert_allclose(np.abs(out[:, :2]), 1.0, atol=1e-5)
    assert np.all(np.abs(out[:, 2]) < 0.5)  # |a − b| = 2e-3 is not much larger than √ε ≈ 3e-3: ε shows


def test_the_gradient_of_a_normalized_column_along_x_hat_is_eps_over_variance_plus_eps():
    """Σᵢ dxᵢ·x̂ᵢ = γ/√(σ² + ε)·Σᵢ doutᵢ·x̂ᵢ·ε/(σ² + ε) and Σᵢ dxᵢ = 0: the text's claims about the backward pass."""
    rng = np.random.default_rng(3)
    for variance, eps in ((4.0, 1e-3), (1e-6, 1e-3), (1.0, 1e-5)):
        x, dout, gamma = np.sqrt(variance) * rng.normal(size=(9, 1)), rng.normal(size=(9, 1)), np.array([1.7])
        dx, _, _ = ch05.batchnorm_backward(dout, x, gamma, eps=eps)
        scale = np.sqrt(x.var() + eps)
        x_hat = (x - x.mean()) / scale
        assert abs(dx.sum()) < 1e-10 * np.abs(dx).sum()
        expected = gamma[0] / scale * np.sum(dout * x_hat) * eps / (x.var() + eps)
        assert np.sum(dx * x_hat) == pytest.approx(expected, rel=1e-8, abs=1e-14)


def test_batchnorm_functions_leave_their_inputs_alone():
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(6, 3)), rng.normal(size=3), rng.normal(size=3), rng.normal(size=3), rng.random(3) + 0.5]
    before = [a.copy() for a in args]
    ch05.batchnorm_forward(*args)
    ch05.batchnorm_backward(rng.normal(size=(6, 3)), args[0], args[1])
    assert all(np.array_equal(a, b) for a, b in zip(args, before))
