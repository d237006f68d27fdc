"""Chapter 07 exercises: a 2-D convolution from scratch (against torch's conv2d), evaluation in eval mode without
autograd, and a checkpoint's save and load, judged by what the file holds and by a resumed run's weights.

The checkpoint cases train a small run (autograder/learner/drivers.py, `_resumable_run`) whose every kind of state matters:
AdamW's moments, a OneCycle schedule, dropout (torch's global generator), shuffled batches (a torch.Generator) and
noise added to the inputs (a numpy Generator). They write into a temporary folder (the grading sandbox's scratch).

Where tensors go is judged without a GPU: evaluation runs on a machine with a CUDA GPU simulated on the CPU
(`_on_a_simulated_gpu_machine`), the model on the GPU or on the CPU, the batches on the CPU; a checkpoint is loaded
from a file tagged as a GPU run saves it, on a machine whose torch reports no CUDA (`_as_saved_on_a_gpu`).
"""
import copy
import functools
import os

import numpy as np
import torch
import torch.nn.functional as F

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch07_training_run as ref

# What these exercises ask you to write without (the convolution as im2col and one matrix product, not torch's or SciPy's): see autograder/learner/forbidden.py.
CONVOLUTIONS = ("torch.nn.functional.conv2d", "torch.nn.functional.conv1d", "torch.nn.functional.conv3d",
                "torch.nn.functional.conv_transpose2d", "torch.convolution", "torch._convolution", "torch.nn.modules.conv",
                "torch.ops", "scipy.signal", "scipy.ndimage")


def _tensor(rng, *shape, scale=1.0):
    return torch.from_numpy(rng.normal(scale=scale, size=shape))


# ---------------------------------------------------------------- conv2d

def _conv(n, c_in, c_out, h, w, kh, kw, seed, bias=True, scale=1.0, **options):
    """Case arguments: x (n, c_in, h, w) and weight (c_out, c_in, kh, kw) of normal entries (times scale), a bias
    unless bias=False (then left out, its default None), and the stride / padding given."""
    def make():
        rng = np.random.default_rng(seed)
        args = {"x": _tensor(rng, n, c_in, h, w, scale=scale), "weight": _tensor(rng, c_out, c_in, kh, kw)}
        if bias:
            args["bias"] = _tensor(rng, c_out)
        return {**args, **options}
    return make


def _by_hand():
    x = torch.arange(16, dtype=torch.float64).reshape(1, 1, 4, 4)
    weight = torch.tensor([[[[1.0, 2.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 3.0]]]], dtype=torch.float64)
    return {"x": x, "weight": weight}


@functools.lru_cache(maxsize=1)
def _digit_images():
    from solutions.data import digit_images

    return digit_images()[0][:2, None].copy()


def _digit():
    images = _digit_images()
    rng = np.random.default_rng(70)
    return {"x": torch.from_numpy(images.copy()), "weight": _tensor(rng, 4, 1, 3, 3),
            "bias": _tensor(rng, 4), "padding": 1}


def _whole_numbers(n, c_in, c_out, h, w, kh, kw, seed, **options):
    """Case arguments in float32: x, weight and bias of small whole numbers, so that every product and sum is exact in
    float32 and any order of summation gives the same output."""
    def make():
        rng = np.random.default_rng(seed)
        whole = lambda *shape: torch.from_numpy(rng.integers(-3, 4, size=shape).astype(np.float32))  # noqa: E731
        return {"x": whole(n, c_in, h, w), "weight": whole(c_out, c_in, kh, kw), "bias": whole(c_out), **options}
    return make


