"""Chapter 05 exercises: L2 and L1 penalties, the SGD step with L2 and the L1 proximal step, a dropout layer, an early
stopping callback, and batch normalization's forward and backward passes."""
import copy
import math

import numpy as np

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch05_regularization as ref

# What these exercises ask you to write without (the update rule by hand, not torch's optimizer): see autograder/learner/forbidden.py.
OPTIMIZERS = ("torch.optim",)
# What these exercises ask you to write without (NumPy inputs: the layer by hand, not torch's): see autograder/learner/forbidden.py.
TORCH = ("torch",)


def _arrays(*shapes, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return [rng.normal(scale=scale, size=shape) for shape in shapes]


def _penalty_case(*shapes, seed, lam, scale=1.0, zeros=False):
    """{"weights": arrays of `shapes`, "lam": lam}; with zeros, about a third of the entries exactly 0."""
    def make():
        weights = _arrays(*shapes, seed=seed, scale=scale)
        if zeros:
            mask = np.random.default_rng(seed + 100)
            weights = [np.where(mask.random(w.shape) < 0.35, 0.0, w) for w in weights]
        return {"weights": weights, "lam": lam}
    return make


def _step_case(shape, seed, scale=1.0, grad_scale=1.0, zero_grad=False, **hyper):
    def make():
        rng = np.random.default_rng(seed)
        param = rng.normal(scale=scale, size=shape)
        grad = np.zeros(shape) if zero_grad else rng.normal(scale=grad_scale, size=shape)
        return {"param": param, "grad": grad, **hyper}
    return make


def _given(**arrays_and_numbers):
    """A case of fixed values: lists become float arrays, numbers stay numbers."""
    def make():
        return {name: np.array(value, dtype=np.float64) if isinstance(value, list) else value
                for name, value in arrays_and_numbers.items()}
    return make


# ---------------------------------------------------------------- l2_penalty

def _l2_variant(kind):
    def l2_penalty(weights, lam):
        squares = sum(float(np.sum(w * w)) for w in weights)
        if kind == "no_half":
            return lam * squares, [lam * w for w in weights]
        if kind == "two_lam":
            return 0.5 * lam * squares, [2 * lam * w for w in weights]
        if kind == "other_convention":
            return lam * squares, [2 * lam * w for w in weights]
        if kind == "norms":
            return 0.5 * lam * sum(float(np.linalg.norm(w)) for w in weights), [lam * w for w in weights]
        if kind == "means":
            return 0.5 * lam * sum(float(np.mean(w * w)) for w in weights), [lam * w for w in weights]
        if kind == "in_place":
            for w in weights:
                w *= lam
            return 0.5 * lam * squares, weights
        return 0.5 * lam * squares, [lam * np.sign(w) for w in weights]  # "sign"
    return l2_penalty


def _l2_flat(weights, lam):
    flat = np.concatenate([np.ravel(w) for w in weights]) if weights else np.zeros(0)
    return float(lam / 2 * np.dot(flat, flat)), [np.multiply(lam, w) for w in weights]


def _l2_by_torch(weights, lam):
    import torch

    tensors = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights]
    penalty = lam / 2 * sum((t ** 2).sum() for t in tensors) if tensors else torch.zeros((), dtype=torch.float64)
    if tensors:
        penalty.backward()
    return penalty.detach().item(), [t.grad.numpy().copy() for t in tensors]


register(Exercise(
    id="ch05.l2_penalty", points=1, reference=ref.l2_penalty, outputs=("penalty", "gradients"), rtol=1e-10,
    cases=(
        Case("by hand: w = [3, 4], λ = 2: penalty 25, gradient [6, 8]", lambda: {"weights": [np.array([3.0, 4.0])],
                                                                                      "lam": 2.0}),
        Case("a 3 x 2 matrix and a vector, λ 0.1", _penalty_case((3, 2), (2,), seed=1, lam=0.1)),
        Case("three arrays of different shapes, λ 0.01", _penalty_case((4, 3), (3,), (2, 2, 2), seed=2, lam=0.01)),
        Case("no weights at all: penalty 0", lambda: {"weights": [], "lam": 0.5}, hidden=True),
        Case("λ = 0: no penalty, zero gradients", _penalty_case((2, 3), seed=3, lam=0.0), hidden=True),
        Case("a size-1 array", lambda: {"weights": [np.array([-7.0])], "lam": 0.3}, hidden=True),
        Case("large weights (1e6)", _penalty_case((5,), (2, 2), seed=4, lam=1e-4, scale=1e6), hidden=True),
    ),
    mistakes=(
        Mistake("penalty without the ½", "This course writes the penalty as (λ/2)·Σ‖W‖², so that its gradient is "
                "λ·W and λ is torch's weight_decay; λ·Σ‖W‖² is twice that.", _l2_variant("no_half")),
        Mistake("gradient 2λ·W with the ½ penalty", "The gradient of (λ/2)·‖W‖² is λ·W: the ½ cancels the 2 of "
                "the square's derivative.", _l2_variant("two_lam")),
        Mistake("the other convention, λ·‖W‖² with gradient 2λ·W", "Consistent, but not this course's: the "
                "penalty here is (λ/2)·Σ‖W‖² with gradient λ·W, so that λ is torch's weight_decay.",
                _l2_variant("other_convention")),
        Mistake("norms summed instead of squares", "‖W‖² is the sum of the squared entries, Σ w², not the norm "
                "√(Σ w²).", _l2_variant("norms")),
        Mistake("mean of the squares instead of their sum", "The penalty sums the squares of every entry: "
                "np.sum(w * w), not np.mean.", _l2_variant("means")),
        Mistake("gradient λ·sign(W), L1's", "That is the L1 penalty's (sub)gradient; L2's gradient is λ·W, "
                "proportional to each weight.", _l2_variant("sign")),
        Mistake("gradients computed in the weights' own arrays", "The gradients must be new arrays (lam * w): "
                "w *= lam multiplies the arrays in the list you were given, the network's weights themselves.",
                _l2_variant("in_place")),
    ),
    alternatives=(_l2_flat, _l2_by_torch),
))


