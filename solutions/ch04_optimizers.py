"""Chapter 04: optimizers. SGD with momentum, RMSprop, Adam and AdamW as pure update steps on numpy arrays, global-norm
gradient clipping, and an `Optimizer` class with torch.optim's interface built on those steps.

Every step function takes a parameter array, its gradient and the optimizer's state for that parameter (a dict, empty
before the first step, with torch.optim's names for its entries), and returns the new parameter and the new state; it
changes none of its inputs. The formulas are torch.optim's, written out in the docstrings, so that the same
hyper-parameters give the same numbers as torch (to rounding) on the same gradients.
"""
import copy
import math

import numpy as np


def sgd_momentum_step(param, grad, state, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    """One step of SGD with momentum, as torch.optim.SGD defines it.

    g = grad + weight_decay · param
    b = g on the first step (no buffer in state yet), else b = momentum · b + (1 − dampening) · g
    param ← param − lr · (g + momentum · b) with nesterov, else param − lr · b
    With momentum = 0 there is no buffer: param ← param − lr · g, and the state stays as it was.
    Nesterov needs a momentum above 0 and no dampening: raise a ValueError otherwise, as torch.optim.SGD does.
    param, grad: arrays of one shape; state: {} or {"momentum_buffer": b}
    ->  (new param, new state {"momentum_buffer": b})
    """
    ### BEGIN SOLUTION
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError("Nesterov momentum requires a momentum and zero dampening")
    grad = grad + weight_decay * param
    if momentum == 0:
        return param - lr * grad, dict(state)
    buf = state.get("momentum_buffer")
    buf = grad.copy() if buf is None else momentum * buf + (1 - dampening) * grad
    update = grad + momentum * buf if nesterov else buf
    return param - lr * update, {**state, "momentum_buffer": buf}
    ### END SOLUTION


def rmsprop_step(param, grad, state, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, centered=False):
    """One step of RMSprop (without momentum), as torch.optim.RMSprop defines it.

    t ← t + 1;  g = grad + weight_decay · param
    v ← alpha · v + (1 − alpha) · g²                      (square_avg, from 0)
    centered: a ← alpha · a + (1 − alpha) · g (grad_avg, from 0), and d = √(v − a²) + eps; otherwise d = √v + eps
    param ← param − lr · g / d
    param, grad: arrays of one shape; state: {} or {"step": t, "square_avg": v} (and "grad_avg": a when centered)
    ->  (new param, new state)
    """
    ### BEGIN SOLUTION
    step = state.get("step", 0) + 1
    grad = grad + weight_decay * param
    square_avg = alpha * state.get("square_avg", np.zeros_like(param)) + (1 - alpha) * grad * grad
    new_state = {"step": step, "square_avg": square_avg}
    if centered:
        grad_avg = alpha * state.get("grad_avg", np.zeros_like(param)) + (1 - alpha) * grad
        new_state["grad_avg"] = grad_avg
        avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        avg = np.sqrt(square_avg) + eps
    return param - lr * grad / avg, new_state
    ### END SOLUTION


def adam_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """One step of Adam with bias correction, as torch.optim.Adam defines it.

    t ← t + 1 (the first step is t = 1);  g = grad + weight_decay · param (L2, added to the gradient)
    m ← β₁ · m + (1 − β₁) · g,   v ← β₂ · v + (1 − β₂) · g²      (exp_avg and exp_avg_sq, from 0)
    m̂ = m / (1 − β₁ᵗ),   v̂ = v / (1 − β₂ᵗ)
    param ← param − lr · m̂ / (√v̂ + eps)                          (eps outside the square root)
    param, grad: arrays of one shape; state: {} or {"step": t, "exp_avg": m, "exp_avg_sq": v}
    ->  (new param, new state)
    """
    ### BEGIN SOLUTION
    beta1, beta2 = betas
    step = state.get("step", 0) + 1
    grad = grad + weight_decay * param
    exp_avg = beta1 * state.get("exp_avg", np.zeros_like(param)) + (1 - beta1) * grad
    exp_avg_sq = beta2 * state.get("exp_avg_sq", np.zeros_like(param)) + (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    denom = np.sqrt(exp_avg_sq) / math.sqrt(bias_correction2) + eps
    new_param = param - (lr / bias_correction1) * exp_avg / denom
    return new_param, {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
    ### END SOLUTION


def adamw_step(param, grad, state, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
    """One step of AdamW, as torch.optim.AdamW defines it: decoupled weight decay, then Adam's step.

    param ← param · (1 − lr · weight_decay)            (the decay, scaled by the learning rate, not in the gradient)
    then adam_step on that param with the same grad and weight_decay = 0.
    param, grad: arrays of one shape; state: {} or {"step": t, "exp_avg": m, "exp_avg_sq": v}
    ->  (new param, new state)
    """
    ### BEGIN SOLUTION
    return adam_step(param * (1 - lr * weight_decay), grad, state, lr=lr, betas=betas, eps=eps)
    ### END SOLUTION


def clip_grad_norm(grads, max_norm):
    """Global-norm clipping, as torch.nn.utils.clip_grad_norm_ (norm_type 2) does it, without changing the inputs.

    total = ‖(‖g₁‖₂, ‖g₂‖₂, …)‖₂, the 2-norm of all the gradients as one vector (0 for an empty list);
    every gradient is multiplied by min(max_norm / (total + 1e-6), 1) — also when total is at or just below
    max_norm, where the factor is a hair under 1, as in torch.
    grads: list of arrays (any shapes); max_norm: float  ->  (list of clipped arrays, total: float)
    """
    ### BEGIN SOLUTION
    norms = [np.sqrt(np.sum(g * g)) for g in grads]
    total = float(np.sqrt(np.sum(np.square(norms))))
    coef = min(max_norm / (total + 1e-6), 1.0)
    return [g * coef for g in grads], total
    ### END SOLUTION


STEP_FUNCTIONS = {"sgd": sgd_momentum_step, "rmsprop": rmsprop_step, "adam": adam_step, "adamw": adamw_step}


class Optimizer:
    """torch.optim's interface over the step functions above, for numpy parameter arrays that it updates in place.

    Optimizer(params, algorithm="adam", **defaults): params is a list of arrays (one group) or a list of groups
    {"params": [arrays], "lr": ...}, each key a group leaves out taken from defaults (the step function's keyword
    arguments: lr, momentum, betas, weight_decay, ...). numpy arrays carry no .grad, so the optimizer keeps one
    gradient buffer per parameter, `grads`, in the order the groups list the parameters:
    zero_grad() empties them (None, as torch's zero_grad() sets p.grad to None by default); accumulate(grads) adds
    gradients to them (what loss.backward() does to p.grad in torch), a None in the list standing for a parameter the
    loss did not reach; step() updates every parameter that has a gradient, in place, and skips one whose buffer is
    None, as torch skips a p.grad of None: its state, momentum and weight decay do not move it. state_dict() /
    load_state_dict() save and restore the hyper-parameters of every group and the state of every parameter (by its
    index, as torch does), as deep copies.
    """

    def __init__(self, params, algorithm="adam", **defaults):
        if algorithm not in STEP_FUNCTIONS:
            raise ValueError(f"algorithm must be one of {sorted(STEP_FUNCTIONS)}, not {algorithm!r}")
        self.algorithm, self.defaults = algorithm, dict(defaults)
        groups = list(params)
        if groups and not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.param_groups = [{**self.defaults, **group, "params": list(group["params"])} for group in groups]
        self.params = [p for group in self.param_groups for p in group["params"]]
        self.state = {index: {} for index in range(len(self.params))}
        self.grads = [None] * len(self.params)

    def zero_grad(self):
        self.grads = [None] * len(self.params)

    def accumulate(self, grads):
        grads = list(grads)
        if len(grads) != len(self.params):
            raise ValueError(f"{len(grads)} gradients for {len(self.params)} parameters")
        self.grads = [mine if g is None else g.copy() if mine is None else mine + g
                      for mine, g in zip(self.grads, grads)]

    def step(self):
        step_fn, index = STEP_FUNCTIONS[self.algorithm], 0
        for group in self.param_groups:
            hyper = {name: value for name, value in group.items() if name != "params"}
            for p in group["params"]:
                if self.grads[index] is not None:
                    new_p, self.state[index] = step_fn(p, self.grads[index], self.state[index], **hyper)
                    p[...] = new_p  # in place: these are the network's own arrays
                index += 1

    def state_dict(self):
        groups, index = [], 0
        for group in self.param_groups:
            count = len(group["params"])
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": list(range(index, index + count))})
            index += count
        return {"algorithm": self.algorithm, "state": copy.deepcopy(self.state), "param_groups": copy.deepcopy(groups)}

    def load_state_dict(self, state_dict):
        if state_dict["algorithm"] != self.algorithm:
            raise ValueError(f"a state of {state_dict['algorithm']} cannot be loaded into {self.algorithm}")
        saved = state_dict["param_groups"]
        if [len(g["params"]) for g in saved] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError("the saved parameter groups do not match this optimizer's")
        for group, saved_group in zip(self.param_groups, saved):
            group.update({k: copy.deepcopy(v) for k, v in saved_group.items() if k != "params"})
        self.state = {int(index): copy.deepcopy(value) for index, value in state_dict["state"].items()}
