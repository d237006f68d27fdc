"""Chapter 05: regularization and normalization. L2 and L1 penalties with their gradients, the SGD step with L2 and
the proximal (soft-threshold) step for L1, inverted dropout as a layer, early stopping as a callback that keeps the
best weights, and batch normalization's forward and backward passes with running statistics.

Conventions, stated once: the L2 penalty carries a ½, (λ/2)·‖θ‖², so that its gradient is λ·θ and λ is exactly
torch.optim.SGD's weight_decay; every penalty's gradient goes through the learning rate like the loss's own,
θ ← θ − lr·(∇J + λ·θ). Functions change none of their inputs (arrays, or the arrays inside a list); randomness comes
from a numpy Generator that is passed in.
"""
import math

import numpy as np


def l2_penalty(weights, lam):
    """The L2 penalty (λ/2)·Σ‖W‖² over a list of weight arrays, and its gradient λ·W for each of them.

    weights: list of arrays (any shapes; may be empty); lam: float ≥ 0
    ->  (penalty: float, list of gradient arrays shaped like weights)
    """
    ### BEGIN SOLUTION
    penalty = 0.5 * lam * sum(float(np.sum(w * w)) for w in weights)
    return penalty, [lam * w for w in weights]
    ### END SOLUTION


def sgd_l2_step(param, grad, lr, weight_decay):
    """One SGD step on J(θ) + (λ/2)·‖θ‖² with λ = weight_decay: the penalty's gradient λ·θ is added to J's and the sum
    is multiplied by the learning rate, θ ← θ − lr·(∇J + λ·θ), as torch.optim.SGD(lr, weight_decay=λ) does.

    param, grad: arrays of one shape (grad is ∇J, without the penalty); lr, weight_decay: floats  ->  new param
    """
    ### BEGIN SOLUTION
    return param - lr * (grad + weight_decay * param)
    ### END SOLUTION


def l1_penalty(weights, lam):
    """The L1 penalty λ·Σ|W| over a list of weight arrays, and a subgradient λ·sign(W) for each of them: |w| has no
    derivative at 0, and the subgradient used there is 0 (what torch's autograd gives for abs at 0).

    weights: list of arrays (any shapes; may be empty); lam: float ≥ 0
    ->  (penalty: float, list of subgradient arrays shaped like weights)
    """
    ### BEGIN SOLUTION
    penalty = lam * sum(float(np.sum(np.abs(w))) for w in weights)
    return penalty, [lam * np.sign(w) for w in weights]
    ### END SOLUTION


def l1_prox_step(param, grad, lr, lam):
    """One proximal-gradient (ISTA) step on J(θ) + λ·‖θ‖₁: a gradient step on J alone, z = θ − lr·∇J, then the
    proximal step of lr·λ·‖·‖₁, soft-thresholding at lr·λ:  θ ← sign(z)·max(|z| − lr·λ, 0).

    Entries with |z| ≤ lr·λ become exactly 0; the others move lr·λ towards 0, never past it.
    param, grad: arrays of one shape (grad is ∇J, without the penalty); lr, lam: floats ≥ 0  ->  new param
    """
    ### BEGIN SOLUTION
    z = param - lr * grad
    return np.sign(z) * np.maximum(np.abs(z) - lr * lam, 0.0)
    ### END SOLUTION


class Dropout:
    """Inverted dropout, as torch.nn.Dropout: in training, each entry is zeroed with probability p and the kept ones
    are divided by 1 − p, so that the output's expected value is the input; in evaluation the layer is the identity.

    Dropout(p, rng): p in [0, 1]; rng, a numpy Generator, the layer's only source of randomness.
    `training` is True after construction and train(), False after eval(), as in torch's modules.
    forward(x): x, a float array of any shape ((N, D), (N, C, L), ...)  ->  out, shaped like x and of x's dtype (a
        float32 x gives a float32 out, as in torch). In training, one draw per call, u = rng.random(x.shape); an
        entry is dropped where u < p: mask = (u ≥ p) / (1 − p) (all 0 when p = 1: nothing is kept, and nothing is
        divided by 0), out = x · mask. In evaluation, nothing is drawn, out equals x, and the mask is 1 everywhere.
    backward(dout): dout like the last forward's x (shape and dtype)  ->  dx = dout · mask, with that forward's mask.
    """

    def __init__(self, p, rng):
        self.p, self.rng, self.training, self.mask = p, rng, True, None

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        ### BEGIN SOLUTION
        if not self.training:
            self.mask = np.ones(x.shape, dtype=x.dtype)
        else:
            keep = (self.rng.random(x.shape) >= self.p).astype(x.dtype)
            self.mask = keep / (1 - self.p) if self.p < 1 else keep  # at p = 1 keep is all 0
        return x * self.mask
        ### END SOLUTION

    def backward(self, dout):
        ### BEGIN SOLUTION
        return dout * self.mask
        ### END SOLUTION


