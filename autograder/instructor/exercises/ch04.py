"""Chapter 04 exercises: optimizer steps (SGD with momentum, RMSprop, Adam, AdamW) run over a few steps from a given
state, and global-norm gradient clipping."""
import functools
import math

import numpy as np

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch04_optimizers as ref
from solutions import models

# What these exercises ask you to write without (the norm by hand): see autograder/learner/forbidden.py.
CLIPPING = ("torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad")
# What these exercises ask you to write without (the update rule by hand, not torch's optimizer): see autograder/learner/forbidden.py.
OPTIMIZERS = ("torch.optim",)

TRAJECTORY = ("parameter after each step", "state after the last step")


@functools.lru_cache(maxsize=1)
def _digits_gradients():
    """Gradients of the output bias b2, (10,), of a two-layer network like chapter 03's (64 -> 8 -> 10, ReLU), over 8
    steps of SGD on batches of 64 digits."""
    from solutions.data import digits

    X, _, y, _ = digits()
    sequence = models.sgd_gradient_sequence(X, y, 8, steps=8, batch_size=64, lr=0.5, rng=np.random.default_rng(40))
    return tuple(grads["b2"] for grads in sequence)


def _steps(shape, steps, seed, scale=1.0, state=None, zero=False, **hyper):
    """Case arguments for over_steps: a random parameter, `steps` random gradients of size `scale` (all 0 with zero),
    and a starting state: {} or, with state = a list of names, those entries as a run in the middle would have them.
    Every other keyword is passed on: the hyper-parameters, and raises="ValueError" where a step must refuse them."""
    def make():
        rng = np.random.default_rng(seed)
        param = rng.normal(size=shape)
        grads = [np.zeros(shape) if zero else rng.normal(scale=scale, size=shape) for _ in range(steps)]
        start = {}
        for name in state or ():
            if name == "step":
                start["step"] = 5
            elif name == "grad_avg":
                start[name] = rng.normal(scale=0.1 * scale, size=shape)
            elif name in ("square_avg", "exp_avg_sq"):
                start[name] = (scale * (0.5 + rng.random(size=shape))) ** 2
            else:
                start[name] = rng.normal(scale=scale, size=shape)
        return {"param": param, "grads": grads, "state": start, **hyper}
    return make


def _digits_steps(state=None, **hyper):
    def make():
        grads = [g.copy() for g in _digits_gradients()]
        return {"param": np.zeros(10), "grads": grads, "state": dict(state or {}), **hyper}
    return make


def _by_hand(**hyper):
    return lambda: {"param": np.array([1.0, -2.0]), "grads": [np.array([0.5, 1.0]), np.array([0.25, -1.0]),
                                                               np.array([-0.5, 0.5])], "state": {}, **hyper}


# ---------------------------------------------------------------- sgd_momentum_step

