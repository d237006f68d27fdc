"""Chapter 09's RDP accountant (rdp_sampled_gaussian and epsilon, written in the notebook) against a closed form and a
published implementation, and the DP training loop's Poisson sampling.

- At q = 1 the sampled Gaussian mechanism is the Gaussian mechanism, whose RDP of order α is α / (2σ²) (Mironov,
  2017).
- ε against Opacus 1.6.0's RDP accountant (opacus/accountants/analysis/rdp.py: compute_rdp, then get_privacy_spent,
  at the integer orders 2 … 64), computed with that release and written down here: the chapter's accountant is the
  same analysis, at the same orders.
"""
import ast
import math

import numpy as np
import pytest
import torch

from autograder.instructor import notebooks
from solutions import ch09_deployment as ch09

NOTEBOOK = notebooks.chapter_notebook("ch09")


@pytest.fixture(scope="module")
def accountant():
    """rdp_sampled_gaussian and epsilon as the notebook defines them, in a namespace of their own."""
    namespace = {"np": np, "math": math}
    for cell in notebooks.read(NOTEBOOK).cells:
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef) and node.name in ("rdp_sampled_gaussian", "epsilon"):
                    exec(compile(ast.Module([node], type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("sigma", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("alpha", [2, 3, 17, 64])
def test_at_q_1_the_rdp_is_the_gaussian_mechanisms(accountant, sigma, alpha):
    assert accountant["rdp_sampled_gaussian"](1.0, sigma, alpha) == pytest.approx(alpha / (2 * sigma ** 2), rel=1e-12)


# (q, σ, steps, δ, ε by Opacus 1.6.0 at the orders 2 … 64)
OPACUS = [
    (64 / 1347, 1.0, 150, 1e-5, 4.612631081539751),  # the chapter's digits: 64 of 1347 a step
    (64 / 1347, 4.0, 150, 1e-5, 0.597282894715505),
    (256 / 60000, 1.1, 60 * 60000 // 256, 1e-5, 2.5969811785953),  # MNIST, 60 epochs of 256
    (0.01, 0.8, 1000, 1e-6, 4.300886494496123),
    (0.1, 2.0, 50, 1e-5, 1.8492233496939137),
    (1.0, 5.0, 10, 1e-5, 2.814109167845533),
]


@pytest.mark.parametrize("q, sigma, steps, delta, expected", OPACUS)
def test_epsilon_is_opacuss(accountant, q, sigma, steps, delta, expected):
    assert accountant["epsilon"](q, sigma, steps, delta) == pytest.approx(expected, rel=1e-9)


def test_epsilon_falls_with_the_noise_and_grows_with_the_steps_and_the_sampling_rate(accountant):
    epsilon = accountant["epsilon"]
    by_noise = [epsilon(0.05, sigma, 100, 1e-5) for sigma in (0.7, 1.0, 2.0, 4.0)]
    assert by_noise == sorted(by_noise, reverse=True)
    assert epsilon(0.05, 1.0, 100, 1e-5) < epsilon(0.05, 1.0, 400, 1e-5) < epsilon(0.2, 1.0, 400, 1e-5)
    assert epsilon(0.05, 1.0, 100, 1e-5) < epsilon(0.05, 1.0, 100, 1e-7)  # a smaller δ costs a larger ε


def test_the_training_loops_batches_are_poisson_samples():
    """dp_train's batch: every row in it with probability 64 / 1347, independently: its size varies around 64 with the
    binomial's spread, and rows never repeat within a batch (torch.randint's batches, of a fixed size drawn with
    replacement, are not what the accountant analyses)."""
    source = next(cell.source for cell in notebooks.read(NOTEBOOK).cells if "def dp_train(" in cell.source)
    assert "torch.rand(len(X), generator=generator) < rate" in source and "randint" not in source
    generator, n, rate = torch.Generator().manual_seed(0), 1347, 64 / 1347
    sizes = [int((torch.rand(n, generator=generator) < rate).sum()) for _ in range(2000)]
    spread = math.sqrt(n * rate * (1 - rate))
    assert abs(np.mean(sizes) - 64) < 5 * spread / math.sqrt(2000)
    assert abs(np.std(sizes) - spread) < 0.1 * spread


def test_dividing_by_the_expected_batch_keeps_the_noisy_sum():
    """dp_train turns dp_sgd_gradient's mean over the rows drawn into the noisy sum over the expected count:
    g · len(batch) / expected = (Σ clipped + σ C z) / expected."""
    generator = torch.Generator().manual_seed(3)
    params = {"W": torch.randn(4, 3, dtype=torch.float64, generator=generator)}
    X, y = torch.randn(7, 4, dtype=torch.float64, generator=generator), torch.tensor([0, 1, 2, 0, 1, 2, 0])

    def loss_fn(p, x, label):
        return torch.nn.functional.cross_entropy(x @ p["W"], label)

    mean = ch09.dp_sgd_gradient(loss_fn, params, X, y, 0.5, 1.0, torch.Generator().manual_seed(1))
    quiet = ch09.dp_sgd_gradient(loss_fn, params, X, y, 0.5, 0.0, torch.Generator().manual_seed(1))
    z = torch.randn((4, 3), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(mean["W"] * 7 / 10, (quiet["W"] * 7 + 0.5 * z) / 10, rtol=1e-12, atol=1e-14)
