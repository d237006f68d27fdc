"""Chapter 09 exercises: symmetric int8 quantization and dequantization, global magnitude pruning and SGD that keeps
a pruned weight pruned, the knowledge-distillation loss, a training-memory estimate for an MLP, and DP-SGD's noisy
clipped gradient.

Every case is torch tensors (float64 unless it says otherwise) or plain numbers. DP-SGD's one-example loss and its
torch.Generator are built by the driver `dp_sgd_on_a_model` (autograder/learner/drivers.py) from a model's name and a seed,
so that the case itself stays plain data. A case with "device": "cuda" runs on a GPU simulated on the CPU by the
drivers (`keywords_on_a_device`, `dp_sgd_on_a_model`), where a tensor made on the CPU cannot meet one on the GPU and a
CPU generator cannot draw on the GPU: an answer that ignores its inputs' device fails there.
"""
import numpy as np
import torch
import torch.nn.functional as F

from autograder.learner import drivers
from autograder.learner.registry import Case, Exercise, Mistake, register
from solutions import ch09_deployment as ref

# What these exercises ask you to write without (per-sample clipping and noise by hand): see autograder/learner/forbidden.py.
PRIVACY = ("opacus",)
# What these exercises ask you to write without (the threshold by hand): see autograder/learner/forbidden.py.
PRUNING = ("torch.nn.utils.prune",)
# What these exercises ask you to write without (the scale and the rounding by hand): see autograder/learner/forbidden.py.
QUANTIZERS = ("torch.quantize_per_tensor", "torch.quantize_per_channel", "torch.ao.quantization", "torch.quantization")


def _normal(seed, *shape, scale=1.0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype) * scale


# ---------------------------------------------------------------- quantize_int8

def _halves():
    """Values at exact half steps of a power-of-two scale: where rounding half to even shows."""
    x = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 3.0, 126.5, -126.5], dtype=torch.float64) * 0.25
    return {"x": x, "scale": torch.tensor(0.25, dtype=torch.float64)}


def _with_zero_row():
    x = _normal(3, 4, 5)
    x[2] = 0.0
    return {"x": x, "axis": 0}


def _quantize_variant(kind):
    def quantize_int8(x, axis=None, scale=None):
        if scale is None:
            if axis is None:
                amax = x.abs().amax()
            elif kind == "axis":
                amax = x.abs().reshape(x.shape[0], -1).amax(dim=0)
            else:
                amax = x.abs().reshape(x.shape[0], -1).amax(dim=1)
            levels = {"asymmetric": 128, "over_128": 128, "over_255": 255, "over_255_asymmetric": 255}.get(kind, 127)
            scale = amax / levels if kind == "zero" else torch.where(amax > 0, amax / levels, torch.ones_like(amax))
        if axis is None:
            shaped = scale
        elif kind == "axis" and scale.shape[0] != x.shape[0]:
            shaped = scale.reshape(1, -1)
        else:
            shaped = scale.reshape(-1, *([1] * (x.dim() - 1)))
        scaled = x / shaped
        if kind == "truncate":
            rounded = scaled.trunc()
        elif kind == "half_up":
            rounded = torch.sign(scaled) * torch.floor(scaled.abs() + 0.5)
        else:
            rounded = torch.round(scaled)
        if kind in ("asymmetric", "over_255_asymmetric"):
            rounded = torch.clamp(rounded, -128, 127)
        elif kind != "no_clamp":
            rounded = torch.clamp(rounded, -127, 127)
        return rounded.to(torch.int8), scale.to(x.dtype).clone()
    return quantize_int8


def _quantize_numpy(x, axis=None, scale=None):
    values = x.detach().numpy()
    if scale is None:
        rows = np.abs(values).reshape(len(values), -1).max(axis=1) if axis == 0 else np.abs(values).max()
        scale_np = np.where(rows > 0, rows / 127, 1.0).astype(values.dtype)
    else:
        scale_np = scale.numpy()
    shaped = scale_np.reshape(-1, *([1] * (values.ndim - 1))) if axis == 0 else scale_np
    q = np.clip(np.rint(values / shaped), -127, 127).astype(np.int8)
    return torch.from_numpy(q), torch.from_numpy(np.array(scale_np, dtype=values.dtype))


def _quantize_by_rows(x, axis=None, scale=None):
    if axis is None:
        s = scale if scale is not None else (x.abs().max() / 127 if x.abs().max() > 0 else torch.ones((), dtype=x.dtype))
        return torch.round(x / s).clamp(-127, 127).to(torch.int8), s.to(x.dtype).clone()
    qs, scales = [], []
    for i, row in enumerate(x):
        s = scale[i] if scale is not None else (row.abs().max() / 127 if row.abs().max() > 0 else
                                                torch.ones((), dtype=x.dtype))
        qs.append(torch.round(row / s).clamp(-127, 127).to(torch.int8))
        scales.append(s.to(x.dtype))
    return torch.stack(qs), torch.stack(scales)


