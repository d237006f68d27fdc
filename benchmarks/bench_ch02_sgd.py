"""Chapter 02: from-scratch mini-batch SGD in numpy against the same model and loop in torch (CPU).

Both run the same epochs over the same rows in the same batch order, in float64: numpy with the
chapter's reference functions, torch with nn.Linear, MSELoss, autograd and optim.SGD.
"""
import numpy as np
import torch

from benchmarks.harness import compare
from solutions import ch02_gradient_descent as ch02
from solutions.data import diabetes


def torch_sgd(X, y, lr, n_epochs, batch_size, seed):
    model = torch.nn.Linear(X.shape[1], 1, dtype=torch.float64)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(n_epochs):
        order = torch.from_numpy(rng.permutation(len(y)))
        for batch in order.split(batch_size):
            optimizer.zero_grad()
            rows = X.index_select(0, batch)  # 10x faster than X[batch] on CPU here
            torch.nn.functional.mse_loss(model(rows)[:, 0], y.index_select(0, batch)).backward()
            optimizer.step()
    return model


def run():
    X_train, _, y_train, _, _ = diabetes()
    rng = np.random.default_rng(0)
    X_large = rng.normal(size=(20000, 100))
    y_large = X_large @ rng.normal(size=100) + rng.normal(size=20000)
    results = []
    for label, X, y, batch_size, epochs in [("diabetes 331 x 10, batch 32", X_train, y_train, 32, 20),
                                            ("synthetic 20000 x 100, batch 1024", X_large, y_large, 1024, 2)]:
        X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)
        results.append(compare(
            f"mini-batch SGD, {label}, {epochs} epochs",
            ("numpy from scratch", lambda: ch02.minibatch_sgd(X, y, 0.01, epochs, batch_size, np.random.default_rng(0))),
            ("torch nn.Linear + SGD", lambda: torch_sgd(X_t, y_t, 0.01, epochs, batch_size, 0)),
            repeats=5))
    results[0].note = ("10 features, 32 rows: each step is a few microseconds of arithmetic, so torch's "
                       "per-operation dispatch, autograd graph and optimizer bookkeeping dominate its time.")
    results[1].note = ("1024 x 100 batches: the arithmetic (two matrix-vector products per step) is still small; "
                       "torch pays the same fixed costs per step plus the gather of the batch's rows.")
    return results
