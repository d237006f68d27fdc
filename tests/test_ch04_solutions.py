"""Chapter 04's references against torch.optim: 200 steps on one gradient sequence from a real loss (chapter 03's
two-layer network trained on digits), float64, and the Optimizer class's save and load continuing bit for bit."""
import functools

import numpy as np
import pytest
import torch

from solutions import ch03_backpropagation as ch03
from solutions import ch04_optimizers as ch04
from solutions import models
from solutions.data import digits


@functools.lru_cache(maxsize=1)
def gradient_sequence():
    """200 steps of chapter 03's two-layer network (64 -> 16 -> 10) on batches of 32 digits, plain SGD at lr 0.1:
    each step's gradients {"W1", "b1", "W2", "b2"}."""
    X, _, y, _ = digits()
    return models.sgd_gradient_sequence(X, y, 16, steps=200, batch_size=32, lr=0.1, rng=np.random.default_rng(0))


CONFIGS = [
    ("sgd", torch.optim.SGD, {"lr": 0.05}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.1, "weight_decay": 1e-3}),
    ("sgd", torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "weight_decay": 1e-3}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-6, "centered": True}),
    ("adam", torch.optim.Adam, {"lr": 0.01}),
    ("adam", torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-3}),
    ("adamw", torch.optim.AdamW, {"lr": 0.01}),
    ("adamw", torch.optim.AdamW, {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.1}),
]


@pytest.mark.parametrize("name, torch_class, hyper", CONFIGS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIGS)])
def test_200_steps_match_torch_optim_to_1e_6_relative(name, torch_class, hyper):
    start = ch03.init_two_layer(64, 16, 10, np.random.default_rng(1))
    ours = {key: value.copy() for key, value in start.items()}
    states = {key: {} for key in start}
    tensors = {key: torch.tensor(value.copy(), requires_grad=True) for key, value in start.items()}
    optimizer = torch_class(list(tensors.values()), **hyper)
    for grads in gradient_sequence():
        for key in ours:
            before = (ours[key].copy(), grads[key].copy())
            ours[key], states[key] = ch04.STEP_FUNCTIONS[name](ours[key], grads[key], states[key], **hyper)
            assert np.array_equal(before[1], grads[key])  # the gradient is not changed
            tensors[key].grad = torch.tensor(grads[key])
        optimizer.step()
        for key in ours:
            np.testing.assert_allclose(ours[key], tensors[key].detach().numpy(), rtol=1e-6, atol=1e-12)
    for key, tensor in tensors.items():  # the state too, under torch's names
        for entry, value in optimizer.state[tensor].items():
            theirs = value.numpy() if value.dim() else value.item()
            np.testing.assert_allclose(states[key][entry], theirs, rtol=1e-6, atol=1e-12)


def torch_clip(grads, max_norm):
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.tensor(g.copy())
    total = torch.nn.utils.clip_grad_norm_(params, max_norm)
    return [p.grad.numpy() for p in params], total.item()


@pytest.mark.parametrize("max_norm", [0.05, 0.5, 1e3])
def test_clipping_matches_clip_grad_norm_on_every_step(max_norm):
    """Equal up to the order in which the sum of squares is added: torch's vectorized reduction and numpy's pairwise
    one round differently in the last bit or two, so the norm agrees to 1e-15 relative, and so do the gradients."""
    clipped_any = False
    for grads in gradient_sequence():
        arrays = list(grads.values())
        theirs, their_total = torch_clip(arrays, max_norm)
        ours, total = ch04.clip_grad_norm(arrays, max_norm)
        assert total == pytest.approx(their_total, rel=1e-15)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-15, atol=0)
        clipped_any |= total > max_norm
    assert clipped_any == (max_norm < 1e3)


def test_clipping_exactly_at_max_norm_scales_by_torchs_factor():
    grads = [np.array([3.0, 0.0]), np.array([[4.0]])]
    theirs, their_total = torch_clip(grads, 5.0)
    ours, total = ch04.clip_grad_norm(grads, 5.0)
    assert total == their_total == 5.0
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs)) and ours[0][0] < 3.0