# ---------------------------------------------------------------- sgd_l2_step

def _sgd_l2_variant(kind):
    def sgd_l2_step(param, grad, lr, weight_decay):
        if kind == "seed":
            return param - lr * grad - weight_decay * param
        if kind == "quoted":  # the seed article's update as the chapter quotes it
            return param - lr * grad - 2 * weight_decay * param
        if kind == "two":
            return param - lr * (grad + 2 * weight_decay * param)
        if kind == "sign":
            return param - lr * (grad - weight_decay * param)
        if kind == "after":
            stepped = param - lr * grad
            return stepped - lr * weight_decay * stepped
        param -= lr * (grad + weight_decay * param)  # "in_place"
        return param
    return sgd_l2_step


def _sgd_l2_shrink(param, grad, lr, weight_decay):
    return param * (1 - lr * weight_decay) - lr * grad


def _sgd_l2_by_torch(param, grad, lr, weight_decay):
    import torch

    p = torch.tensor(param, dtype=torch.float64, requires_grad=True)
    p.grad = torch.tensor(grad, dtype=torch.float64)
    torch.optim.SGD([p], lr=lr, weight_decay=weight_decay).step()
    return p.detach().numpy().copy()


register(Exercise(
    id="ch05.sgd_l2_step", forbids=OPTIMIZERS, points=1, reference=ref.sgd_l2_step, rtol=1e-10,
    cases=(
        Case("by hand: θ = [1, −2], ∇J = [0.5, 0.5], lr 0.1, λ 0.1",
             _given(param=[1.0, -2.0], grad=[0.5, 0.5], lr=0.1, weight_decay=0.1)),
        Case("a 3 x 2 weight matrix, lr 0.5, λ 0.01", _step_case((3, 2), 11, lr=0.5, weight_decay=0.01)),
        Case("zero gradient: only the decay moves θ, by lr·λ·θ", _step_case((4,), 12, zero_grad=True, lr=0.05,
                                                                            weight_decay=0.2)),
        Case("λ = 0: plain SGD", _step_case((3,), 13, lr=0.1, weight_decay=0.0), hidden=True),
        Case("lr·λ = 1: the decay alone would set θ to 0", _step_case((2, 2), 14, lr=0.5, weight_decay=2.0),
             hidden=True),
        Case("large weights (1e6) and small gradients", _step_case((5,), 15, scale=1e6, grad_scale=1e-3, lr=0.01,
                                                                   weight_decay=1e-3), hidden=True),
        Case("a size-1 parameter", _step_case((1,), 16, lr=1.0, weight_decay=0.5), hidden=True),
    ),
    mistakes=(
        Mistake("weight decay without the learning rate (the seed article's bug)", "θ ← θ − lr·(∇J + λ·θ): the "
                "penalty's gradient is part of the gradient and is multiplied by lr like the rest. θ − lr·∇J − λ·θ "
                "shrinks the weights by λ on every step whatever the learning rate.", _sgd_l2_variant("seed")),
        Mistake("the quoted article's update, θ − lr·∇J − 2λθ", "This is the article's update that the chapter "
                "quotes as wrong. Two things differ from this course's: lr multiplies the penalty's gradient as it "
                "does ∇J, both being parts of one gradient; and with the penalty (λ/2)·‖θ‖² that gradient is λ·θ "
                "(the 2 belongs to λ·‖θ‖²).", _sgd_l2_variant("quoted")),
        Mistake("the penalty's gradient taken as 2λ·θ", "With this course's penalty (λ/2)·‖θ‖² the gradient is λ·θ "
                "(torch's weight_decay), not 2λ·θ.", _sgd_l2_variant("two")),
        Mistake("decay with the wrong sign", "The penalty's gradient +λ·θ is added to ∇J, and the step subtracts "
                "the sum: the weights shrink towards 0, not grow.", _sgd_l2_variant("sign")),
        Mistake("decay applied after the gradient step", "Both gradients are taken at the same θ: "
                "θ − lr·(∇J(θ) + λ·θ), not the decay of the already-stepped weights.", _sgd_l2_variant("after")),
        Mistake("parameter updated in place", "Return a new array (param - ...); the caller's param must not "
                "change.", _sgd_l2_variant("in_place")),
    ),
    alternatives=(_sgd_l2_shrink, _sgd_l2_by_torch),
))


# ---------------------------------------------------------------- l1_penalty

def _l1_variant(kind):
    def l1_penalty(weights, lam):
        total = sum(float(np.sum(np.abs(w))) for w in weights)
        if kind == "at_zero":
            return lam * total, [lam * np.where(w >= 0, 1.0, -1.0) for w in weights]
        if kind == "half":
            return 0.5 * lam * total, [0.5 * lam * np.sign(w) for w in weights]
        if kind == "l2_grad":
            return lam * total, [lam * w for w in weights]
        return lam * sum(abs(float(np.sum(w))) for w in weights), [lam * np.sign(w) for w in weights]  # "abs_sum"
    return l1_penalty


def _l1_by_where(weights, lam):
    penalty = lam * sum(np.linalg.norm(np.ravel(w), 1) for w in weights)
    return float(penalty), [np.where(w > 0, lam, np.where(w < 0, -lam, 0.0)) for w in weights]


def _l1_by_torch(weights, lam):
    import torch

    tensors = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in weights]
    if not tensors:
        return 0.0, []
    penalty = lam * sum(t.abs().sum() for t in tensors)
    penalty.backward()
    return penalty.detach().item(), [t.grad.numpy().copy() for t in tensors]