register(Exercise(
    id="ch09.quantize_int8", forbids=QUANTIZERS, points=2, reference=ref.quantize_int8, outputs=("q", "scale"), strict_dtype=True,
    cases=(
        Case("per tensor, a 3 x 4 tensor", lambda: {"x": _normal(1, 3, 4)}),
        Case("per output channel, a 4 x 6 weight: one scale per row", lambda: {"x": _normal(2, 4, 6), "axis": 0}),
        Case("halves of a given scale 0.25: round half to even", _halves),
        Case("a given scale 0.01 that clips values beyond ±1.27", lambda: {
            "x": _normal(4, 3, 3), "scale": torch.tensor(0.01, dtype=torch.float64)}),
        Case("per channel, a row of zeros (scale 1)", _with_zero_row),
        Case("per channel, a 3 x 2 x 2 x 2 convolution weight in float32", lambda: {
            "x": _normal(5, 3, 2, 2, 2, dtype=torch.float32), "axis": 0}, hidden=True),
        Case("one entry", lambda: {"x": torch.tensor([[-0.3]], dtype=torch.float64), "axis": 0}, hidden=True),
        Case("per channel with given scales", lambda: {"x": _normal(6, 2, 5), "axis": 0,
                                                       "scale": torch.tensor([0.01, 0.02], dtype=torch.float64)},
             hidden=True),
        Case("large values (1e6), a square 5 x 5 weight per channel", lambda: {"x": _normal(7, 5, 5, scale=1e6),
                                                                              "axis": 0}, hidden=True),
        Case("an all-zero tensor", lambda: {"x": torch.zeros(2, 3, dtype=torch.float64)}, hidden=True),
    ),
    mistakes=(
        Mistake("scale from the wrong axis", "axis=0 means one scale per row (a weight's output channel): the max of "
                "|x[i]| over everything else, x.abs().reshape(n, -1).amax(dim=1), not the max down each column.",
                _quantize_variant("axis")),
        Mistake("the range −128 … 127 with scale max|x| / 128", "This exercise's symmetric int8 leaves −128 unused: "
                "scale = max|x| / 127 and clamp(·, −127, 127), so that q and −q both exist. (Using −128 is another "
                "convention, still symmetric with 0 exactly 0: torch's symmetric observer takes max|x| / 127.5.)",
                _quantize_variant("asymmetric")),
        Mistake("scale max|x| / 128", "The scale maps the largest |x| to the end of this exercise's range, "
                "−127 … 127 (−128 is left unused): with 128 the largest |x| lands on ±128, beyond it, and is "
                "clamped, and every other value on a level a little off.", _quantize_variant("over_128")),
        Mistake("scale max|x| / 255", "The scale maps the largest |x| to the end of the range −127 … 127, not to "
                "255: int8's 255 levels are shared by both signs, so with 255 every |x| of half the largest or more "
                "lands beyond 127 and is clamped.", _quantize_variant("over_255")),
        Mistake("scale max|x| / 255, clamped to −128 … 127", "The scale maps the largest |x| to the end of the "
                "range, 127, not to 255: int8's 255 levels are shared by both signs, so with 255 every |x| of half "
                "the largest or more lands beyond 127 and is clamped. And this exercise leaves −128 unused: clamp to "
                "−127 … 127, so that q and −q both exist.", _quantize_variant("over_255_asymmetric")),
        Mistake("rounding by truncation", ".to(torch.int8) cuts towards zero (2.9 → 2): round first, torch.round(x "
                "/ scale), then convert.", _quantize_variant("truncate")),
        Mistake("no clamp", "With a given scale, x / scale can leave int8's range, and converting 300 to int8 wraps "
                "around: clamp to [−127, 127] before converting.", _quantize_variant("no_clamp")),
        Mistake("half rounded away from zero", "torch.round rounds half to even (2.5 → 2, 1.5 → 2), as the quantized "
                "kernels do; floor(|x| + 0.5) rounds 2.5 to 3.", _quantize_variant("half_up")),
        Mistake("a zero scale for an all-zero row", "Where max|x| is 0 the scale would be 0 and x / 0 is NaN: use "
                "scale 1 there (q is 0 whatever the scale).", _quantize_variant("zero")),
    ),
    alternatives=(_quantize_numpy, _quantize_by_rows),
))


# ---------------------------------------------------------------- dequantize_int8

def _int8(seed, *shape):
    return torch.randint(-127, 128, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.int8)


def _scales(seed, n, dtype=torch.float64):
    return (torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=dtype) + 0.1) / 100


def _dequantize_variant(kind):
    def dequantize_int8(q, scale, axis=None):
        if axis is None:
            shaped = scale
        elif kind == "axis":
            shaped = scale.reshape(*([1] * (q.dim() - 1)), -1)
        else:
            shaped = scale.reshape(-1, *([1] * (q.dim() - 1)))
        values = q.to(scale.dtype)
        if kind == "unsigned":
            values = values + 128
        return values / shaped if kind == "divide" else values * shaped
    return dequantize_int8


def _dequantize_by_rows(q, scale, axis=None):
    if axis is None:
        return q.double().to(scale.dtype) * scale
    return torch.stack([row.to(scale.dtype) * s for row, s in zip(q, scale)])