class EarlyStopping:
    """Stop training once the validation loss has not improved for `patience` epochs in a row, and keep a copy of the
    weights of the best epoch, to restore when training stops (Keras's EarlyStopping with restore_best_weights=True,
    Lightning's EarlyStopping callback).

    EarlyStopping(patience, min_delta=0.0): patience ≥ 1 epochs; min_delta ≥ 0, the least decrease that counts.
    step(val_loss, weights) -> bool: call it once per epoch, after validation, with the network's weights (a list of
        arrays that training goes on changing in place). The epoch is an improvement when
        val_loss < best_loss − min_delta (a NaN loss never is); then best_loss = val_loss, best_epoch = this epoch's
        number (0 for the first call), best_weights = copies of the weights, and the count of epochs without
        improvement, bad_epochs, goes back to 0. Any other epoch adds 1 to bad_epochs. Returns True (stop) when
        bad_epochs has reached patience, else False. Called again after it said stop, it goes on by the same rule:
        True at every further epoch without improvement, False again after an improvement.
    Before the first improvement best_loss is inf, best_epoch −1 and best_weights None (also when the first epochs'
    losses are NaN).
    """

    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_weights = math.inf, -1, None
        self.epoch, self.bad_epochs = -1, 0  # the number of the last epoch seen; epochs since the best

    def step(self, val_loss, weights):
        ### BEGIN SOLUTION
        self.epoch += 1
        if val_loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.best_weights = [np.array(w, copy=True) for w in weights]
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience
        ### END SOLUTION


def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    """Batch normalization of a batch of feature vectors, as torch.nn.BatchNorm1d computes it.

    In training (N ≥ 2), with the batch's own statistics, μ = mean of x over the batch and σ² its biased variance
    (÷ N):  x̂ = (x − μ) / √(σ² + eps),  out = γ·x̂ + β, and the running statistics move towards the batch's:
        running_mean ← (1 − momentum)·running_mean + momentum·μ
        running_var  ← (1 − momentum)·running_var  + momentum·σ²·N / (N − 1)   (the unbiased variance, as torch)
    In evaluation, with the running statistics, which are returned unchanged:
        out = γ·(x − running_mean) / √(running_var + eps) + β
    x: (N, D); gamma, beta, running_mean, running_var: (D,)
    ->  (out: (N, D), running_mean: (D,), running_var: (D,)), the running statistics after this call; the arrays
    passed in are left as they were (torch's BatchNorm1d updates its buffers in place instead).
    """
    ### BEGIN SOLUTION
    if not training:
        return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    mean = x.mean(axis=0)
    var = ((x - mean) ** 2).mean(axis=0)
    out = gamma * (x - mean) / np.sqrt(var + eps) + beta
    new_mean = (1 - momentum) * running_mean + momentum * mean
    new_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)
    return out, new_mean, new_var
    ### END SOLUTION


def batchnorm_backward(dout, x, gamma, eps=1e-5):
    """The gradients of training-mode batch normalization (batchnorm_forward with training=True, the batch's own μ
    and σ²) with respect to its input and its parameters γ and β, given dout, the gradient of the loss with respect
    to out. μ and σ² are computed from every row of x, so a row's dx depends on the whole column of dout, not on its
    own row alone: follow every path from x to out.
    dout, x: (N, D) with N ≥ 2; gamma: (D,); eps as in the forward pass  ->  (dx: (N, D), dgamma: (D,), dbeta: (D,))
    """
    ### BEGIN SOLUTION
    mean = x.mean(axis=0)
    inv_std = 1 / np.sqrt(((x - mean) ** 2).mean(axis=0) + eps)
    x_hat = (x - mean) * inv_std
    dx = gamma * inv_std * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    ### END SOLUTION