register(Exercise(
    id="ch05.l1_penalty", points=1, reference=ref.l1_penalty, outputs=("penalty", "subgradients"), rtol=1e-10,
    cases=(
        Case("by hand: w = [−2, 0, 3], λ 0.5: penalty 2.5, subgradient [−0.5, 0, 0.5]",
             lambda: {"weights": [np.array([-2.0, 0.0, 3.0])], "lam": 0.5}),
        Case("a matrix and a vector with exact zeros, λ 0.1", _penalty_case((3, 4), (4,), seed=21, lam=0.1,
                                                                            zeros=True)),
        Case("three arrays, λ 0.01", _penalty_case((2, 3), (3,), (2, 2, 2), seed=22, lam=0.01)),
        Case("no weights at all: penalty 0", lambda: {"weights": [], "lam": 0.5}, hidden=True),
        Case("all zeros: penalty 0, subgradient 0", lambda: {"weights": [np.zeros((2, 3))], "lam": 1.0},
             hidden=True),
        Case("large weights (1e6)", _penalty_case((5,), seed=23, lam=1e-3, scale=1e6), hidden=True),
        Case("a size-1 array", lambda: {"weights": [np.array([-0.25])], "lam": 4.0}, hidden=True),
    ),
    mistakes=(
        Mistake("subgradient 1 at w = 0", "|w| has no slope at 0; this course (and torch's autograd) uses 0 there: "
                "np.sign(0) is 0, while np.where(w >= 0, 1, -1) gives 1.", _l1_variant("at_zero")),
        Mistake("L1 with L2's ½", "The ½ belongs to the L2 penalty, where it cancels the square's 2; the L1 "
                "penalty is λ·Σ|w| with subgradient λ·sign(w).", _l1_variant("half")),
        Mistake("gradient λ·w, L2's", "L1's subgradient is λ·sign(w): the same size for every non-zero weight, "
                "which is what drives small weights all the way to 0.", _l1_variant("l2_grad")),
        Mistake("absolute value of the sum", "Σ|w|, the absolute value of each entry summed: |Σw| lets positive "
                "and negative weights cancel.", _l1_variant("abs_sum")),
    ),
    alternatives=(_l1_by_where, _l1_by_torch),
))


# ---------------------------------------------------------------- l1_prox_step

def _prox_variant(kind):
    def l1_prox_step(param, grad, lr, lam):
        z = param - lr * grad
        if kind == "lam":
            return np.sign(z) * np.maximum(np.abs(z) - lam, 0.0)
        if kind == "subgradient":
            return param - lr * (grad + lam * np.sign(param))
        if kind == "before":
            return np.sign(param) * np.maximum(np.abs(param) - lr * lam, 0.0) - lr * grad
        if kind == "hard":
            return np.where(np.abs(z) > lr * lam, z, 0.0)
        return z - lr * lam * np.sign(z)  # "past_zero"
    return l1_prox_step


def _prox_clip(param, grad, lr, lam):
    z = param - lr * grad
    return z - np.clip(z, -lr * lam, lr * lam)


def _prox_where(param, grad, lr, lam):
    z, t = param - lr * grad, lr * lam
    return np.where(z > t, z - t, np.where(z < -t, z + t, 0.0))


register(Exercise(
    id="ch05.l1_prox_step", points=2, reference=ref.l1_prox_step, rtol=1e-10, atol=1e-12,
    cases=(
        Case("by hand: θ = [1, −0.3, 0.05, −2], lr 0.1, λ 1: threshold 0.1",
             _given(param=[1.0, -0.3, 0.05, -2.0], grad=[0.5, 0.0, 0.0, -1.0], lr=0.1, lam=1.0)),
        Case("the gradient step crosses 0: θ = 0.3, ∇J = 1, lr 0.5, λ 0.1", _given(param=[0.3], grad=[1.0], lr=0.5,
                                                                                    lam=0.1)),
        Case("a 3 x 3 matrix, lr 0.5, λ 0.4: some entries to 0, others shrunk",
             _step_case((3, 3), 31, scale=0.5, grad_scale=0.2, lr=0.5, lam=0.4)),
        Case("λ = 0: a plain gradient step", _step_case((4,), 32, lr=0.1, lam=0.0), hidden=True),
        Case("every entry within the threshold: all 0", _step_case((2, 3), 33, scale=0.01, grad_scale=0.01, lr=0.1,
                                                                   lam=1.0), hidden=True),
        Case("large weights (1e6)", _step_case((5,), 34, scale=1e6, lr=0.01, lam=1e3), hidden=True),
        Case("zero gradient: the prox of θ alone", _step_case((6,), 35, zero_grad=True, lr=0.2, lam=2.0),
             hidden=True),
    ),
    mistakes=(
        Mistake("threshold λ instead of lr·λ", "The proximal step of the penalty λ·‖θ‖₁ after a step of size lr "
                "thresholds at lr·λ: the penalty's pull is scaled by the learning rate like the gradient's.",
                _prox_variant("lam")),
        Mistake("a subgradient step instead of the proximal step", "θ − lr·(∇J + λ·sign(θ)) jumps back and forth "
                "over 0 and never lands on it; soft-thresholding z = θ − lr·∇J sets |z| ≤ lr·λ to exactly 0.",
                _prox_variant("subgradient")),
        Mistake("thresholded before the gradient step", "First the gradient step on J, z = θ − lr·∇J, then "
                "the threshold on z: the result of a proximal step is always the thresholded value.",
                _prox_variant("before")),
        Mistake("hard thresholding", "Soft-thresholding also moves the entries it keeps lr·λ towards 0: "
                "sign(z)·max(|z| − lr·λ, 0), not z where |z| > lr·λ.", _prox_variant("hard")),
        Mistake("shrunk past zero", "An entry with |z| ≤ lr·λ stops at 0: max(|z| − lr·λ, 0), not z − lr·λ·sign(z), "
                "which overshoots.", _prox_variant("past_zero")),
    ),
    alternatives=(_prox_clip, _prox_where),
))