def _conv_variant(kind):
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        n, c_in, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        if kind == "flipped":
            weight = weight.flip(2, 3)
        if kind == "float64":
            x, weight, bias = x.double(), weight.double(), None if bias is None else bias.double()
        before, after = (0, 2 * padding) if kind == "one_side" else (padding, padding)
        if kind == "default_dtype":  # zeros of torch's default dtype, float32, whatever x's is
            padded = torch.zeros(n, c_in, h + 2 * padding, w + 2 * padding)
            padded[:, :, padding:padding + h, padding:padding + w] = x
        else:
            padded = F.pad(x, (before, after, before, after))
        step = 1 if kind == "no_stride" else stride
        h_out, w_out = (padded.shape[2] - kh) // step + 1, (padded.shape[3] - kw) // step + 1
        patches = F.unfold(padded, (kh, kw), stride=step)  # (n, c_in · kh · kw, h_out · w_out), channel-major
        if kind == "channels_last":
            flat = weight.permute(0, 2, 3, 1).reshape(c_out, -1)
        else:
            flat = weight.reshape(c_out, -1)
        out = (flat @ patches).reshape(n, c_out, h_out, w_out)
        if bias is not None:
            out = out + bias.view(1, -1, 1, 1) * (kh * kw if kind == "bias_each_position" else 1)
        return out
    return conv2d