def train(network, optimizer, X, y, steps, rng):
    losses = []
    for _ in range(steps):
        batch = rng.choice(len(y), 32, replace=False)
        loss, dscores = ch03.softmax_cross_entropy(network.forward(X[batch]), y[batch])
        network.backward(dscores)
        optimizer.zero_grad()
        optimizer.accumulate(network.grads())
        optimizer.step()
        losses.append(loss)
    return losses


def network(seed):
    rng = np.random.default_rng(seed)
    return ch03.Sequential(ch03.Linear.he(64, 32, rng), ch03.ReLU(), ch03.Linear.he(32, 10, rng))


def groups(net, lr):
    first, second = net.layers[0].params(), net.layers[2].params()
    return [{"params": first, "lr": lr}, {"params": second, "lr": lr / 10}]


@pytest.mark.parametrize("algorithm, hyper", [("adamw", {"lr": 0.01, "weight_decay": 0.1}),
                                              ("sgd", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
                                              ("rmsprop", {"lr": 0.01, "centered": True})])
def test_optimizer_save_in_the_middle_and_load_continue_bit_for_bit(algorithm, hyper):
    X, _, y, _ = digits()
    straight = network(3)
    optimizer = ch04.Optimizer(groups(straight, hyper["lr"]), algorithm, **hyper)
    losses = train(straight, optimizer, X, y, 60, np.random.default_rng(7))
    assert np.mean(losses[-10:]) < np.mean(losses[:10])  # it trains

    first = network(3)
    optimizer = ch04.Optimizer(groups(first, hyper["lr"]), algorithm, **hyper)
    rng = np.random.default_rng(7)
    train(first, optimizer, X, y, 30, rng)
    saved_state, saved_params = optimizer.state_dict(), [p.copy() for p in first.params()]
    train(first, optimizer, X, y, 5, np.random.default_rng(99))  # the saved copies must not follow these steps

    resumed = network(4)
    for p, saved in zip(resumed.params(), saved_params):
        p[...] = saved
    fresh = ch04.Optimizer(groups(resumed, 123.0), algorithm, **{**hyper, "lr": 123.0})  # lr comes from the save
    fresh.load_state_dict(saved_state)
    assert [g["lr"] for g in fresh.param_groups] == [hyper["lr"], hyper["lr"] / 10]
    train(resumed, fresh, X, y, 30, rng)
    assert all(np.array_equal(a, b) for a, b in zip(resumed.params(), straight.params()))


def test_optimizer_updates_the_networks_own_arrays_and_skips_parameters_without_gradients():
    net = network(5)
    arrays = net.params()
    optimizer = ch04.Optimizer(arrays, "sgd", lr=0.1)
    before = [p.copy() for p in arrays]
    optimizer.step()  # no gradients given yet: nothing moves, as with p.grad None in torch
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))
    optimizer.zero_grad()
    optimizer.accumulate([np.ones_like(p) for p in arrays])
    optimizer.accumulate([np.ones_like(p) for p in arrays])
    optimizer.step()
    assert all(np.allclose(a, b - 0.2) for a, b in zip(net.params(), before)) and net.params()[0] is arrays[0]
    with pytest.raises(ValueError):
        ch04.Optimizer(arrays, "adagrad")


def test_the_notebook_gives_the_optimizer_class_verbatim_over_the_learners_steps():
    """The Optimizer class is given code in the notebook (a graded class's bundle has no solutions module to import
    it from), word for word the solutions' source, and its STEP_FUNCTIONS names the step functions the learner writes."""
    import inspect

    import nbformat

    from autograder.instructor import notebooks

    notebook = nbformat.read(notebooks.chapter_notebook("ch04"), as_version=4)
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    assert inspect.getsource(ch04.Optimizer).rstrip() in code, "the notebook's Optimizer differs from solutions/"
    steps_line = next(line for line in inspect.getsource(ch04).splitlines() if line.startswith("STEP_FUNCTIONS = "))
    assert steps_line in code