# ---------------------------------------------------------------- Dropout

def _dropout_case(p, seed, shape=(4, 5), calls=("forward", "backward"), scale=1.0, dtype=np.float64):
    """Dropout(p, Generator(seed)) through `calls`: "forward" and "backward" get fresh random x and dout of `shape`
    and `dtype`; "train" and "eval" switch the mode."""
    def make():
        rng = np.random.default_rng(seed + 1000)
        steps = []
        for name in calls:
            if name == "forward":
                steps.append(["forward", {"x": rng.normal(scale=scale, size=shape).astype(dtype)}])
            elif name == "backward":
                steps.append(["backward", {"dout": rng.normal(size=shape).astype(dtype)}])
            else:
                steps.append([name, {}])
        return {"params": {"p": p, "rng": np.random.default_rng(seed)}, "calls": steps}
    return make


class _DropoutMistake(ref.Dropout):
    """The reference with one mistake, `kind`, and nothing else changed (x's dtype kept, no division by 0 at p = 1,
    unless that is the mistake), so that a mistake is named only where it alone explains what failed."""
    kind = ""

    def forward(self, x):
        p, kind = self.p, self.kind
        if not self.training and kind != "always":
            if kind == "stale":
                return x.copy()  # the last training mask stays for backward
            dtype = np.float64 if kind == "float64_mask" else x.dtype
            self.mask = np.full(x.shape, 1 - p if kind == "eval_scaled" else 1, dtype=dtype)
            return x * self.mask
        u = self.rng.random(x.shape)
        if kind == "float64_mask":
            self.mask = (u >= p) / (1 - p) if p < 1 else np.zeros(x.shape)
            return x * self.mask
        kept = (u < p if kind == "keep_prob" else u < 1 - p if kind == "other_rule" else u >= p).astype(x.dtype)
        share = p if kind == "keep_prob" else 1 - p
        if kind == "no_rescale":
            self.mask = kept
        elif kind == "zero_division":
            with np.errstate(divide="ignore", invalid="ignore"):
                self.mask = kept / share
        else:
            self.mask = kept / share if p < 1 else kept
        return x * self.mask

    def backward(self, dout):
        if self.kind == "new_mask":
            return self.forward(dout)  # a new draw in training (the identity in evaluation)
        return dout * self.mask


def _dropout_variant(kind):
    return type("Dropout", (_DropoutMistake,), {"kind": kind})


class _DropoutKeep:
    """Keeps the boolean mask and the scale apart; the identity in eval without a mask."""

    def __init__(self, p, rng):
        self.p, self.rng, self.training = p, rng, True

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    def forward(self, x):
        if not self.training:
            self.keep, self.scale = None, 1.0
            return np.array(x, copy=True)
        self.keep = self.rng.uniform(size=x.shape) >= self.p
        self.scale = 0.0 if self.p == 1 else 1.0 / (1.0 - self.p)
        return np.where(self.keep, x * self.scale, 0.0)

    def backward(self, dout):
        return np.array(dout, copy=True) if self.keep is None else np.where(self.keep, dout * self.scale, 0.0)


DROPOUT_OUTPUTS = ("what each call returned",)

register(Exercise(
    id="ch05.Dropout", forbids=TORCH, points=2, reference=ref.Dropout, call=drivers.method_calls, outputs=DROPOUT_OUTPUTS,
    rtol=1e-12, strict_dtype=True,
    cases=(
        Case("p 0.5: forward, then backward with its mask", _dropout_case(0.5, 41)),
        Case("p 0.2: two forwards, each backward with its own forward's mask", _dropout_case(
            0.2, 42, calls=("forward", "backward", "forward", "backward"))),
        Case("p 0.3: train, then eval (the identity, and dout passed through), then train again", _dropout_case(
            0.3, 43, calls=("forward", "backward", "eval", "forward", "backward", "train", "forward", "backward"))),
        Case("p 1: everything dropped, zeros (no division by 0)", _dropout_case(1.0, 45)),
        Case("float32 x and dout: the outputs stay float32, in training and in eval", _dropout_case(
            0.3, 50, dtype=np.float32, calls=("forward", "backward", "eval", "forward", "backward"))),
        Case("p 0: nothing dropped", _dropout_case(0.0, 44), hidden=True),
        Case("a batch of one", _dropout_case(0.5, 46, shape=(1, 6)), hidden=True),
        Case("an input of 3 axes (N, C, L)", _dropout_case(0.25, 47, shape=(2, 3, 4)), hidden=True),
        Case("eval first, then train", _dropout_case(0.4, 48, calls=("eval", "forward", "backward", "train",
                                                                      "forward", "backward")), hidden=True),
        Case("a batch of 200 x 50, p 0.1, large values (1e6)", _dropout_case(0.1, 49, shape=(200, 50), scale=1e6),
             hidden=True),
    ),
    mistakes=(
        Mistake("dropout without rescaling", "Inverted dropout divides the kept entries by 1 − p in training, so "
                "that the expected output is the input and evaluation needs no change: mask = (u ≥ p) / (1 − p).",
                _dropout_variant("no_rescale")),
        Mistake("rescaled at eval", "The training pass already divided by 1 − p; in evaluation inverted dropout is "
                "the identity, out = x (multiplying by 1 − p at test time belongs to the original, non-inverted "
                "dropout, which does not rescale in training).", _dropout_variant("eval_scaled")),
        Mistake("a new mask in backward", "backward must use the mask of the forward pass it belongs to: the "
                "entries dropped in the forward pass get no gradient. Keep the mask (self.mask) and reuse it; do "
                "not draw again (calling forward on dout draws again).", _dropout_variant("new_mask")),
        Mistake("p taken as the probability to keep", "p is the probability to drop (torch's convention; "
                "TensorFlow 1 took keep_prob): drop where u < p, scale the rest by 1 / (1 − p).",
                _dropout_variant("keep_prob")),
        Mistake("dropping in evaluation too", "After eval(), training is False and the layer is the identity: no "
                "draw, no mask, out = x.", _dropout_variant("always")),
        Mistake("backward in evaluation with the last training mask", "In evaluation forward sets the mask to 1 "
                "everywhere (or backward returns dout as it is): a mask left over from training would drop "
                "gradients of entries that were kept.", _dropout_variant("stale")),
        Mistake("mask drawn by another rule than the docstring's", "Both keep 1 − p of the entries on average, "
                "but a check can only compare the same entries: draw u = self.rng.random(x.shape) once and drop "
                "where u < p (keep where u ≥ p), not keep where u < 1 − p.", _dropout_variant("other_rule")),
        Mistake("division by 1 − p = 0 at p = 1", "At p = 1 every entry is dropped, and (u ≥ p) / (1 − p) is 0 / 0 "
                "= NaN: when p is 1 the mask is all 0, with no division.", _dropout_variant("zero_division")),
        Mistake("a float64 mask for a float32 input", "rng.random gives float64 and (u ≥ p) / (1 − p) stays "
                "float64, so x · mask turns a float32 x into float64; build the mask in x's dtype "
                "(.astype(x.dtype)), as torch keeps a tensor's dtype.", _dropout_variant("float64_mask")),
    ),
    alternatives=(_DropoutKeep,),
))