def _sgd_variant(first="copy", nesterov_buffer="new", decay="gradient", ema=False, keep=True, lr_in_buffer=False,
                 refuses=True, plain_at_zero=True, in_place=False):
    """SGD with one mistake: the first buffer damped, Nesterov with the previous buffer, the decay added to the update,
    dampening 1 − momentum, the buffer not carried over, lr inside the buffer, Nesterov's impossible settings accepted
    (refuses=False), momentum 0 run through the buffer (plain_at_zero=False), or the caller's buffer updated in
    place."""
    def sgd_momentum_step(param, grad, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        if refuses and nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        g = grad + weight_decay * param if decay == "gradient" else grad
        if momentum == 0 and plain_at_zero:
            return param - lr * g, dict(state)
        old = state.get("momentum_buffer")
        damp = (1 - momentum) if ema else (1 - dampening)
        if lr_in_buffer:
            buf = -lr * g if old is None else momentum * old - lr * damp * g
            return param + buf, {"momentum_buffer": buf}
        if old is None or not keep:
            buf = g.copy() if first == "copy" else damp * g
        elif in_place:
            buf = old
            buf *= momentum
            buf += damp * g
        else:
            buf = momentum * old + damp * g
        if nesterov:
            update = g + momentum * (buf if nesterov_buffer == "new" else (old if old is not None else buf))
        else:
            update = buf
        if decay == "update":
            update = update + weight_decay * param
        return param - lr * update, {"momentum_buffer": buf}
    return sgd_momentum_step


def _sgd_inline(param, grad, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    if nesterov and not (momentum > 0 and dampening == 0):
        raise ValueError("Nesterov needs momentum > 0 and dampening 0")
    g = np.add(grad, np.multiply(weight_decay, param))
    new_state = dict(state)
    if momentum != 0:
        if "momentum_buffer" in state and state["momentum_buffer"] is not None:
            b = np.multiply(momentum, state["momentum_buffer"]) + np.multiply(1.0 - dampening, g)
        else:
            b = np.array(g, copy=True)
        new_state["momentum_buffer"] = b
        g = g + momentum * b if nesterov else b
    return np.subtract(param, lr * g), new_state


def _sgd_by_torch(param, grad, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    import torch

    p = torch.tensor(param, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                weight_decay=weight_decay)
    if state.get("momentum_buffer") is not None:
        optimizer.state[p]["momentum_buffer"] = torch.tensor(state["momentum_buffer"], dtype=torch.float64)
    p.grad = torch.tensor(grad, dtype=torch.float64)
    optimizer.step()
    new_state = dict(state)
    if momentum != 0:
        new_state["momentum_buffer"] = optimizer.state[p]["momentum_buffer"].numpy().copy()
    return p.detach().numpy().copy(), new_state


register(Exercise(
    id="ch04.sgd_momentum_step", forbids=OPTIMIZERS, points=2, reference=ref.sgd_momentum_step, call=drivers.over_steps,
    outputs=TRAJECTORY, rtol=1e-9,
    cases=(
        Case("by hand: 3 steps, momentum 0.9", _by_hand(lr=0.1, momentum=0.9)),
        Case("dampening 0.5 and weight decay 0.1, 4 steps", _steps((3,), 4, seed=1, lr=0.1, momentum=0.8,
                                                                    dampening=0.5, weight_decay=0.1)),
        Case("Nesterov, 4 steps on a 2 x 2 parameter", _steps((2, 2), 4, seed=2, lr=0.05, momentum=0.9,
                                                              nesterov=True)),
        Case("from a saved momentum buffer, Nesterov and weight decay", _steps(
            (3,), 2, seed=3, state=["momentum_buffer"], lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.5)),
        Case("momentum left at its default, 0: plain SGD (dampening ignored)", _steps(
            (2,), 2, seed=4, lr=0.1, dampening=0.3, weight_decay=0.2)),
        Case("Nesterov with dampening 0.5: refused with a ValueError, as torch does", _steps(
            (3,), 2, seed=9, lr=0.1, momentum=0.9, dampening=0.5, nesterov=True, raises="ValueError")),
        Case("one step", _steps((4,), 1, seed=5, lr=0.1, momentum=0.9, dampening=0.2), hidden=True),
        Case("Nesterov without momentum: refused with a ValueError", _steps(
            (2,), 1, seed=10, lr=0.1, nesterov=True, raises="ValueError"), hidden=True),
        Case("momentum 0 from a saved buffer: the state comes back as it was", _steps(
            (3,), 2, seed=11, state=["momentum_buffer"], lr=0.1, dampening=0.5, weight_decay=0.1), hidden=True),
        Case("a 2 x 3 x 2 parameter, momentum, dampening and weight decay", _steps(
            (2, 3, 2), 3, seed=12, lr=0.05, momentum=0.8, dampening=0.1, weight_decay=0.01), hidden=True),
        Case("a size-1 parameter, 6 steps", _steps((1,), 6, seed=6, lr=0.3, momentum=0.99), hidden=True),
        Case("zero gradients from a saved buffer", _steps((3,), 3, seed=7, zero=True, state=["momentum_buffer"],
                                                         lr=0.1, momentum=0.9), hidden=True),
        Case("large gradients (1e6)", _steps((5,), 3, seed=8, scale=1e6, lr=1e-7, momentum=0.9, dampening=0.1),
             hidden=True),
        Case("digits: chapter 03's output-bias gradients, 8 steps", _digits_steps(lr=0.5, momentum=0.9,
                                                                                  nesterov=True), hidden=True),
    ),
    mistakes=(
        Mistake("momentum that forgets the previous velocity", "The buffer carries over: b = momentum · b + "
                "(1 − dampening) · g with the b from state, not a fresh one from this step's gradient alone.",
                _sgd_variant(keep=False)),
        Mistake("velocity stored with the learning rate in it", "torch keeps the buffer without lr (b = momentum · b "
                "+ g, then param − lr · b). v = momentum · v − lr · g moves the same way while lr is constant, but "
                "its state is not torch's and it goes wrong when lr changes.", _sgd_variant(lr_in_buffer=True)),
        Mistake("momentum as a moving average", "torch's dampening is its own argument (0 by default): b = momentum · "
                "b + (1 − dampening) · g, not (1 − momentum) · g.", _sgd_variant(ema=True)),
        Mistake("dampening on the first step", "torch's first buffer is the gradient itself, undamped: b = g (a "
                "copy); dampening applies from the second step on.", _sgd_variant(first="damped")),
        Mistake("Nesterov with the previous buffer", "torch's Nesterov step is g + momentum · b with the buffer just "
                "updated on this step.", _sgd_variant(nesterov_buffer="old")),
        Mistake("weight decay added to the update, not the gradient", "torch adds weight_decay · param to the "
                "gradient first, so the decay goes through the momentum buffer.", _sgd_variant(decay="update")),
        Mistake("Nesterov accepted with a dampening", "torch.optim.SGD refuses Nesterov momentum with a dampening or "
                "without a momentum above 0: raise a ValueError for those settings instead of stepping.",
                _sgd_variant(refuses=False)),
        Mistake("momentum 0 run through the buffer", "With momentum = 0 torch keeps no buffer: the step is plain "
                "param − lr · g (dampening plays no part), and the state comes back as it was.",
                _sgd_variant(plain_at_zero=False)),
        Mistake("momentum buffer updated in place", "Return a new buffer: the state passed in is the caller's (a saved "
                "checkpoint, say) and must not change.", _sgd_variant(in_place=True)),
    ),
    alternatives=(_sgd_inline, _sgd_by_torch),
))


# ---------------------------------------------------------------- rmsprop_step

def _rmsprop_variant(square="square", eps_inside=False, swapped=False, centered_rule="a2", in_place=False,
                     divide_by="new", count=True, decay=True):
    """RMSprop with one mistake: the average of g, eps inside the root, alpha on the new term, centered without the
    mean, the caller's average updated in place, the step divided by the average from before this gradient
    (divide_by="old"), no step count in the state, or the weight decay left out."""
    def rmsprop_step(param, grad, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, centered=False):
        step = state.get("step", 0) + 1
        g = grad + weight_decay * param if decay else grad
        new = g * g if square == "square" else g
        old = state.get("square_avg", np.zeros_like(param))
        if in_place and "square_avg" in state:
            old *= alpha
            old += (1 - alpha) * new
            square_avg = old
        else:
            square_avg = ((1 - alpha) * old + alpha * new) if swapped else (alpha * old + (1 - alpha) * new)
        new_state = {"step": step, "square_avg": square_avg} if count else {"square_avg": square_avg}
        variance = square_avg if divide_by == "new" else old
        if centered:
            grad_avg = alpha * state.get("grad_avg", np.zeros_like(param)) + (1 - alpha) * g
            new_state["grad_avg"] = grad_avg
            if centered_rule == "a2":
                variance = square_avg - grad_avg * grad_avg
        with np.errstate(invalid="ignore"):
            avg = np.sqrt(variance + eps) if eps_inside else np.sqrt(variance) + eps
        return param - lr * g / avg, new_state
    return rmsprop_step


def _rmsprop_inline(param, grad, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, centered=False):
    g = grad + weight_decay * param if weight_decay else grad.copy()
    zeros = np.zeros(np.shape(param))
    v = state["square_avg"] if "square_avg" in state else zeros
    v = v + (1 - alpha) * (g ** 2 - v)  # the same average, written as a step towards g²
    out = {"step": state.get("step", 0) + 1, "square_avg": v}
    if centered:
        a = state["grad_avg"] if "grad_avg" in state else zeros
        a = a + (1 - alpha) * (g - a)
        out["grad_avg"] = a
        v = v - a ** 2
    return param - lr * (g / (v ** 0.5 + eps)), out


register(Exercise(
    id="ch04.rmsprop_step", forbids=OPTIMIZERS, points=2, reference=ref.rmsprop_step, call=drivers.over_steps, outputs=TRAJECTORY,
    rtol=1e-9,
    cases=(
        Case("by hand: 3 steps, alpha 0.9", _by_hand(lr=0.1, alpha=0.9)),
        Case("small gradients (1e-5): where eps sits shows", _steps((3,), 3, seed=11, scale=1e-5, lr=0.01,
                                                                     alpha=0.99, eps=1e-8)),
        Case("centered, 4 steps, weight decay 0.1", _steps((2, 2), 4, seed=12, lr=0.01, alpha=0.9, centered=True,
                                                           weight_decay=0.1)),
        Case("from a saved state, centered", _steps((3,), 2, seed=13, state=["step", "square_avg", "grad_avg"],
                                                    lr=0.05, alpha=0.8, centered=True)),
        Case("one step, the defaults", _steps((4,), 1, seed=14), hidden=True),
        Case("a size-1 parameter, 6 steps", _steps((1,), 6, seed=15, lr=0.1, alpha=0.5), hidden=True),
        Case("zero gradients", _steps((3,), 3, seed=16, zero=True, lr=0.1), hidden=True),
        Case("large gradients (1e6)", _steps((5,), 3, seed=17, scale=1e6, lr=0.01, alpha=0.9), hidden=True),
        Case("digits: chapter 03's output-bias gradients, 8 steps", _digits_steps(lr=0.01, alpha=0.9, centered=True),
             hidden=True),
    ),
    mistakes=(
        Mistake("RMSprop with g instead of g²", "The average is of squared gradients, v ← alpha · v + (1 − alpha) · "
                "g²: of g it can go negative, and its square root is NaN.", _rmsprop_variant(square="plain")),
        Mistake("ε inside the square root", "torch divides by √v + eps: eps outside the root. √(v + eps) is a "
                "different, much larger guard when gradients are small.", _rmsprop_variant(eps_inside=True)),
        Mistake("alpha on the wrong term", "alpha is the weight of the old average: v ← alpha · v + (1 − alpha) · g², "
                "so with alpha = 0.99 one step changes v by 1 %.", _rmsprop_variant(swapped=True)),
        Mistake("centered without subtracting the mean gradient", "Centered RMSprop divides by the square root of "
                "the variance estimate: √(v − a²) + eps, with a the running mean of g.",
                _rmsprop_variant(centered_rule="none")),
        Mistake("square average updated in place", "Return new arrays: the state passed in is the caller's (a saved "
                "checkpoint, say) and must not change.", _rmsprop_variant(in_place=True)),
        Mistake("divided by the average from before this step", "Update v with this step's g² first, then divide by "
                "√v + eps: on the first step the old v is 0, and g / eps is an enormous step.",
                _rmsprop_variant(divide_by="old")),
        Mistake("no step count in the state", "torch's RMSprop counts its steps in the state, \"step\": t (1 after "
                "the first), though the update does not use it.", _rmsprop_variant(count=False)),
        Mistake("weight decay ignored", "RMSprop's weight_decay is L2 added to the gradient before the average: "
                "g = grad + weight_decay · param.", _rmsprop_variant(decay=False)),
    ),
    alternatives=(_rmsprop_inline,),
))


# ---------------------------------------------------------------- adam_step

def _adam_variant(correct=True, eps_at="torch", step_from=1, swap_betas=False, in_place=False, decay="l2",
                  saved="moments", count=True):
    """Adam with one mistake: no bias correction, eps somewhere else (eps_at "inside" the root, or "hat": added to
    √v before the correction; "hats": m̂ and v̂ written out, as arrays), the count before this step used as t
    (step_from=0), betas swapped, the moments updated in the caller's state, the weight decay left out
    (decay=None) or decoupled as in AdamW ("decoupled"), m̂ and v̂ saved in place of m and v (saved="hats"), or
    no step count in the state. decay="l2 if set" is no mistake but another spelling of the L2 decay, added only
    when weight_decay ≠ 0 (as torch writes it): after a NaN parameter it keeps the moments finite, where
    0 · NaN in g would make them NaN."""
    def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        beta1, beta2 = (betas[1], betas[0]) if swap_betas else betas
        t = state.get("step", 0) + step_from
        g = grad + weight_decay * param if decay == "l2" or (decay == "l2 if set" and weight_decay) else grad
        if decay == "decoupled":
            param = param * (1 - lr * weight_decay)
        m, v = state.get("exp_avg", np.zeros_like(param)), state.get("exp_avg_sq", np.zeros_like(param))
        if in_place and "exp_avg" in state:
            m *= beta1
            m += (1 - beta1) * g
            v *= beta2
            v += (1 - beta2) * g * g
        else:
            m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
        bc1, bc2 = (1 - beta1 ** t, 1 - beta2 ** t) if correct else (1.0, 1.0)
        if eps_at == "torch":
            update = (lr / bc1) * m / (np.sqrt(v) / math.sqrt(bc2) + eps)
        elif eps_at == "inside":
            update = (lr / bc1) * m / np.sqrt(v / bc2 + eps)
        elif eps_at == "hats":
            with np.errstate(divide="ignore", invalid="ignore"):
                m_hat, v_hat = m / bc1, v / bc2  # at t = 0: m / 0 is inf, and inf / inf NaN
                update = lr * m_hat / (np.sqrt(v_hat) + eps)
        else:
            update = lr * math.sqrt(bc2) / bc1 * m / (np.sqrt(v) + eps)
        kept = {"exp_avg": m, "exp_avg_sq": v} if saved == "moments" else {"exp_avg": m / bc1, "exp_avg_sq": v / bc2}
        return param - update, {"step": state.get("step", 0) + 1, **kept} if count else kept
    return adam_step


def _adam_paper(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Algorithm 1 of Kingma and Ba, with torch's eps and L2 decay: m̂ and v̂ written out."""
    b1, b2 = betas
    t = state["step"] + 1 if "step" in state else 1
    g = grad + weight_decay * param
    m = b1 * state["exp_avg"] + (1 - b1) * g if "exp_avg" in state else (1 - b1) * g
    v = b2 * state["exp_avg_sq"] + (1 - b2) * np.square(g) if "exp_avg_sq" in state else (1 - b2) * np.square(g)
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    return param - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": t, "exp_avg": m, "exp_avg_sq": v}


def _adam_by_torch(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    import torch

    p = torch.tensor(param, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=False)
    if state:
        optimizer.state[p].update({"step": torch.tensor(float(state["step"]), dtype=torch.float64),
                                   "exp_avg": torch.tensor(state["exp_avg"], dtype=torch.float64),
                                   "exp_avg_sq": torch.tensor(state["exp_avg_sq"], dtype=torch.float64)})
    p.grad = torch.tensor(grad, dtype=torch.float64)
    optimizer.step()
    found = optimizer.state[p]
    return p.detach().numpy().copy(), {"step": int(found["step"].item()), "exp_avg": found["exp_avg"].numpy().copy(),
                                       "exp_avg_sq": found["exp_avg_sq"].numpy().copy()}


# One hint for the spellings of one mistake: a mistake's name keys its stored outputs, so each spelling has a name.
_STEP_FROM_0_ON_ARRAYS = ("The first step is t = 1: add 1 to the saved count before the bias correction. At t = 0, "
                          "1 − β₁⁰ = 0: numpy's m / 0 is inf, v / 0 too, and inf / inf is NaN, which every later "
                          "step keeps.")

register(Exercise(
    id="ch04.adam_step", forbids=OPTIMIZERS, points=3, reference=ref.adam_step, call=drivers.over_steps, outputs=TRAJECTORY, rtol=1e-9,
    cases=(
        Case("step 1, where bias correction matters most", _steps((3,), 1, seed=21, lr=0.1, betas=(0.9, 0.999))),
        Case("small gradients (1e-5), 3 steps: where eps sits shows", _steps((3,), 3, seed=22, scale=1e-5, lr=0.01,
                                                                               betas=(0.9, 0.999), eps=1e-8)),
        Case("from a saved state (step 5), weight decay 0.1", _steps(
            (2, 2), 2, seed=23, state=["step", "exp_avg", "exp_avg_sq"], lr=0.01, betas=(0.8, 0.99),
            weight_decay=0.1)),
        Case("by hand: 3 steps, betas (0.5, 0.9)", _by_hand(lr=0.1, betas=(0.5, 0.9))),
        Case("one step, the defaults", _steps((4,), 1, seed=24), hidden=True),
        Case("a size-1 parameter, 6 steps", _steps((1,), 6, seed=25, lr=0.1, betas=(0.9, 0.99)), hidden=True),
        Case("zero gradients from a saved state", _steps((3,), 3, seed=26, zero=True,
                                                         state=["step", "exp_avg", "exp_avg_sq"], lr=0.1),
             hidden=True),
        Case("large gradients (1e6)", _steps((5,), 3, seed=27, scale=1e6, lr=0.01), hidden=True),
        Case("digits: chapter 03's output-bias gradients, 8 steps", _digits_steps(lr=0.05, betas=(0.9, 0.99)),
             hidden=True),
        Case("a 2 x 3 x 2 parameter, betas (0, 0.99), weight decay 0.01", _steps(
            (2, 3, 2), 3, seed=28, lr=0.01, betas=(0.0, 0.99), weight_decay=0.01), hidden=True),
    ),
    mistakes=(
        Mistake("Adam without bias correction", "m and v start at 0, so early on they are far too small: divide by "
                "1 − β₁ᵗ and 1 − β₂ᵗ (m̂ = m / (1 − β₁ᵗ), v̂ = v / (1 − β₂ᵗ)); at step 1 that is the whole "
                "difference.", _adam_variant(correct=False)),
        Mistake("ε inside the square root", "torch divides by √v̂ + eps: eps outside the root. √(v̂ + eps) is a "
                "different, much larger guard when gradients are small.", _adam_variant(eps_at="inside")),
        Mistake("step counter starting at 0", "The first step is t = 1: add 1 to the saved count before the bias "
                "correction (at t = 0, 1 − β₁⁰ = 0 and the step divides by zero).", _adam_variant(step_from=0)),
        Mistake("step counter starting at 0, m̂ = m / (1 − β₁ᵗ) on arrays", _STEP_FROM_0_ON_ARRAYS,
                _adam_variant(step_from=0, eps_at="hats")),
        Mistake("step counter starting at 0, m̂ = m / (1 − β₁ᵗ) on arrays, weight decay added only when set",
                _STEP_FROM_0_ON_ARRAYS, _adam_variant(step_from=0, eps_at="hats", decay="l2 if set")),
        Mistake("bias-corrected moments saved in the state", "The state keeps m and v as they are (exp_avg and "
                "exp_avg_sq); m̂ and v̂ are computed for this step's update only. Saved, the correction is applied "
                "again on every later step.", _adam_variant(saved="hats")),
        Mistake("no step count in the state", "Save the step count, \"step\": t, in the new state: without it every "
                "call is step 1, and the bias correction never fades.", _adam_variant(count=False)),
        Mistake("Adam's weight decay decoupled, as in AdamW", "Adam's weight_decay is L2: g = grad + weight_decay · "
                "param, which goes through m and v. Shrinking the parameter directly is AdamW.",
                _adam_variant(decay="decoupled")),
        Mistake("eps added before the bias correction of v (the paper's faster form)", "torch adds eps to "
                "√v / √(1 − β₂ᵗ), the bias-corrected root, not to √v as the paper's ε̂ form and TensorFlow do.",
                _adam_variant(eps_at="hat")),
        Mistake("β₁ and β₂ swapped", "betas = (β₁, β₂): β₁ (0.9) averages the gradients, β₂ (0.999) their squares.",
                _adam_variant(swap_betas=True)),
        Mistake("weight decay ignored", "Adam's weight_decay is L2 added to the gradient before the moments: "
                "g = grad + weight_decay · param.", _adam_variant(decay=None)),
        Mistake("moments updated in place", "Return new arrays: the state passed in is the caller's (a saved "
                "checkpoint, say) and must not change.", _adam_variant(in_place=True)),
    ),
    alternatives=(_adam_paper, _adam_by_torch),
))


# ---------------------------------------------------------------- adamw_step

def _adamw_variant(kind):
    def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if kind == "l2":
            return ref.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        if kind == "no_lr":
            return ref.adam_step(param * (1 - weight_decay), grad, state, lr=lr, betas=betas, eps=eps)
        if kind == "none":
            return ref.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps)
        if kind == "twice":
            return ref.adam_step(param * (1 - lr * weight_decay), grad, state, lr=lr, betas=betas, eps=eps,
                                 weight_decay=weight_decay)
        new_param, new_state = ref.adam_step(param, grad, state, lr=lr, betas=betas, eps=eps)
        return new_param * (1 - lr * weight_decay), new_state  # "after"
    return adamw_step


def _adamw_inline(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    b1, b2 = betas
    t = state.get("step", 0) + 1
    m = b1 * state.get("exp_avg", 0.0) + (1 - b1) * grad
    v = b2 * state.get("exp_avg_sq", 0.0) + (1 - b2) * grad * grad
    m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
    decayed = param - lr * weight_decay * param
    return decayed - lr * m_hat / (np.sqrt(v_hat) + eps), {"step": t, "exp_avg": m, "exp_avg_sq": v}


register(Exercise(
    id="ch04.adamw_step", forbids=OPTIMIZERS, points=2, reference=ref.adamw_step, call=drivers.over_steps, outputs=TRAJECTORY,
    rtol=1e-9, uses=("adam_step",),
    cases=(
        Case("3 steps, lr 0.1, weight decay 0.5", _steps((3,), 3, seed=31, lr=0.1, weight_decay=0.5)),
        Case("step 1, lr 0.01, weight decay 2", _steps((2, 2), 1, seed=32, lr=0.01, weight_decay=2.0)),
        Case("from a saved state, weight decay 0.1", _steps((3,), 2, seed=33, state=["step", "exp_avg", "exp_avg_sq"],
                                                            lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
        Case("one step, the defaults", _steps((4,), 1, seed=34), hidden=True),
        Case("a size-1 parameter, 6 steps", _steps((1,), 6, seed=35, lr=0.1, weight_decay=0.3), hidden=True),
        Case("zero gradients: only the decay moves", _steps((3,), 3, seed=36, zero=True, lr=0.1, weight_decay=0.5),
             hidden=True),
        Case("large gradients (1e6)", _steps((5,), 3, seed=37, scale=1e6, lr=0.01, weight_decay=0.1), hidden=True),
        Case("digits: chapter 03's output-bias gradients, 8 steps", _digits_steps(lr=0.05, weight_decay=0.1),
             hidden=True),
    ),
    mistakes=(
        Mistake("AdamW that adds the decay to the gradient (Adam + L2)", "That is Adam's weight_decay: the decay goes "
                "through m and v and is divided by √v̂. AdamW decays the weights directly: param · (1 − lr · "
                "weight_decay), then an Adam step without decay.", _adamw_variant("l2")),
        Mistake("decay without the learning rate", "The decay is scaled by lr like every other change: param · "
                "(1 − lr · weight_decay), not param · (1 − weight_decay).", _adamw_variant("no_lr")),
        Mistake("decay applied after the Adam step", "torch decays the parameter first, then takes the Adam step "
                "from the decayed value.", _adamw_variant("after")),
        Mistake("no weight decay at all", "AdamW's difference from Adam is its decay: param ← param · (1 − lr · "
                "weight_decay) before the step.", _adamw_variant("none")),
        Mistake("the decay applied twice, decoupled and as L2", "After the decoupled decay the Adam step takes no "
                "weight decay of its own: call it with weight_decay = 0, or the decay also enters the gradient.",
                _adamw_variant("twice")),
    ),
    alternatives=(_adamw_inline,),
))


# ---------------------------------------------------------------- clip_grad_norm

def _grads(*shapes, seed, scale=1.0, max_norm=1.0):
    def make():
        rng = np.random.default_rng(seed)
        return {"grads": [rng.normal(scale=scale, size=shape) for shape in shapes], "max_norm": max_norm}
    return make


def _at_max_norm():
    return {"grads": [np.array([3e-4, 0.0]), np.array([[4e-4]])], "max_norm": 5e-4}


def _just_below_max_norm():
    """A total norm of 1 − 1e-7 under max_norm 1: torch's factor 1 / (1 − 1e-7 + 1e-6) is still below 1."""
    return {"grads": [np.array([0.6, 0.0]) * (1 - 1e-7), np.array([[0.8]]) * (1 - 1e-7)], "max_norm": 1.0}


def _clip_variant(kind):
    def clip_grad_norm(grads, max_norm):
        norms = [float(np.sqrt(np.sum(g * g))) for g in grads]
        if kind == "each":
            return [g * min(max_norm / (n + 1e-6), 1.0) for g, n in zip(grads, norms)], float(math.sqrt(sum(
                n * n for n in norms)))
        if kind == "concatenate":
            flat = np.concatenate([g.ravel() for g in grads])  # raises on an empty list
            norms = [float(np.sqrt(np.sum(flat * flat)))]
        total = sum(norms) if kind == "sum" else math.sqrt(sum(n * n for n in norms))
        if kind == "in_place":
            coef = min(max_norm / (total + 1e-6), 1.0)
            for g in grads:
                g *= coef
            return grads, total
        if kind == "strict":
            coef = max_norm / total if total > max_norm else 1.0
        elif kind == "no_min":
            coef = max_norm / (total + 1e-6)
        else:
            coef = min(max_norm / (total + 1e-6), 1.0)
        clipped = [g * coef for g in grads]
        if kind == "after":
            total = min(total, max_norm)
        elif kind == "recomputed":
            total = math.sqrt(sum(float(np.sum(c * c)) for c in clipped))
        return clipped, total
    return clip_grad_norm


def _clip_flat(grads, max_norm):
    flat = np.concatenate([np.ravel(g) for g in grads]) if grads else np.zeros(0)
    total = float(np.linalg.norm(flat))
    coef = np.clip(max_norm / (total + 1e-6), None, 1.0)
    return [np.multiply(g, coef) for g in grads], total


# One hint for two spellings: min(total, max_norm), and the norm computed again from the clipped gradients.
_NORM_BEFORE_CLIPPING = ("Return the total norm before clipping, as torch does: it is what you log to see how large "
                         "the gradients were.")

register(Exercise(
    id="ch04.clip_grad_norm", forbids=CLIPPING, points=2, reference=ref.clip_grad_norm, outputs=("clipped gradients", "total norm"),
    rtol=1e-12,
    cases=(
        Case("two gradients, total 5, max_norm 1", lambda: {"grads": [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])],
                                                            "max_norm": 1.0}),
        Case("three arrays of different shapes, clipped", _grads((4, 3), (3,), (2, 2), seed=41, max_norm=0.5)),
        Case("below max_norm: left as they are", _grads((3,), (2,), seed=42, scale=0.01, max_norm=1.0)),
        Case("a total norm exactly at max_norm (5e-4)", _at_max_norm),
        Case("a total norm just below max_norm (1 − 1e-7): still scaled by a hair", _just_below_max_norm),
        Case("an empty list: nothing to clip, total 0", lambda: {"grads": [], "max_norm": 1.0}),
        Case("a size-1 gradient", lambda: {"grads": [np.array([-7.0])], "max_norm": 2.0}, hidden=True),
        Case("a 0-d and a 2 x 2 x 3 gradient", lambda: {"grads": [np.array(-2.5), np.arange(12.0).reshape(2, 2, 3)],
                                                      "max_norm": 3.0}, hidden=True),
        Case("zero gradients", lambda: {"grads": [np.zeros(3), np.zeros((2, 2))], "max_norm": 1.0}, hidden=True),
        Case("large gradients (1e6)", _grads((5,), (3, 2), seed=43, scale=1e6, max_norm=10.0), hidden=True),
        Case("digits: chapter 03's output-bias gradients", lambda: {"grads": [g.copy() for g in _digits_gradients()],
                                                                    "max_norm": 0.1}, hidden=True),
    ),
    mistakes=(
        Mistake("each gradient clipped on its own", "The norm is global: one total over all the gradients, "
                "√(Σ‖gᵢ‖²), and one factor for all of them, so their directions relative to each other stay.",
                _clip_variant("each")),
        Mistake("small gradients scaled up", "Clipping only shrinks: the factor is min(max_norm / (total + 1e-6), "
                "1).", _clip_variant("no_min")),
        Mistake("the norms added instead of squared and summed", "The total is the 2-norm of all the entries as "
                "one vector: √(Σ‖gᵢ‖²), not Σ‖gᵢ‖.", _clip_variant("sum")),
        Mistake("clipped only above max_norm, without torch's 1e-6", "torch multiplies by min(max_norm / (total + "
                "1e-6), 1) every time, so at total = max_norm the factor is just under 1.", _clip_variant("strict")),
        Mistake("the norm returned after clipping", _NORM_BEFORE_CLIPPING, _clip_variant("after")),
        Mistake("the clipped gradients' norm returned", _NORM_BEFORE_CLIPPING, _clip_variant("recomputed")),
        Mistake("gradients scaled in place", "Return new arrays; the caller's gradients must not change (torch's "
                "clip_grad_norm_ changes p.grad in place, which is why its name ends in _).", _clip_variant("in_place")),
        Mistake("an empty list refused", "An empty list has a total norm of 0 and nothing to clip: return [] and 0.0 "
                "(np.concatenate of no arrays raises).", _clip_variant("concatenate")),
    ),
    alternatives=(_clip_flat,),
))