def _conv_loops(x, weight, bias=None, stride=1, padding=0):
    """Four nested loops over the output, one dot product per entry."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    padded = torch.zeros(n, c_in, h + 2 * padding, w + 2 * padding, dtype=x.dtype)
    padded[:, :, padding:padding + h, padding:padding + w] = x
    h_out, w_out = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, c_out, h_out, w_out, dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            window = padded[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]  # (n, c_in, kh, kw)
            out[:, :, i, j] = window.reshape(n, c_in * kh * kw) @ weight.reshape(c_out, -1).T
    return out if bias is None else out + bias[None, :, None, None]


def _conv_as_strided(x, weight, bias=None, stride=1, padding=0):
    """im2col by as_strided: a (n, c_in, h_out, w_out, kh, kw) view of the padded input, then one einsum."""
    c_out, c_in, kh, kw = weight.shape
    padded = F.pad(x, (padding,) * 4).contiguous()
    n, _, hp, wp = padded.shape
    h_out, w_out = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    s = padded.stride()
    windows = padded.as_strided((n, c_in, h_out, w_out, kh, kw),
                                (s[0], s[1], s[2] * stride, s[3] * stride, s[2], s[3]))
    out = torch.einsum("nchwpq,ocpq->nohw", windows, weight)
    return out + bias.reshape(1, -1, 1, 1) if bias is not None else out


register(Exercise(
    id="ch07.conv2d", forbids=CONVOLUTIONS, points=3, reference=ref.conv2d, rtol=1e-10, atol=1e-12, strict_dtype=True,
    cases=(
        Case("by hand: one 4 x 4 image, an asymmetric 3 x 3 kernel, no bias", _by_hand),
        Case("2 -> 3 channels, padding 1, a bias", _conv(2, 2, 3, 5, 5, 3, 3, seed=71, padding=1)),
        Case("3 -> 4 channels, stride 2, padding 1, a 7 x 6 input", _conv(2, 3, 4, 7, 6, 3, 3, seed=72, stride=2,
                                                                        padding=1)),
        Case("a 2 x 3 kernel, stride 3, no padding", _conv(3, 2, 2, 8, 9, 2, 3, seed=73, stride=3)),
        Case("digits: two 8 x 8 images, 4 filters, padding 1", _digit),
        Case("float32 in, float32 out (whole numbers: every sum exact)", _whole_numbers(2, 2, 3, 5, 6, 3, 3, seed=79,
                                                                                      padding=1)),
        Case("a batch of one, a 1 x 1 kernel, stride 2", _conv(1, 3, 5, 5, 5, 1, 1, seed=74, stride=2), hidden=True),
        Case("a kernel as large as the padded input", _conv(2, 2, 3, 4, 4, 6, 6, seed=75, padding=1), hidden=True),
        Case("an empty batch", _conv(0, 2, 3, 5, 5, 3, 3, seed=76, padding=1), hidden=True),
        Case("large values (1e6)", _conv(2, 3, 2, 6, 6, 3, 3, seed=77, scale=1e6, padding=2), hidden=True),
        Case("stride 3 over a 2 x 2 kernel, padding 2", _conv(2, 4, 3, 7, 8, 2, 2, seed=78, stride=3, padding=2,
                                                             bias=False), hidden=True),
    ),
    mistakes=(
        Mistake("kernel flipped (a true convolution)", "torch's conv2d, like every deep-learning library, computes a "
                "cross-correlation: out[i, j] = Σ x[i + p, j + q] · w[p, q], the kernel not flipped. (A flipped kernel "
                "is the mathematicians' convolution; a network learns either equally well, but its weights differ.)",
                _conv_variant("flipped")),
        Mistake("padding on one side only", "padding = p adds p rows and columns of zeros on every side: top and "
                "bottom, left and right. 2p at the bottom and right gives the same output size, shifted by p.",
                _conv_variant("one_side")),
        Mistake("stride ignored", "With stride s the kernel jumps s pixels between outputs: H_out = (H + 2·padding − "
                "kH) // s + 1, and output (i, j) reads the window that starts at (i·s, j·s).",
                _conv_variant("no_stride")),
        Mistake("weights flattened in another order than the patches", "The sum runs over input channels and kernel "
                "positions together: weight[o, c, p, q] must meet x[c, i·s + p, j·s + q]. A patch laid out channel "
                "first, (c, p, q), needs weight.reshape(C_out, −1) in the same order, not a channels-last one.",
                _conv_variant("channels_last")),
        Mistake("computed in float64 whatever x's dtype", "The output has x's dtype: a float32 network's layer "
                "returns float32. Make new tensors from x (x.new_zeros(...), or dtype=x.dtype) instead of casting "
                "to float64 or naming dtype=torch.float64.", _conv_variant("float64")),
        Mistake("the padded input made in torch's default dtype", "torch.zeros(shape) is float32, torch's default "
                "dtype, whatever x is: with float64 inputs the product with the weights then raises (a float32 and a "
                "float64 operand), or x's values are rounded to float32 on the way in. Make it with x's dtype: "
                "x.new_zeros(shape), torch.zeros(shape, dtype=x.dtype), or F.pad(x, ...).",
                _conv_variant("default_dtype")),
        Mistake("bias added at every kernel position", "The bias is added once per output entry, after the sum over "
                "channels and kernel positions; added inside the loop over (p, q) it counts kH · kW times.",
                _conv_variant("bias_each_position")),
    ),
    alternatives=(_conv_loops, _conv_as_strided),
))


# ---------------------------------------------------------------- evaluate

def _evaluation(training, sizes, seed, inputs=5, hidden=6, classes=3, scale=1.0, device=None):
    """Case arguments: `_evaluation_network` parameters (running statistics away from 0 and 1, so that train mode's
    batch statistics differ) and batches of the given sizes, classes drawn in an order other than their labels';
    with `device` ("cpu" or "cuda"), the model on that device of a machine with a simulated GPU."""
    def make():
        rng = np.random.default_rng(seed)
        params = {"0.weight": _tensor(rng, hidden, inputs), "0.bias": _tensor(rng, hidden),
                  "1.weight": 1 + 0.2 * _tensor(rng, hidden), "1.bias": 0.2 * _tensor(rng, hidden),
                  "1.running_mean": _tensor(rng, hidden), "1.running_var": torch.from_numpy(rng.uniform(0.5, 2, hidden)),
                  "1.num_batches_tracked": torch.tensor(100), "4.weight": _tensor(rng, classes, hidden),
                  "4.bias": _tensor(rng, classes)}
        batches = [(_tensor(rng, size, inputs, scale=scale), torch.from_numpy(rng.permutation(
            np.arange(size) * 7 % classes).astype(np.int64))) for size in sizes]
        return {"params": params, "training": training, "batches": batches,
                **({"device": device} if device else {})}
    return make


def _evaluate_variant(kind):
    def evaluate(model, loader):
        was_training = model.training
        if kind == "own_device":
            device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
            model.to(device)
        else:
            device = next(model.parameters()).device
        if kind != "train_mode":
            model.eval()
        losses, sizes, accuracies, hits = [], [], [], []
        with torch.enable_grad() if kind == "grad_on" else torch.no_grad():
            for x, y in loader:
                if kind != "not_moved":
                    x, y = x.to(device), y.to(device)
                scores = model(x)
                if kind == "softmax_first":
                    scores = scores.softmax(dim=1)
                losses.append(F.cross_entropy(scores, y).item())
                sizes.append(len(y))
                hits.append((scores.argmax(dim=1) == y).sum().item())
                accuracies.append((scores.argmax(dim=1) == y).float().mean().item())  # the usual idiom, float32
        if kind == "always_train":
            model.train()
        elif kind != "not_restored":
            model.train(was_training)
        count = sum(sizes)
        per_batch = kind in ("batch_means", "both_batch_means", "both_batch_fractions", "both_batch_means_in_float32")
        loss = np.mean(losses) if per_batch else float(np.dot(losses, sizes) / count)
        if kind == "both_batch_means":
            accuracy = np.mean(accuracies)
        elif kind == "both_batch_fractions":  # each batch's accuracy counted exactly, hits / size
            accuracy = np.mean(np.divide(hits, sizes))
        elif kind == "both_batch_means_in_float32":  # total += (...).float().mean(), then total / number of batches
            accuracy = np.cumsum(np.float32(accuracies))[-1] / np.float32(len(accuracies))
        else:
            accuracy = sum(hits) / count
        return float(loss), float(accuracy)
    return evaluate


def _evaluate_at_once(model, loader):
    """All scores first, in inference mode, then one loss; the mode restored in a finally."""
    was_training = model.training
    model.eval()
    to = functools.partial(torch.Tensor.to, device=next(model.parameters()).device, non_blocking=True)
    try:
        with torch.inference_mode():
            scores, labels = zip(*[(model(to(x)), to(y)) for x, y in loader])
            scores, labels = torch.cat(scores), torch.cat(labels)
            return F.cross_entropy(scores, labels).item(), (scores.argmax(1) == labels).double().mean().item()
    finally:
        model.train(was_training)


def _evaluate_with_decorator(model, loader):
    @torch.no_grad()
    def run():
        losses, hits, count = [], [], 0
        for batch in loader:
            x, y = (t.to(model[0].weight.device) for t in batch)
            scores = model(x)
            losses.append(F.cross_entropy(scores, y, reduction="none"))
            hits.append(scores.argmax(dim=1).eq(y))
            count += y.numel()
        return float(torch.cat(losses).sum()) / count, float(torch.cat(hits).sum()) / count

    mode = model.training
    model.train(False)
    result = run()
    model.train(mode)
    return result


# One hint for three spellings: each batch's accuracy as .float().mean() (float32) averaged in float64 or summed in a
# float32 tensor, or as hits / size (float64). A mistake's name keys its stored outputs, so each spelling has a name.
_EVERY_EXAMPLE_ONCE = ("Every example counts once, in the accuracy too: with batches of different sizes the mean of "
                       "the batches' accuracies weighs the examples of a small batch more. Count the right "
                       "predictions and divide by the number of examples; sum the losses (reduction='sum') and "
                       "divide by it as well.")

register(Exercise(
    id="ch07.evaluate", points=2, reference=ref.evaluate, call=drivers.evaluated_in_a_mode, rtol=1e-9,
    outputs=("(loss, accuracy)", "model.training afterwards", "autograd on in a forward pass",
             "where the model lies afterwards"),
    cases=(
        Case("a model in train mode, batches of 4, 4 and 1", _evaluation(True, (4, 4, 1), seed=80)),
        Case("a model already in eval mode, batches of 3 and 5", _evaluation(False, (3, 5), seed=81)),
        Case("one batch of 8, train mode, 4 classes", _evaluation(True, (8,), seed=82, classes=4)),
        Case("batches of 1, eval mode", _evaluation(False, (1, 1, 1), seed=83), hidden=True),
        Case("a large last batch, train mode", _evaluation(True, (2, 2, 16), seed=84), hidden=True),
        Case("large inputs (1e3)", _evaluation(True, (5, 3), seed=85, scale=1e3), hidden=True),
        Case("the model on a GPU (simulated), the batches on the CPU", _evaluation(True, (4, 3), seed=86,
                                                                                   device="cuda")),
        Case("the model on the CPU of a machine with a GPU (simulated): it stays there", _evaluation(
            False, (2, 5), seed=87, device="cpu")),
        Case("the model on a GPU (simulated), eval mode, batches of 1 and 6", _evaluation(False, (1, 6), seed=88,
                                                                                        device="cuda"), hidden=True),
    ),
    mistakes=(
        Mistake("evaluated in train mode", "Call model.eval() first: in train mode dropout zeroes random units and "
                "batch norm uses each batch's own statistics (and updates its running ones), so the figures change "
                "from run to run and with the batch size.", _evaluate_variant("train_mode")),
        Mistake("evaluated with gradients on", "Wrap the loop in torch.no_grad() (or torch.inference_mode()): "
                "eval() switches dropout and batch norm, not autograd, which otherwise records every operation, "
                "for nothing, at the cost of memory.", _evaluate_variant("grad_on")),
        Mistake("the model left in eval mode", "Put the model back in the mode it came in, model.train(was_training): "
                "a training loop that evaluates after each epoch would otherwise train on without dropout.",
                _evaluate_variant("not_restored")),
        Mistake("the model switched to train mode afterwards", "Restore the mode it came in, which may be eval: "
                "remember model.training before, and call model.train(that) after.", _evaluate_variant("always_train")),
        Mistake("mean of the batch means", "Every example counts once: with a smaller last batch, the mean of batch "
                "means weighs its examples more. Sum the losses (reduction='sum', or mean · batch size) and divide "
                "by the number of examples.", _evaluate_variant("batch_means")),
        Mistake("loss and accuracy both as means of the batch means", _EVERY_EXAMPLE_ONCE,
                _evaluate_variant("both_batch_means")),
        Mistake("loss and accuracy both as means of the batch means (hits / size per batch)",
                _EVERY_EXAMPLE_ONCE, _evaluate_variant("both_batch_fractions")),
        Mistake("loss and accuracy both as means of the batch means (summed in a float32 tensor)",
                _EVERY_EXAMPLE_ONCE, _evaluate_variant("both_batch_means_in_float32")),
        Mistake("softmax before cross-entropy", "F.cross_entropy takes the network's raw scores (logits) and applies "
                "log-softmax itself; given probabilities it applies a second softmax, which squeezes every loss "
                "towards log(number of classes). Pass model(x) as it is.", _evaluate_variant("softmax_first")),
        Mistake("batches left on the CPU while the model is on the GPU", "Move each batch to the device of the "
                "model's parameters, device = next(model.parameters()).device, then x.to(device) and y.to(device): "
                "a loader yields CPU tensors, and an operation on tensors of two devices raises.",
                _evaluate_variant("not_moved")),
        Mistake("the model moved to a device of your choosing", "Evaluate the model where it is: take the device "
                "from its parameters, next(model.parameters()).device, and move the batches there. Choosing by "
                "torch.cuda.is_available() moves the caller's model to the GPU behind its back.",
                _evaluate_variant("own_device")),
    ),
    alternatives=(_evaluate_at_once, _evaluate_with_decorator),
))


# ---------------------------------------------------------------- save_checkpoint and load_checkpoint

def _run(seed, n=24, inputs=6, hidden=8, classes=3, batch_size=8, before=2, after=2, lr=0.05, noise=0.3):
    """Case arguments of a small run (`drivers._resumable_run`): starting weights, data, and the numpy Generator
    the noise is drawn from."""
    def make():
        rng = np.random.default_rng(seed)
        params = {"0.weight": 0.5 * _tensor(rng, hidden, inputs), "0.bias": 0.1 * _tensor(rng, hidden),
                  "3.weight": 0.5 * _tensor(rng, classes, hidden), "3.bias": 0.1 * _tensor(rng, classes)}
        y = torch.from_numpy(rng.integers(0, classes, size=n))
        X = _tensor(rng, n, inputs) + y[:, None].double()
        return {"params": params, "X": X, "y": y, "batch_size": batch_size, "epochs_before": before,
                "epochs_after": after, "lr": lr, "noise": noise, "seed": seed,
                "rng": np.random.default_rng(seed + 1)}
    return make


RUNS = (
    Case("2 epochs of 3 batches, saved after epoch 1", _run(90)),
    Case("saved after the first epoch (epoch 0), batches of 5", _run(91, n=20, batch_size=5, before=1, after=3)),
    Case("3 epochs, an uneven last batch, lr 0.1", _run(92, n=22, before=3, after=1, lr=0.1), hidden=True),
    Case("a wider network, 4 classes", _run(93, inputs=10, hidden=16, classes=4, before=2, after=2), hidden=True),
)


def _save_variant(kind):
    def save_checkpoint(path, model, optimizer, scheduler, epoch, generator, rng):
        checkpoint = {"model": model if kind == "model_object" else model.state_dict(),
                      "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                      "epoch": epoch + 1 if kind == "next_epoch" else epoch,
                      "torch_rng": torch.get_rng_state(), "loader_rng": generator.get_state(),
                      "numpy_rng": rng.bit_generator.state}
        leave_out = {"no_optimizer": ("optimizer",), "no_scheduler": ("scheduler",),
                     "no_rng": ("torch_rng", "loader_rng", "numpy_rng"),
                     "global_rng_only": ("loader_rng", "numpy_rng")}.get(kind, ())
        torch.save({key: value for key, value in checkpoint.items() if key not in leave_out}, path)
    return save_checkpoint


def _save_atomically(path, model, optimizer, scheduler, epoch, generator, rng):
    """Written to a temporary name, then renamed: a crash while saving never leaves half a checkpoint at `path`."""
    state = {"epoch": int(epoch), "torch_rng": torch.random.get_rng_state(), "loader_rng": generator.get_state(),
             "numpy_rng": copy.deepcopy(rng.bit_generator.state), "scheduler": scheduler.state_dict(),
             "optimizer": optimizer.state_dict(),
             "model": {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}}
    temporary = f"{path}.partial"
    with open(temporary, "wb") as file:
        torch.save(state, file)
    os.replace(temporary, path)


def _save_copied(path, model, optimizer, scheduler, epoch, generator, rng):
    checkpoint = dict(epoch=epoch, model=copy.deepcopy(model.state_dict()),
                      optimizer=copy.deepcopy(optimizer.state_dict()), scheduler=dict(scheduler.state_dict()))
    checkpoint.update(torch_rng=torch.get_rng_state().clone(), loader_rng=generator.get_state().clone(),
                      numpy_rng=dict(rng.bit_generator.state))
    torch.save(checkpoint, path)


register(Exercise(
    id="ch07.save_checkpoint", points=2, reference=ref.save_checkpoint, call=drivers.saved_after_training,
    rtol=0.0, atol=0.0, cases=RUNS,
    mistakes=(
        Mistake("checkpoint without optimizer state", "Save optimizer.state_dict() too: AdamW's moments (exp_avg, "
                "exp_avg_sq) and step count are part of where the run is; a resumed run with fresh moments takes "
                "different steps.", _save_variant("no_optimizer")),
        Mistake("checkpoint without scheduler state", "Save scheduler.state_dict() too: it holds how many steps "
                "the schedule has taken; a fresh schedule restarts the learning rate from its beginning.",
                _save_variant("no_scheduler")),
        Mistake("checkpoint without RNG state", "Save every generator's state: torch.get_rng_state() (dropout), the "
                "loader's generator.get_state() (shuffling) and rng.bit_generator.state (augmentation). Without them "
                "a resumed run draws other masks, batches and shifts, and diverges.", _save_variant("no_rng")),
        Mistake("only torch's global RNG saved", "The data loader's torch.Generator and the numpy Generator are "
                "separate from torch's global generator: save generator.get_state() and rng.bit_generator.state "
                "as well.", _save_variant("global_rng_only")),
        Mistake("the model object saved instead of its state_dict", "Save model.state_dict(): a pickled model needs "
                "its class's code to load, breaks when that code changes, and torch.load refuses it with "
                "weights_only=True (the safe default since torch 2.6).", _save_variant("model_object")),
        Mistake("the next epoch saved instead of the one just finished", "Save `epoch` as it is passed, the epoch "
                "just finished: load_checkpoint adds 1 to it to say where to continue, so saving epoch + 1 skips an "
                "epoch on every resume.", _save_variant("next_epoch")),
    ),
    alternatives=(_save_atomically, _save_copied),
))


# The load driver saves with the checkpoint writer of the namespace the loader was written in: in a notebook the
# learner's (the reference while the check runs, by `uses`), for the loaders below this one, the reference. The
# reference imports torch inside its body because the grading sandbox builds the references an exercise uses in a
# namespace of their own, which holds numpy and math only (autograder/learner/in_sandbox.py, reference_namespace).
save_checkpoint = ref.save_checkpoint


def _load_variant(kind):
    def load_checkpoint(path, model, optimizer, scheduler, generator, rng):
        checkpoint = torch.load(path, weights_only=True, **({} if kind == "no_map_location" else
                                                            {"map_location": "cpu"}))
        model.load_state_dict(checkpoint["model"])
        if kind != "no_optimizer":
            optimizer.load_state_dict(checkpoint["optimizer"])
        if kind != "no_scheduler":
            scheduler.load_state_dict(checkpoint["scheduler"])
        if kind != "no_torch_rng":
            torch.set_rng_state(checkpoint["torch_rng"])
        if kind != "no_loader_rng":
            generator.set_state(checkpoint["loader_rng"])
        if kind != "no_numpy_rng":
            rng.bit_generator.state = checkpoint["numpy_rng"]
        return checkpoint["epoch"] if kind == "same_epoch" else checkpoint["epoch"] + 1
    return load_checkpoint


def _load_on_cpu(path, model, optimizer, scheduler, generator, rng):
    """map_location="cpu": a checkpoint saved on a GPU loads on a machine without one."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    rng.bit_generator.state = dict(state["numpy_rng"])
    generator.set_state(state["loader_rng"].clone())
    torch.random.set_rng_state(state["torch_rng"])
    scheduler.load_state_dict(state["scheduler"])
    optimizer.load_state_dict(state["optimizer"])
    model.load_state_dict(state["model"], strict=True)
    return int(state["epoch"]) + 1