def _dequantize_einsum(q, scale, axis=None):
    if axis is None:
        return torch.mul(q.to(scale.dtype), scale.item()).to(scale.dtype)
    return torch.einsum("i...,i->i...", q.to(scale.dtype), scale)


register(Exercise(
    id="ch09.dequantize_int8", points=1, reference=ref.dequantize_int8,
    cases=(
        Case("per tensor, scale 0.02", lambda: {"q": _int8(11, 3, 4), "scale": torch.tensor(0.02,
                                                                                         dtype=torch.float64)}),
        Case("per channel, a square 4 x 4 weight", lambda: {"q": _int8(12, 4, 4), "scale": _scales(13, 4),
                                                             "axis": 0}),
        Case("per channel, a 3 x 5 weight", lambda: {"q": _int8(14, 3, 5), "scale": _scales(15, 3), "axis": 0}),
        Case("per channel, a 2 x 3 x 3 convolution weight, float32 scales", lambda: {
            "q": _int8(16, 2, 3, 3), "scale": _scales(17, 2, torch.float32), "axis": 0}, hidden=True),
        Case("the extremes ±127 and 0", lambda: {"q": torch.tensor([[-127, 0, 127]], dtype=torch.int8),
                                                 "scale": torch.tensor([0.5], dtype=torch.float64), "axis": 0},
             hidden=True),
        Case("one entry per tensor", lambda: {"q": torch.tensor([-5], dtype=torch.int8),
                                              "scale": torch.tensor(1.0, dtype=torch.float64)}, hidden=True),
    ),
    mistakes=(
        Mistake("scale along the wrong axis", "With axis=0 scale[i] belongs to row i: reshape it to (n, 1, …) so it "
                "broadcasts down the rows, not (1, …, n) across the columns.", _dequantize_variant("axis")),
        Mistake("divided by the scale", "Quantizing divided by the scale; dequantizing multiplies: x̂ = q · scale.",
                _dequantize_variant("divide")),
        Mistake("a zero point of 128 added", "Symmetric int8 has no zero point: q = 0 stands for 0.0. Adding 128 is "
                "the unsigned (uint8) convention.", _dequantize_variant("unsigned")),
    ),
    alternatives=(_dequantize_by_rows, _dequantize_einsum),
))


# ---------------------------------------------------------------- magnitude_prune

def _layers(seed, *shapes, scales=None, sparsity=0.5):
    def make():
        generator = torch.Generator().manual_seed(seed)
        factors = scales or [1.0] * len(shapes)
        return {"weights": [torch.randn(*shape, generator=generator, dtype=torch.float64) * factor
                            for shape, factor in zip(shapes, factors)], "sparsity": sparsity}
    return make


def _prune_variant(kind):
    def magnitude_prune(weights, sparsity):
        if kind == "per_layer":
            masks = []
            for w in weights:
                k = round(sparsity * w.numel())
                keep = torch.ones(w.numel(), dtype=torch.bool, device=w.device)
                keep[torch.topk(w.reshape(-1).abs(), k, largest=False).indices] = False
                masks.append(keep.reshape(w.shape))
            return masks
        flat = torch.cat([w.reshape(-1) for w in weights])
        score = flat if kind == "value" else flat.abs()
        k = int(sparsity * flat.numel()) if kind == "floor" else round(sparsity * flat.numel())
        keep = torch.ones(flat.numel(), dtype=torch.bool, device=None if kind == "cpu" else flat.device)
        keep[torch.topk(score, k, largest=kind == "largest").indices] = False
        return list(torch.split(keep, [w.numel() for w in weights])) if kind == "flat" else \
            [part.reshape(w.shape) for part, w in zip(torch.split(keep, [w.numel() for w in weights]), weights)]
    return magnitude_prune


def _prune_by_torch(weights, sparsity):
    import torch.nn.utils.prune as prune

    holders = []
    for w in weights:
        holder = torch.nn.Module()
        holder.weight = torch.nn.Parameter(w.detach().clone())
        holders.append(holder)
    prune.global_unstructured([(h, "weight") for h in holders], pruning_method=prune.L1Unstructured, amount=sparsity)
    return [h.weight_mask.bool() for h in holders]


def _prune_by_sorting(weights, sparsity):
    flat = torch.cat([w.flatten().abs() for w in weights])
    k = round(sparsity * len(flat))
    order = torch.argsort(flat, stable=True)
    keep = torch.ones_like(flat, dtype=torch.bool)
    keep[order[:k]] = False
    out, start = [], 0
    for w in weights:
        out.append(keep[start:start + w.numel()].view(w.shape))
        start += w.numel()
    return out


def _on_a_gpu(make, device="cuda"):
    """A case's arguments on a CUDA GPU, which the drivers simulate on the CPU (keywords_on_a_device,
    dp_sgd_on_a_model): every tensor of the case lies there."""
    return lambda: {**make(), "device": device}