# ---------------------------------------------------------------- EarlyStopping

def _stopping_case(losses, patience, seed, min_delta=None):
    """EarlyStopping(patience[, min_delta]) stepped on `losses`, each epoch with new weights [W (2, 3), b (3,)]
    (written into the same arrays by the driver, as training does)."""
    def make():
        rng = np.random.default_rng(seed)
        params = {"patience": patience} if min_delta is None else {"patience": patience, "min_delta": min_delta}
        calls = [["step", {"val_loss": loss, "weights": [rng.normal(size=(2, 3)), rng.normal(size=3)]}]
                 for loss in losses]
        return {"params": params, "calls": calls, "attributes": ["best_loss", "best_epoch", "best_weights"]}
    return make


class _StoppingMistake(ref.EarlyStopping):
    kind = ""

    def step(self, val_loss, weights):
        self.epoch += 1
        kind = self.kind
        if kind == "previous":
            reference = getattr(self, "previous", math.inf) - self.min_delta
            self.previous = val_loss
        else:
            reference = self.best_loss - (0.0 if kind == "no_delta" else self.min_delta)
        improved = val_loss <= reference if kind == "tie" else val_loss < reference
        if kind == "nan":
            improved = not val_loss >= reference
        if kind == "first_is_best":
            improved = improved or self.epoch == 0
        if improved:
            self.best_loss, self.best_epoch = val_loss, self.epoch
            self.best_weights = weights if kind == "last" else [np.array(w, copy=True) for w in weights]
            if kind != "no_reset":
                self.bad_epochs = 0
        else:
            self.bad_epochs += 1
        stop = self.bad_epochs > self.patience if kind == "off_by_one" else self.bad_epochs >= self.patience
        if kind == "reset_at_stop" and stop:
            self.bad_epochs = 0
        if kind == "latched":
            self.stopped = stop = stop or getattr(self, "stopped", False)
        return stop


def _stopping_variant(kind):
    return type("EarlyStopping", (_StoppingMistake,), {"kind": kind})


class _StoppingKerasStyle:
    """Keras's bookkeeping: a wait counter, np.less with the delta moved to the other side, deepcopy of the weights."""

    def __init__(self, patience, min_delta=0.0):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_weights = math.inf, -1, None
        self.wait, self.seen = 0, 0

    def step(self, val_loss, weights):
        epoch, self.seen = self.seen, self.seen + 1
        if np.less(val_loss + self.min_delta, self.best_loss):
            self.best_loss, self.best_epoch, self.best_weights, self.wait = val_loss, epoch, copy.deepcopy(
                weights), 0
            return False
        self.wait += 1
        return bool(self.wait >= self.patience)