def _load_from_file(path, model, optimizer, scheduler, generator, rng):
    with open(path, "rb") as file:
        saved = torch.load(file, map_location=lambda storage, location: storage, weights_only=True)
    for obj, key in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
        obj.load_state_dict(saved[key])
    torch.set_rng_state(saved["torch_rng"])
    generator.set_state(saved["loader_rng"])
    rng.bit_generator.state = saved["numpy_rng"]
    return saved["epoch"] + 1


register(Exercise(
    id="ch07.load_checkpoint", points=2, reference=ref.load_checkpoint, call=drivers.resumed_from_a_checkpoint,
    outputs=("epoch to continue from", "weights at the end of the run"), rtol=0.0, atol=0.0,
    uses=("save_checkpoint",),
    cases=RUNS + (Case("saved on a GPU (every tensor tagged cuda:0), resumed on a machine without one",
                       lambda: {**_run(94)(), "saved_on": "cuda"}),),
    mistakes=(
        Mistake("optimizer state not restored", "optimizer.load_state_dict(checkpoint['optimizer']): without it "
                "AdamW starts its moments from 0 again, and its first steps after the resume are bias-corrected "
                "±lr steps.", _load_variant("no_optimizer")),
        Mistake("scheduler state not restored", "scheduler.load_state_dict(checkpoint['scheduler']): without it the "
                "schedule starts over (OneCycle warms up again) and every learning rate after the resume differs.",
                _load_variant("no_scheduler")),
        Mistake("torch's global RNG not restored", "torch.set_rng_state(checkpoint['torch_rng']): dropout draws its "
                "masks from torch's global generator, so without it the resumed run drops other units.",
                _load_variant("no_torch_rng")),
        Mistake("the loader's generator not restored", "generator.set_state(checkpoint['loader_rng']): the data "
                "loader shuffles with its own torch.Generator; without its state the batches come in another "
                "order.", _load_variant("no_loader_rng")),
        Mistake("the numpy Generator not restored", "rng.bit_generator.state = checkpoint['numpy_rng'], on the "
                "Generator passed in: the augmentation draws from it, and a new Generator of your own would leave "
                "the caller's where it was.", _load_variant("no_numpy_rng")),
        Mistake("the saved epoch returned (one epoch repeated)", "The checkpoint holds the epoch just finished; "
                "training continues with the next one, so return checkpoint['epoch'] + 1.",
                _load_variant("same_epoch")),
        Mistake("a GPU checkpoint loaded without map_location", "torch.load(path, weights_only=True, "
                "map_location='cpu'): a checkpoint saved on a GPU holds CUDA tensors, which torch.load refuses on a "
                "machine without one; each load_state_dict then copies them to the device of its own object.",
                _load_variant("no_map_location")),
    ),
    alternatives=(_load_on_cpu, _load_from_file),
))