register(Exercise(
    id="ch09.magnitude_prune", forbids=PRUNING, points=2, reference=ref.magnitude_prune, call=drivers.keywords_on_a_device,
    cases=(
        Case("one 4 x 5 weight, 35 %: round(7.0) = 7 pruned", _layers(21, (4, 5), sparsity=0.35)),
        Case("two layers, the second's weights 10x smaller: global, not per layer",
             _layers(22, (3, 4), (4, 2), scales=[1.0, 0.1], sparsity=0.5)),
        Case("10 weights at 35 %: round(3.5) = 4 pruned (half to even)", _layers(23, (2, 5), sparsity=0.35)),
        Case("10 weights at 25 %: round(2.5) = 2 pruned (half to even)", _layers(24, (10,), sparsity=0.25)),
        Case("weights on a GPU (simulated): the masks on that device",
             _on_a_gpu(_layers(20, (3, 4), (5,), sparsity=0.5))),
        Case("weights, a bias and a 4-d kernel at 60 %", _layers(25, (3, 3), (3,), (2, 1, 2, 2), sparsity=0.6),
             hidden=True),
        Case("sparsity 0: everything kept", _layers(26, (3, 4), sparsity=0.0), hidden=True),
        Case("sparsity 1: everything pruned", _layers(27, (2, 3), (3,), sparsity=1.0), hidden=True),
        Case("one weight of 1, 40 %", _layers(28, (1,), sparsity=0.4), hidden=True),
        Case("float32 weights with large values (1e6), 90 %", lambda: {
            "weights": [_normal(29, 6, 5, scale=1e6, dtype=torch.float32), _normal(30, 5, dtype=torch.float32)],
            "sparsity": 0.9}, hidden=True),
    ),
    mistakes=(
        Mistake("the mask made on the CPU", "torch.ones(n, dtype=torch.bool) lies on the CPU whatever the weights' "
                "device: on a GPU, indexing it with indices that lie on the GPU fails, and so would weight * mask. "
                "Make it where the weights are: device=flat.device, or torch.ones_like(flat, dtype=torch.bool).",
                _prune_variant("cpu")),
        Mistake("pruned by value, not magnitude", "Rank by |w|: a weight of −3 matters as much as one of +3. Pruning "
                "the smallest values removes the large negative weights.", _prune_variant("value")),
        Mistake("each layer pruned on its own (per layer, not global)", "Global pruning ranks all the weights "
                "together, so a layer whose weights are small loses more of them; prune.global_unstructured does "
                "this, l1_unstructured on each layer does not.", _prune_variant("per_layer")),
        Mistake("the largest weights pruned", "Magnitude pruning removes the k smallest |w| (topk with "
                "largest=False); the large ones carry the network.", _prune_variant("largest")),
        Mistake("the count rounded down", "torch prunes round(sparsity · total) weights (Python's round, half to "
                "even): int() rounds 3.5 down to 3.", _prune_variant("floor")),
        Mistake("flat masks", "Return one mask per weight, shaped like it (reshape each part to w.shape).",
                _prune_variant("flat")),
    ),
    alternatives=(_prune_by_torch, _prune_by_sorting),
))


# ---------------------------------------------------------------- pruned_sgd

def _pruned_run(seed, shape, steps, keep=0.5, grad_scale=1.0, **hyper):
    def make():
        generator = torch.Generator().manual_seed(seed)
        weight = torch.randn(*shape, generator=generator, dtype=torch.float64)
        mask = torch.rand(*shape, generator=generator, dtype=torch.float64) < keep
        grads = [torch.randn(*shape, generator=generator, dtype=torch.float64) * grad_scale for _ in range(steps)]
        return {"weight": weight, "mask": mask, "grads": grads, **hyper}
    return make


def _pruned_variant(kind):
    def pruned_sgd(weight, mask, grads, lr, momentum=0.0):
        m = ~mask if kind == "inverted" else mask
        if kind == "in_place":
            weight.mul_(m)
            w = weight
        else:
            w = weight * m
        buf, trajectory = None, []
        for g in grads:
            buf = g.clone() if buf is None else momentum * buf + g
            if kind == "once":
                w = w - lr * buf
            elif kind == "before":
                w = w * m - lr * buf
            else:
                w = (w - lr * buf) * m
            trajectory.append(w.clone())
        return trajectory
    return pruned_sgd


def _pruned_by_torch_optim(weight, mask, grads, lr, momentum=0.0):
    p = torch.nn.Parameter(weight.detach().clone() * mask)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=momentum)
    trajectory = []
    for g in grads:
        p.grad = g.clone()
        optimizer.step()
        with torch.no_grad():
            p.mul_(mask)
        trajectory.append(p.detach().clone())
    return trajectory


def _pruned_by_masked_gradients(weight, mask, grads, lr, momentum=0.0):
    """The gradient masked instead of the weight after the step: with a buffer started at 0 a pruned weight
    never moves, which is what torch.nn.utils.prune's weight_orig · mask gives too."""
    keep = mask.to(weight.dtype)
    w, buf, out = weight * keep, torch.zeros_like(weight), []
    for i, g in enumerate(grads):
        buf = g * keep if i == 0 else momentum * buf + g * keep
        w = w - lr * buf
        out.append(w)
    return out