register(Exercise(
    id="ch05.EarlyStopping", points=2, reference=ref.EarlyStopping, call=drivers.method_calls,
    outputs=("stop? after each epoch", "best_loss", "best_epoch", "best_weights"), rtol=1e-12,
    cases=(
        Case("patience 2: better for 3 epochs, then worse twice: stop", _stopping_case([1.0, 0.8, 0.6, 0.7, 0.65],
                                                                                      2, seed=51)),
        Case("patience 3: an improvement after 2 bad epochs starts the count again",
             _stopping_case([1.0, 1.1, 1.2, 0.9, 1.0, 1.05, 1.1], 3, seed=52)),
        Case("patience 2: the same loss again is no improvement", _stopping_case([0.5, 0.4, 0.4, 0.4], 2, seed=53)),
        Case("min_delta 0.1: a decrease of 0.05 does not count", _stopping_case([1.0, 0.95, 0.85, 0.8], 3, seed=54,
                                                                                min_delta=0.1)),
        Case("patience 1: stop at the first bad epoch", _stopping_case([0.3, 0.2, 0.25], 1, seed=55), hidden=True),
        Case("a NaN loss is no improvement", _stopping_case([0.5, math.nan, 0.6, math.nan], 3, seed=56)),
        Case("patience 2, stepped on after it said stop: True while no epoch improves, False after one",
             _stopping_case([1.0, 1.1, 0.9, 1.0, 1.2, 1.3, 0.8, 0.9, 1.0], 2, seed=60)),
        Case("a first epoch that does not improve (NaN): the best comes later", _stopping_case(
            [math.nan, 0.9, 1.0, 0.8, 0.85, 0.9], 2, seed=61)),
        Case("patience 1 and a NaN first epoch: stop at once, with no best to restore",
             _stopping_case([math.nan], 1, seed=62), hidden=True),
        Case("only improvements: never stops, the best is the last", _stopping_case([3.0, 2.0, 1.5, 1.0, 0.9], 2,
                                                                                   seed=57), hidden=True),
        Case("a single epoch", _stopping_case([0.7], 5, seed=58), hidden=True),
        Case("large and tiny losses, min_delta 1e-9", _stopping_case([1e6, 1e-6, 1e-6 - 1e-10, 2e-6], 2, seed=59,
                                                                    min_delta=1e-9), hidden=True),
    ),
    mistakes=(
        Mistake("the last weights kept instead of the best", "Copy the weights when the loss improves, and only "
                "then: [np.array(w, copy=True) for w in weights]. Keeping weights itself (or list(weights)) keeps "
                "the network's own arrays, which training goes on changing, so at the end they hold the last "
                "epoch's weights.", _stopping_variant("last")),
        Mistake("off-by-one patience", "Stop as soon as bad_epochs reaches patience (>=): with patience 2, two "
                "epochs in a row without improvement stop training.", _stopping_variant("off_by_one")),
        Mistake("count not reset by an improvement", "patience counts bad epochs *in a row*: set bad_epochs back to "
                "0 whenever the loss improves.", _stopping_variant("no_reset")),
        Mistake("compared with the previous epoch instead of the best", "An improvement beats the best loss so "
                "far (best_loss − min_delta), not just the epoch before.", _stopping_variant("previous")),
        Mistake("a tie counted as an improvement", "The loss must fall below best_loss − min_delta (<): the same "
                "loss again is a bad epoch.", _stopping_variant("tie")),
        Mistake("min_delta ignored", "An improvement must beat the best by more than min_delta: "
                "val_loss < best_loss − min_delta.", _stopping_variant("no_delta")),
        Mistake("a NaN loss counted as an improvement", "Every comparison with NaN is False: test "
                "val_loss < best_loss − min_delta directly, so that a NaN epoch is a bad one (not "
                "`not val_loss >= ...`).", _stopping_variant("nan")),
        Mistake("the first epoch taken as the best whatever its loss", "The first epoch is compared like any other, "
                "with best_loss = inf: a NaN loss there is no improvement, and taking it as the best leaves "
                "best_loss NaN, which nothing can beat afterwards.", _stopping_variant("first_is_best")),
        Mistake("the count restarted after saying stop", "Only an improvement sets bad_epochs back to 0: stepped "
                "on after it said stop, the callback goes on counting and says stop again at the next epoch "
                "without improvement.", _stopping_variant("reset_at_stop")),
        Mistake("a stop that stays after an improvement", "step answers for the epochs so far: an improvement sets "
                "bad_epochs to 0, and step returns False again, even if it said stop before.",
                _stopping_variant("latched")),
    ),
    alternatives=(_StoppingKerasStyle,),
))


# ---------------------------------------------------------------- batchnorm_forward

def _bn_case(n, d, seed, training=None, momentum=None, eps=None, scale=2.0, offset=1.0, tiny_feature=False,
             constant_feature=False, stats="random"):
    """x: (n, d) of the given scale around offset; gamma, beta random; running statistics random (or torch's
    start, zeros and ones, with stats="fresh"); only the options given are passed."""
    def make():
        rng = np.random.default_rng(seed)
        x = offset + scale * rng.normal(size=(n, d))
        if tiny_feature:
            x[:, 0] = 0.3 + 1e-3 * rng.normal(size=n)
        if constant_feature:
            x[:, -1] = 2.5
        args = {"x": x, "gamma": 1.0 + 0.5 * rng.normal(size=d), "beta": rng.normal(size=d)}
        if stats == "fresh":
            args["running_mean"], args["running_var"] = np.zeros(d), np.ones(d)
        else:
            args["running_mean"], args["running_var"] = rng.normal(size=d), 0.5 + rng.random(size=d)
        for name, value in (("training", training), ("momentum", momentum), ("eps", eps)):
            if value is not None:
                args[name] = value
        return args
    return make


def _bn_variant(kind):
    def batchnorm_forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
        if not training:
            if kind == "update_in_eval":
                mean, var = x.mean(axis=0), x.var(axis=0)
                return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta, \
                    (1 - momentum) * running_mean + momentum * mean, (1 - momentum) * running_var + momentum * var
            return gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta, running_mean.copy(), \
                running_var.copy()
        n = x.shape[0]
        axis, keep = (1, True) if kind == "layer_norm" else (0, False)
        mean = x.mean(axis=axis, keepdims=keep)
        var = x.var(axis=axis, keepdims=keep)
        unbiased = var * n / (n - 1) if kind != "layer_norm" else x.var(axis=0) * n / (n - 1)
        norm_mean, norm_var = (running_mean, running_var) if kind == "running_in_train" else (mean, var)
        if kind == "unbiased_norm":
            norm_var = unbiased
        if kind == "no_eps":
            x_hat = (x - norm_mean) / np.sqrt(norm_var)
        elif kind == "eps_outside":
            x_hat = (x - norm_mean) / (np.sqrt(norm_var) + eps)
        else:
            x_hat = (x - norm_mean) / np.sqrt(norm_var + eps)
        batch_mean = x.mean(axis=0)
        stored_var = x.var(axis=0) if kind == "biased_running" else (
            unbiased if kind != "layer_norm" else x.var(axis=0) * n / (n - 1))
        if kind == "keras_momentum":
            new_mean = momentum * running_mean + (1 - momentum) * batch_mean
            new_var = momentum * running_var + (1 - momentum) * stored_var
        elif kind == "in_place":
            running_mean *= 1 - momentum
            running_mean += momentum * batch_mean
            running_var *= 1 - momentum
            running_var += momentum * stored_var
            new_mean, new_var = running_mean, running_var
        else:
            new_mean = (1 - momentum) * running_mean + momentum * batch_mean
            new_var = (1 - momentum) * running_var + momentum * stored_var
        return gamma * x_hat + beta, new_mean, new_var
    return batchnorm_forward