register(Exercise(
    id="ch09.pruned_sgd", points=2, reference=ref.pruned_sgd, rtol=1e-12,
    cases=(
        Case("3 steps, momentum 0.9, half pruned", _pruned_run(31, (3, 4), 3, lr=0.1, momentum=0.9)),
        Case("plain SGD (momentum left at 0), 2 steps", _pruned_run(32, (2, 3), 2, lr=0.5)),
        Case("90 % pruned, 4 steps, momentum 0.5", _pruned_run(33, (4, 5), 4, keep=0.1, lr=0.05, momentum=0.5)),
        Case("one step", _pruned_run(34, (2, 2), 1, lr=0.1, momentum=0.9), hidden=True),
        Case("nothing pruned: plain SGD with momentum", _pruned_run(35, (3, 3), 3, keep=2.0, lr=0.1, momentum=0.9),
             hidden=True),
        Case("everything pruned", _pruned_run(36, (2, 3), 2, keep=-1.0, lr=0.1, momentum=0.9), hidden=True),
        Case("large gradients (1e6), lr 1e-6", _pruned_run(37, (3, 2), 3, grad_scale=1e6, lr=1e-6, momentum=0.9),
             hidden=True),
    ),
    mistakes=(
        Mistake("pruned weights re-grow after the first step", "Apply the mask after every optimizer step (w ← w "
                "· mask), not once before training: the gradient of a pruned weight is not 0, so the step moves it "
                "away from 0 again.", _pruned_variant("once")),
        Mistake("mask applied before each step, not after", "After the step the pruned weights hold −lr · b: mask "
                "after the step, so that the weights the model uses are pruned.", _pruned_variant("before")),
        Mistake("mask inverted", "True in the mask means kept (as torch.nn.utils.prune's weight_mask has 1 for "
                "kept): multiply by mask, not by ~mask.", _pruned_variant("inverted")),
        Mistake("weight pruned in place", "Return new tensors: weight.mul_(mask) changes the caller's weight.",
                _pruned_variant("in_place")),
    ),
    alternatives=(_pruned_by_torch_optim, _pruned_by_masked_gradients),
))


# ---------------------------------------------------------------- distillation_loss

def _logits(seed, n, c, scale=1.0, labels=None, dtype=torch.float64, **hyper):
    def make():
        generator = torch.Generator().manual_seed(seed)
        student = torch.randn(n, c, generator=generator, dtype=dtype) * scale
        teacher = torch.randn(n, c, generator=generator, dtype=dtype) * scale * 2
        y = torch.tensor(labels) if labels is not None else torch.randint(0, c, (n,), generator=generator)
        return {"student_logits": student, "teacher_logits": teacher, "labels": y, **hyper}
    return make


def _distill_variant(kind):
    def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
        t = temperature
        student_t = 1.0 if kind == "one_side" else t
        log_s = F.log_softmax(student_logits / student_t, dim=1)
        log_t = F.log_softmax(teacher_logits / t, dim=1)
        if kind == "reverse":
            soft = F.kl_div(log_t, log_s, reduction="batchmean", log_target=True)
        elif kind == "softmax":
            soft = F.kl_div(F.softmax(student_logits / t, dim=1), log_t.exp(), reduction="batchmean")
        elif kind == "mean":
            soft = F.kl_div(log_s, log_t, reduction="mean", log_target=True)
        else:
            soft = F.kl_div(log_s, log_t, reduction="batchmean", log_target=True)
        if kind != "no_t2":
            soft = soft * t * t
        hard = F.cross_entropy(student_logits, labels)
        return (1 - alpha) * soft + alpha * hard if kind == "alpha" else alpha * soft + (1 - alpha) * hard
    return distillation_loss