def _bn_with_ddof(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    if training:
        mu, sigma2 = np.mean(x, axis=0), np.var(x, axis=0)
        running_mean = running_mean + momentum * (mu - running_mean)
        running_var = running_var + momentum * (np.var(x, axis=0, ddof=1) - running_var)
    else:
        mu, sigma2 = running_mean, running_var
        running_mean, running_var = np.copy(running_mean), np.copy(running_var)
    scale = gamma / np.sqrt(sigma2 + eps)
    return x * scale + (beta - mu * scale), running_mean, running_var


def _bn_by_torch(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    import torch

    mean, var = torch.tensor(running_mean.copy()), torch.tensor(running_var.copy())
    out = torch.nn.functional.batch_norm(torch.tensor(x), mean, var, torch.tensor(gamma), torch.tensor(beta),
                                         training=training, momentum=momentum, eps=eps)
    return out.numpy(), mean.numpy(), var.numpy()


register(Exercise(
    id="ch05.batchnorm_forward", forbids=TORCH, points=2, reference=ref.batchnorm_forward,
    outputs=("out", "running_mean", "running_var"), rtol=1e-9, atol=1e-12,
    cases=(
        Case("training, a batch of 8 with 3 features, the defaults", _bn_case(8, 3, seed=61)),
        Case("evaluation: the running statistics normalize, and stay", _bn_case(6, 4, seed=62, training=False)),
        Case("training, momentum 0.5, eps 1e-3, a feature of variance 1e-6 (where eps shows)",
             _bn_case(5, 3, seed=63, training=True, momentum=0.5, eps=1e-3, tiny_feature=True)),
        Case("training from torch's start (mean 0, variance 1), a constant feature", _bn_case(
            4, 2, seed=64, constant_feature=True, stats="fresh", momentum=0.1)),
        Case("a batch of 2, the smallest that training takes", _bn_case(2, 3, seed=65, eps=1e-5), hidden=True),
        Case("evaluation on a batch of one", _bn_case(1, 5, seed=66, training=False), hidden=True),
        Case("large values (1e4 around 1e5)", _bn_case(16, 2, seed=67, scale=1e4, offset=1e5), hidden=True),
        Case("momentum 1: the running statistics become the batch's", _bn_case(10, 3, seed=68, momentum=1.0),
             hidden=True),
        Case("a batch of 64 with 10 features", _bn_case(64, 10, seed=69, training=True), hidden=True),
    ),
    mistakes=(
        Mistake("biased variance in the running update", "torch stores the unbiased variance, σ²·N / (N − 1), in "
                "running_var (while it normalizes the batch with the biased σ²).", _bn_variant("biased_running")),
        Mistake("running statistics used to normalize in training", "In training the batch's own mean and "
                "variance normalize it; the running statistics are only updated, and used in evaluation.",
                _bn_variant("running_in_train")),
        Mistake("eps forgotten", "Divide by √(σ² + eps): without eps a feature that is constant in the batch "
                "gives 0 / 0.", _bn_variant("no_eps")),
        Mistake("eps outside the square root", "torch adds eps to the variance: √(σ² + eps), not √σ² + eps.",
                _bn_variant("eps_outside")),
        Mistake("momentum as the weight of the old value (Keras's convention)", "In torch momentum weighs the new "
                "batch: running ← (1 − momentum)·running + momentum·batch, momentum 0.1 by default (Keras's 0.99 "
                "weighs the old value).", _bn_variant("keras_momentum")),
        Mistake("unbiased variance used to normalize", "The batch is normalized with its biased variance (÷ N, "
                "np.var's default; torch.var's default is unbiased); only the running update uses ÷ (N − 1).",
                _bn_variant("unbiased_norm")),
        Mistake("normalized over the features (layer norm)", "Batch normalization takes each feature's "
                "statistics over the batch, axis 0: one mean per column.", _bn_variant("layer_norm")),
        Mistake("running statistics updated in evaluation", "In evaluation the running statistics are used and "
                "returned unchanged.", _bn_variant("update_in_eval")),
        Mistake("running statistics updated in place", "Return new arrays: the running statistics passed in are "
                "the caller's and must not change.", _bn_variant("in_place")),
    ),
    alternatives=(_bn_with_ddof, _bn_by_torch),
))


# ---------------------------------------------------------------- batchnorm_backward

def _bn_back_case(n, d, seed, eps=None, scale=2.0, offset=1.0, tiny_feature=False, gamma_zero=False,
                  constant_dout=False):
    def make():
        rng = np.random.default_rng(seed)
        x = offset + scale * rng.normal(size=(n, d))
        if tiny_feature:
            x[:, 0] = 0.3 + 1e-3 * rng.normal(size=n)
        dout = np.tile(rng.normal(size=d), (n, 1)) if constant_dout else rng.normal(size=(n, d))
        gamma = np.zeros(d) if gamma_zero else 1.0 + 0.5 * rng.normal(size=d)
        args = {"dout": dout, "x": x, "gamma": gamma}
        if eps is not None:
            args["eps"] = eps
        return args
    return make


def _bn_back_variant(kind):
    def batchnorm_backward(dout, x, gamma, eps=1e-5):
        mean = x.mean(axis=0)
        var = x.var(axis=0, ddof=1 if kind == "unbiased" else 0)
        inv_std = 1 / np.sqrt(var) if kind == "no_eps" else 1 / np.sqrt(var + eps)
        x_hat = (x - mean) * inv_std
        if kind == "simplified":
            dx = gamma * inv_std * dout
        elif kind == "no_variance_term":
            dx = gamma * inv_std * (dout - dout.mean(axis=0))
        elif kind == "no_mean_term":
            dx = gamma * inv_std * (dout - x_hat * (dout * x_hat).mean(axis=0))
        else:
            dx = gamma * inv_std * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
        if kind == "means":
            return dx, (dout * x_hat).mean(axis=0), dout.mean(axis=0)
        if kind == "dgamma_x":
            return dx, (dout * x).sum(axis=0), dout.sum(axis=0)
        return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    return batchnorm_backward


def _bn_back_staged_variant(kind):
    """The staged backward pass with one of the chain rule's 1/N factors forgotten."""
    def batchnorm_backward(dout, x, gamma, eps=1e-5):
        n = x.shape[0]
        xc = x - x.mean(axis=0)
        std = np.sqrt((xc ** 2).mean(axis=0) + eps)
        x_hat = xc / std
        dx_hat = dout * gamma
        dvar = -(dx_hat * xc).sum(axis=0) / std ** 3 / 2
        dxc = dx_hat / std + 2 * xc * dvar / (1 if kind == "variance_n" else n)
        dx = dxc - dxc.sum(axis=0) / (1 if kind == "mean_n" else n)
        return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    return batchnorm_backward


def _bn_back_staged(dout, x, gamma, eps=1e-5):
    """The computational graph walked backwards one node at a time (cs231n's staged form)."""
    n = x.shape[0]
    mu = x.sum(axis=0) / n
    xc = x - mu
    var = (xc ** 2).sum(axis=0) / n
    std = np.sqrt(var + eps)
    x_hat = xc / std
    dbeta, dgamma = dout.sum(axis=0), (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dxc = dx_hat / std
    dstd = -(dx_hat * xc).sum(axis=0) / std ** 2
    dvar = dstd / (2 * std)
    dxc = dxc + 2 * xc * dvar / n
    dmu = -dxc.sum(axis=0)
    return dxc + dmu / n, dgamma, dbeta


def _bn_back_by_torch(dout, x, gamma, eps=1e-5):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    gt = torch.tensor(gamma, requires_grad=True)
    bt = torch.zeros(len(gamma), dtype=torch.float64, requires_grad=True)
    out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=eps)
    out.backward(torch.tensor(dout))
    return xt.grad.numpy().copy(), gt.grad.numpy().copy(), bt.grad.numpy().copy()


register(Exercise(
    id="ch05.batchnorm_backward", forbids=TORCH, points=3, reference=ref.batchnorm_backward, outputs=("dx", "dgamma", "dbeta"),
    rtol=1e-7, atol=1e-10,
    cases=(
        Case("a batch of 8 with 3 features, eps left at 1e-5", _bn_back_case(8, 3, seed=71)),
        Case("a batch of 2", _bn_back_case(2, 4, seed=72, eps=1e-5)),
        Case("eps 1e-3 and a feature of variance 1e-6 (where eps shows)", _bn_back_case(6, 3, seed=73, eps=1e-3,
                                                                                       tiny_feature=True)),
        Case("γ = 0: no gradient reaches x", _bn_back_case(5, 2, seed=74, gamma_zero=True), hidden=True),
        Case("dout the same for every row: dx = 0", _bn_back_case(7, 3, seed=75, constant_dout=True), hidden=True),
        Case("a batch of 64 with 10 features", _bn_back_case(64, 10, seed=76), hidden=True),
        Case("large values (1e3 around 1e4)", _bn_back_case(16, 2, seed=77, scale=1e3, offset=1e4), hidden=True),
    ),
    mistakes=(
        Mistake("the simplified backward that drops the mean terms", "μ and σ² are computed from the whole batch, "
                "so every row's output depends on every row of its column: besides the direct path, "
                "γ·dout / √(σ² + eps), dx needs the paths through μ and through σ².", _bn_back_variant("simplified")),
        Mistake("the variance's term dropped", "σ² depends on x too: the path x → σ² → x̂ is missing (its term "
                "runs along x̂).", _bn_back_variant("no_variance_term")),
        Mistake("the mean's term dropped", "μ depends on x too: the path x → μ → x̂ is missing (its term is the "
                "same for every row of a column).", _bn_back_variant("no_mean_term")),
        Mistake("the 1/N of σ²'s derivative forgotten", "σ² = mean((x − μ)²), so ∂σ²/∂xᵢ = 2(xᵢ − μ)/N: the "
                "mean's 1/N stays in the derivative.", _bn_back_staged_variant("variance_n")),
        Mistake("the 1/N of μ's derivative forgotten", "μ = mean(x), so each xᵢ gets 1/N of the gradient that "
                "reaches μ, not all of it.", _bn_back_staged_variant("mean_n")),
        Mistake("eps forgotten", "The forward pass divided by √(σ² + eps); its gradient has the same eps.",
                _bn_back_variant("no_eps")),
        Mistake("dgamma and dbeta averaged over the batch", "γ and β are used by every row: their gradients are "
                "sums over the batch, Σ dout·x̂ and Σ dout.", _bn_back_variant("means")),
        Mistake("dgamma from x instead of x̂", "out = γ·x̂ + β, so dgamma = Σ dout·x̂, the normalized input.",
                _bn_back_variant("dgamma_x")),
        Mistake("unbiased variance", "The forward pass normalized with the biased variance (÷ N); the backward "
                "pass differentiates that same expression.", _bn_back_variant("unbiased")),
    ),
    alternatives=(_bn_back_staged, _bn_back_by_torch),
))