def _distill_kl_div(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=-1),
                    F.softmax(teacher_logits / temperature, dim=-1), reduction="batchmean")
    return alpha * temperature ** 2 * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def _distill_by_hand(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
    s, t = student_logits / temperature, teacher_logits / temperature
    log_q = s - torch.logsumexp(s, dim=1, keepdim=True)
    log_p = t - torch.logsumexp(t, dim=1, keepdim=True)
    kl = (log_p.exp() * (log_p - log_q)).sum(dim=1).mean()
    log_probs = student_logits - torch.logsumexp(student_logits, dim=1, keepdim=True)
    hard = -log_probs[torch.arange(len(labels)), labels].mean()
    return alpha * temperature * temperature * kl + (1 - alpha) * hard


register(Exercise(
    id="ch09.distillation_loss", points=2, reference=ref.distillation_loss, rtol=1e-9,
    cases=(
        Case("4 examples, 3 classes, T = 4, alpha 0.9", _logits(41, 4, 3, labels=[2, 0, 2, 1], temperature=4.0,
                                                                   alpha=0.9)),
        Case("the defaults: T = 2, alpha 0.5", _logits(42, 6, 5, labels=[3, 3, 1, 4, 0, 2])),
        Case("alpha 1: the soft term alone, T = 3", _logits(43, 5, 4, temperature=3.0, alpha=1.0)),
        Case("T = 1: no softening, alpha 0.3", _logits(44, 3, 4, temperature=1.0, alpha=0.3)),
        Case("alpha 0: cross-entropy alone", _logits(45, 4, 3, temperature=5.0, alpha=0.0), hidden=True),
        Case("one example", _logits(46, 1, 10, temperature=2.0, alpha=0.7), hidden=True),
        Case("large logits (±1000)", _logits(47, 4, 5, scale=500.0, temperature=2.0, alpha=0.5), hidden=True),
        Case("float32, 64 examples of 10 classes, T = 8", _logits(48, 64, 10, dtype=torch.float32, temperature=8.0,
                                                                     alpha=0.8), hidden=True),
    ),
    mistakes=(
        Mistake("distillation loss without the T² factor", "Softening by T shrinks the soft term's gradients by "
                "1/T²: multiply the KL by T² so that changing T does not change its weight against the labels.",
                _distill_variant("no_t2")),
        Mistake("KL in the wrong direction", "The student matches the teacher: KL(p_teacher ‖ p_student) = Σ "
                "p_t (log p_t − log p_s). F.kl_div(input, target) takes the student's log-probabilities as input "
                "and the teacher's as target.", _distill_variant("reverse")),
        Mistake("softmax instead of log_softmax", "F.kl_div expects its input as log-probabilities: "
                "F.log_softmax(student / T), not F.softmax (which gives a loss that can go negative).",
                _distill_variant("softmax")),
        Mistake("temperature applied to only one side", "Both distributions are softened by the same T: "
                "softmax(student / T) against softmax(teacher / T).", _distill_variant("one_side")),
        Mistake("KL averaged over classes too", "reduction='mean' divides by N · C; the KL of each example is a sum "
                "over classes, averaged over the batch: reduction='batchmean'.", _distill_variant("mean")),
        Mistake("alpha on the wrong term", "alpha weighs the soft (teacher) term: alpha · soft + (1 − alpha) · "
                "hard.", _distill_variant("alpha")),
    ),
    alternatives=(_distill_kl_div, _distill_by_hand),
))


# ---------------------------------------------------------------- training_memory

def _memory_variant(kind):
    def training_memory(sizes, batch_size, optimizer="adam", dtype_bytes=4):
        layers = list(zip(sizes[:-1], sizes[1:]))
        count = sum(a * b + (0 if kind == "no_bias" else b) for a, b in layers)
        parameters = count * dtype_bytes
        states = {"sgd": 0, "momentum": 1, "adam": 1 if kind == "adam_once" else 2}[optimizer]
        state = states * parameters + (8 * len(layers) if optimizer == "adam" and kind != "no_steps" else 0)
        hidden = sum(sizes[1:-1]) * (2 if kind == "twice" else 1)
        first = 0 if kind == "no_input" else sizes[0]
        labels = 0 if kind == "no_labels" else 8 * batch_size
        activations = dtype_bytes * batch_size * (first + hidden + sizes[-1]) + labels + dtype_bytes
        gradients = 0 if kind == "no_grads" else parameters
        memory = {"parameters": parameters, "gradients": gradients, "optimizer": state, "activations": activations}
        memory["total"] = sum(memory.values())
        return memory
    return training_memory


def _memory_measured(sizes, batch_size, optimizer="adam", dtype_bytes=4):
    """What torch holds, measured: the parameters' and gradients' bytes, the optimizer's state tensors after one
    step, and every tensor autograd saves for backward (saved_tensors_hooks), one per storage, parameters left out."""
    dtype = {4: torch.float32, 8: torch.float64}[dtype_bytes]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(n_in, n_out, dtype=dtype), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    x = torch.zeros(batch_size, sizes[0], dtype=dtype)
    y = torch.zeros(batch_size, dtype=torch.int64)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    made = {"sgd": lambda p: torch.optim.SGD(p, lr=0.1), "momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
            "adam": lambda p: torch.optim.Adam(p, foreach=False)}[optimizer](model.parameters())
    made.step()
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    state = sum(value.numel() * value.element_size() for entry in made.state.values() for value in entry.values()
                if isinstance(value, torch.Tensor))
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters())
    memory = {"parameters": nbytes, "gradients": grads, "optimizer": state, "activations": sum(saved.values())}
    memory["total"] = sum(memory.values())
    return memory


def _memory_by_layers(sizes, batch_size, optimizer="adam", dtype_bytes=4):
    params = 0
    for i in range(len(sizes) - 1):
        params += sizes[i] * sizes[i + 1] + sizes[i + 1]
    per_param = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer]
    steps = 4 * 2 * (len(sizes) - 1) if optimizer == "adam" else 0
    floats = batch_size * sum(sizes) + 1
    result = {"parameters": params * dtype_bytes, "gradients": params * dtype_bytes,
              "optimizer": per_param * params * dtype_bytes + steps, "activations": floats * dtype_bytes + 8 * batch_size}
    result["total"] = result["parameters"] * 2 + result["optimizer"] + result["activations"]
    return result


register(Exercise(
    id="ch09.training_memory", points=2, reference=ref.training_memory,
    cases=(
        Case("[64, 32, 10], batch 8, Adam, float32", lambda: {"sizes": [64, 32, 10], "batch_size": 8,
                                                             "optimizer": "adam", "dtype_bytes": 4}),
        Case("[64, 32, 16, 10], batch 16, SGD with momentum, float64", lambda: {
            "sizes": [64, 32, 16, 10], "batch_size": 16, "optimizer": "momentum", "dtype_bytes": 8}),
        Case("the defaults (Adam, float32): [20, 50, 3], batch 4", lambda: {"sizes": [20, 50, 3], "batch_size": 4}),
        Case("plain SGD, [10, 5, 2], batch 32", lambda: {"sizes": [10, 5, 2], "batch_size": 32, "optimizer": "sgd"}),
        Case("no hidden layer: [4, 3], batch 1", lambda: {"sizes": [4, 3], "batch_size": 1, "dtype_bytes": 8},
             hidden=True),
        Case("three hidden layers, batch 64", lambda: {"sizes": [8, 16, 16, 16, 4], "batch_size": 64,
                                                       "optimizer": "momentum"}, hidden=True),
        Case("[784, 1024, 1024, 10], batch 256, Adam", lambda: {"sizes": [784, 1024, 1024, 10], "batch_size": 256},
             hidden=True),
    ),
    mistakes=(
        Mistake("Adam's two moments counted as one", "Adam keeps exp_avg and exp_avg_sq, each the size of the "
                "parameters: 2 · P · b (plus a 4-byte step count per parameter tensor).",
                _memory_variant("adam_once")),
        Mistake("gradients left out", "backward() fills a .grad of every parameter's size: P · b more bytes.",
                _memory_variant("no_grads")),
        Mistake("biases left out", "Each Linear layer has n_in · n_out weights and n_out biases.",
                _memory_variant("no_bias")),
        Mistake("ReLU outputs counted twice", "ReLU saves its output and the next Linear saves the same tensor as "
                "its input: one storage, counted once.", _memory_variant("twice")),
        Mistake("the input batch left out", "The first Linear saves its input X (N · D) to compute its weight's "
                "gradient.", _memory_variant("no_input")),
        Mistake("Adam's step counts left out", "torch's Adam keeps, beside its two moments, a step count for each "
                "parameter tensor (each weight, each bias): a 0-d float32 tensor of 4 bytes.",
                _memory_variant("no_steps")),
        Mistake("the labels left out", "The cross-entropy saves the labels for its backward pass: int64, so 8 bytes "
                "per example whatever the parameters' dtype.", _memory_variant("no_labels")),
    ),
    alternatives=(_memory_measured, _memory_by_layers),
))


# ---------------------------------------------------------------- dp_sgd_gradient

def _dp_case(seed, model, n, d=3, c=4, hidden=5, dtype=torch.float64, labels=None, **options):
    def make():
        generator = torch.Generator().manual_seed(seed)
        if model == "softmax regression":
            params = {"W": torch.randn(d, c, generator=generator, dtype=dtype),
                      "b": torch.randn(c, generator=generator, dtype=dtype) * 0.1}
        else:
            params = {"W1": torch.randn(d, hidden, generator=generator, dtype=dtype),
                      "b1": torch.zeros(hidden, dtype=dtype),
                      "W2": torch.randn(hidden, c, generator=generator, dtype=dtype),
                      "b2": torch.zeros(c, dtype=dtype)}
        X = torch.randn(n, d, generator=generator, dtype=dtype) * 2
        y = torch.tensor(labels) if labels is not None else torch.randint(0, c, (n,), generator=generator)
        return {"model": model, "params": params, "X": X, "y": y, "seed": seed, **options}
    return make


def _per_example_grads(loss_fn, params, X, y):
    grads = []
    for i in range(len(X)):
        leaves = {name: p.detach().clone().requires_grad_(True) for name, p in params.items()}
        found = torch.autograd.grad(loss_fn(leaves, X[i], y[i]), list(leaves.values()))
        grads.append(dict(zip(leaves, found)))
    return grads


def _noise(p, generator):
    """N(0, 1) of p's shape and dtype drawn by `generator` on its own device, then put on p's."""
    return torch.randn(p.shape, generator=generator, dtype=p.dtype, device=generator.device).to(p.device)


def _dp_variant(kind):
    def dp_sgd_gradient(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
        n, grads = len(X), _per_example_grads(loss_fn, params, X, y)
        total = {name: torch.zeros_like(p) for name, p in params.items()}
        for g in grads:
            if kind == "per_tensor":
                factors = {name: torch.clamp(max_norm / (g[name].norm() + 1e-6), max=1.0) for name in g}
            else:
                norm = torch.sqrt(sum((v ** 2).sum() for v in g.values()))
                factor = max_norm / (norm + 1e-6)
                factor = factor if kind == "no_min" else torch.clamp(factor, max=1.0)
                factors = {name: 1.0 if kind in ("batch", "mean") else factor for name in g}
            for name in g:
                total[name] = total[name] + g[name] * factors[name]
        if kind in ("batch", "mean"):  # the sum's factor, or the mean's, applied to the sum
            norm = torch.sqrt(sum((v ** 2).sum() for v in total.values())) / (n if kind == "mean" else 1)
            total = {name: v * torch.clamp(max_norm / (norm + 1e-6), max=1.0) for name, v in total.items()}
        out = {}
        for name, p in params.items():
            z = torch.randn(p.shape, generator=generator, dtype=p.dtype) if kind == "cpu" else _noise(p, generator)
            noise = z * noise_multiplier * (1.0 if kind == "sigma_only" else max_norm)
            out[name] = total[name] / n + noise if kind == "noise_after" else (total[name] + noise) / n
        return out
    return dp_sgd_gradient


def _dp_loop(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    """The per-sample loop that torch.func's vmap replaces."""
    summed = {name: torch.zeros_like(p) for name, p in params.items()}
    for g in _per_example_grads(loss_fn, params, X, y):
        norm = torch.sqrt(sum(v.pow(2).sum() for v in g.values()))
        factor = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
        for name in summed:
            summed[name] += g[name] * factor
    return {name: (summed[name] + noise_multiplier * max_norm * _noise(p, generator)) / len(X)
            for name, p in params.items()}


def _dp_flat(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    """Per-example gradients with jacrev of the batch's summed loss, flattened into one vector per example."""
    def batch_losses(p):
        return torch.func.vmap(loss_fn, in_dims=(None, 0, 0))(p, X, y)

    jac = torch.func.jacrev(batch_losses)(params)
    flat = torch.cat([jac[name].reshape(len(X), -1) for name in params], dim=1)
    factor = (max_norm / (flat.norm(dim=1) + 1e-6)).clamp(max=1.0)
    summed = (flat * factor[:, None]).sum(dim=0)
    out, start = {}, 0
    for name, p in params.items():
        part = summed[start:start + p.numel()].reshape(p.shape)
        start += p.numel()
        out[name] = (part + _noise(p, generator) * noise_multiplier * max_norm) / len(X)
    return out


register(Exercise(
    id="ch09.dp_sgd_gradient", forbids=PRIVACY, points=3, reference=ref.dp_sgd_gradient, call=drivers.dp_sgd_on_a_model, rtol=1e-6,
    cases=(
        Case("softmax regression, 6 examples, C = 0.5, σ = 1", _dp_case(51, "softmax regression", 6, max_norm=0.5,
                                                                         noise_multiplier=1.0,
                                                                         labels=[2, 0, 3, 2, 1, 2])),
        Case("no noise (σ = 0): the mean of the clipped gradients", _dp_case(
            52, "softmax regression", 5, max_norm=0.3, noise_multiplier=0.0)),
        Case("a two-layer tanh network, 8 examples, C = 1, σ = 0.5", _dp_case(
            53, "two-layer tanh", 8, max_norm=1.0, noise_multiplier=0.5)),
        Case("on a GPU (simulated), a generator on the CPU: the gradient on the GPU",
             _on_a_gpu(_dp_case(58, "two-layer tanh", 4, max_norm=1.0, noise_multiplier=1.0))),
        Case("one example, σ = 2", _dp_case(54, "softmax regression", 1, max_norm=0.1, noise_multiplier=2.0),
             hidden=True),
        Case("C = 100: nothing clipped, σ = 0.01", _dp_case(55, "two-layer tanh", 4, max_norm=100.0,
                                                            noise_multiplier=0.01), hidden=True),
        Case("tiny C (1e-3), 16 examples", _dp_case(56, "two-layer tanh", 16, max_norm=1e-3, noise_multiplier=1.0),
             hidden=True),
        Case("float32, 10 examples", _dp_case(57, "softmax regression", 10, dtype=torch.float32, max_norm=0.5,
                                              noise_multiplier=1.0), hidden=True),
    ),
    mistakes=(
        Mistake("the noise drawn on the CPU", "On a GPU the noise must be added where the parameters are, and a "
                "generator draws only on its own device (a CPU generator cannot draw on a GPU): draw z with the "
                "generator on device=generator.device, then move it with .to(p.device).", _dp_variant("cpu")),
        Mistake("the batch gradient clipped, not each example's", "Clip every example's gradient to norm C before "
                "summing: that bounds how much one person's data can move the model, which the noise then hides. "
                "Clipping the sum bounds nothing per example.", _dp_variant("batch")),
        Mistake("the mean gradient clipped, not each example's", "Clip every example's gradient to norm C, then sum "
                "them: that bounds how much one person's data can move the model, which the noise then hides. "
                "Clipping the batch's mean gradient bounds only the average, never one example's share.",
                _dp_variant("mean")),
        Mistake("noise not scaled by C", "The noise has standard deviation σ · C: it must match the largest change "
                "one example can make (C, after clipping).", _dp_variant("sigma_only")),
        Mistake("noise added after dividing by the batch size", "Add the noise to the sum of the clipped gradients, "
                "then divide by N: (Σ gᵢ + σ C z) / N. Noise added after the division is N times too large.",
                _dp_variant("noise_after")),
        Mistake("each parameter clipped on its own", "The norm is over the whole example's gradient, all "
                "parameters together: ‖gᵢ‖ = √(Σ_params ‖gᵢ,p‖²).", _dp_variant("per_tensor")),
        Mistake("small gradients scaled up", "Clipping only shrinks: the factor is min(1, C / (‖gᵢ‖ + 1e-6)).",
                _dp_variant("no_min")),
    ),
    alternatives=(_dp_loop, _dp_flat),
))
