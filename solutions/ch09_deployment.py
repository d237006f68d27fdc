"""Chapter 09: from a trained model to a deployed one. What training costs in memory, and four ways to make a model
smaller, private or cheaper to run: symmetric int8 quantization, magnitude pruning that stays pruned, the
knowledge-distillation loss, and DP-SGD's noisy clipped gradient.

Every function takes torch tensors and returns new ones (none changes its inputs); randomness comes from a
torch.Generator argument. The formulas are those of torch's own tools (torch.quantize_per_channel with a symmetric
scale, torch.nn.utils.prune.global_unstructured, F.kl_div on log-probabilities, Opacus's per-example clipping);
the docstrings say what each must compute. The functions that take tensors on a device (a GPU's) return tensors on
that device.
"""
import torch
import torch.nn.functional as F


def quantize_int8(x, axis=None, scale=None):
    """Symmetric int8 quantization, per tensor (axis=None) or per output channel (axis=0: one scale per row).

    scale = max|x| / 127 over the whole tensor, or over each x[i] with axis=0 (a weight's output channel);
            where that max is 0 (an all-zero tensor or row) the scale is 1. A scale passed in (calibrated on other
            data, or chosen smaller to clip outliers) is used as it is.
    q = clamp(round(x / scale), −127, 127)   (round half to even, as torch.round; −128 is never used, so that
                                             q and −q are both representable and 0 maps to 0)
    x: (n, ...) float tensor; axis: None or 0; scale: None, a 0-d tensor (axis=None) or (n,) (axis=0)
    ->  (q: int8 tensor shaped like x, scale: 0-d or (n,) tensor in x's dtype)
    """
    ### BEGIN SOLUTION
    if scale is None:
        amax = x.abs().amax() if axis is None else x.abs().reshape(x.shape[0], -1).amax(dim=1)
        scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    shaped = scale if axis is None else scale.reshape(-1, *([1] * (x.dim() - 1)))
    q = torch.clamp(torch.round(x / shaped), -127, 127).to(torch.int8)
    return q, scale.to(x.dtype).clone()
    ### END SOLUTION


def dequantize_int8(q, scale, axis=None):
    """The float values an int8 tensor stands for: x̂ = q · scale, with one scale per row when axis=0.

    |x − dequantize_int8(*quantize_int8(x))| ≤ scale / 2 wherever x was not clamped.
    q: (n, ...) int8 tensor; scale: 0-d tensor (axis=None) or (n,) (axis=0)  ->  tensor shaped like q in scale's dtype
    """
    ### BEGIN SOLUTION
    shaped = scale if axis is None else scale.reshape(-1, *([1] * (q.dim() - 1)))
    return q.to(scale.dtype) * shaped
    ### END SOLUTION


def magnitude_prune(weights, sparsity):
    """Global magnitude pruning, as torch.nn.utils.prune.global_unstructured with L1Unstructured decides it.

    All the weights are ranked together by |w|; the k = round(sparsity · total) smallest in magnitude (Python's
    round, half to even, as torch) are pruned, wherever they are: a layer with many small weights loses more of them.
    weights: list of float tensors (any shapes), all on one device; sparsity: float in [0, 1]
    ->  list of bool masks shaped like the weights and on their device: True where a weight is kept, False where it
        is pruned
    """
    ### BEGIN SOLUTION
    flat = torch.cat([w.detach().reshape(-1).abs() for w in weights])
    k = round(sparsity * flat.numel())
    keep = torch.ones(flat.numel(), dtype=torch.bool, device=flat.device)  # on the weights' device (a GPU's too)
    keep[torch.topk(flat, k, largest=False).indices] = False
    masks, start = [], 0
    for w in weights:
        masks.append(keep[start:start + w.numel()].reshape(w.shape))
        start += w.numel()
    return masks
    ### END SOLUTION


def pruned_sgd(weight, mask, grads, lr, momentum=0.0):
    """SGD with momentum (torch.optim.SGD's rule) on a pruned weight, which stays pruned.

    w ← weight · mask; then for each gradient g: b ← g on the first step, else b ← momentum · b + g;
    w ← w − lr · b, and the mask applied again after the step (w ← w · mask), so that no pruned weight grows back.
    weight: (n, m) float tensor; mask: (n, m) bool (True = kept); grads: list of (n, m) tensors; lr, momentum: floats
    ->  list of the weight after each step, (n, m) tensors
    """
    ### BEGIN SOLUTION
    w, buf, trajectory = weight * mask, None, []
    for g in grads:
        buf = g.clone() if buf is None else momentum * buf + g
        w = (w - lr * buf) * mask
        trajectory.append(w)
    return trajectory
    ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, labels, temperature=2.0, alpha=0.5):
    """Hinton's knowledge-distillation loss: soft targets from the teacher plus the hard labels.

    soft = T² · KL(p_teacher ‖ p_student), both distributions softened by the same T: p = softmax(logits / T); the KL
           of each example is a sum over its classes, and the soft term their mean over the batch; the T² keeps
           its gradient's size independent of T
    hard = cross-entropy of the student's logits (at T = 1) with the labels, averaged over the batch
    loss = alpha · soft + (1 − alpha) · hard
    student_logits, teacher_logits: (N, C); labels: (N,) int64 in [0, C)  ->  0-d tensor
    """
    ### BEGIN SOLUTION
    t = temperature
    log_p_student = F.log_softmax(student_logits / t, dim=1)
    log_p_teacher = F.log_softmax(teacher_logits / t, dim=1)
    kl = torch.sum(log_p_teacher.exp() * (log_p_teacher - log_p_student)) / student_logits.shape[0]
    hard = F.cross_entropy(student_logits, labels)
    return alpha * t * t * kl + (1 - alpha) * hard
    ### END SOLUTION


def training_memory(sizes, batch_size, optimizer="adam", dtype_bytes=4):
    """Bytes one training step of an MLP holds, by kind: the model sizes [D, H1, ..., C] (Linear layers with bias,
    ReLU between them, mean cross-entropy of the logits against int64 labels), `batch_size` examples, parameters in
    a float dtype of `dtype_bytes` bytes.

    parameters  the bytes of every weight and every bias
    gradients   the bytes of one gradient per parameter
    optimizer   the state torch.optim keeps after a step: none for "sgd", one momentum buffer per parameter for
                "momentum"; for "adam" two moment estimates per parameter (exp_avg and exp_avg_sq) and, for each
                parameter tensor, its step count, a 0-d float32 tensor (4 bytes)
    activations the bytes autograd saves for backward in the forward pass, each storage once, the parameters
                left out: each Linear layer saves its input (for its weight's gradient), each ReLU its output (the
                storage the next Linear saves as its input: one storage, counted once), the cross-entropy its
                log-probabilities, the int64 labels and a one-element total weight in the float dtype
    total       the sum of the four
    sizes: list of ints; batch_size: int; optimizer: "sgd", "momentum" or "adam"; dtype_bytes: 4 or 8
    ->  {"parameters": int, "gradients": int, "optimizer": int, "activations": int, "total": int}
    """
    ### BEGIN SOLUTION
    layers = list(zip(sizes[:-1], sizes[1:]))
    count = sum(n_in * n_out + n_out for n_in, n_out in layers)
    parameters = count * dtype_bytes
    state = {"sgd": 0, "momentum": 1, "adam": 2}[optimizer] * parameters  # buffers the size of the parameters
    if optimizer == "adam":
        state += 4 * 2 * len(layers)
    activations = dtype_bytes * batch_size * sum(sizes) + 8 * batch_size + dtype_bytes
    memory = {"parameters": parameters, "gradients": parameters, "optimizer": state, "activations": activations}
    memory["total"] = sum(memory.values())
    return memory
    ### END SOLUTION


def dp_sgd_gradient(loss_fn, params, X, y, max_norm, noise_multiplier, generator):
    """DP-SGD's gradient (Abadi et al., 2016): each example's gradient clipped, the sum noised, then averaged.

    gᵢ = ∇ loss_fn(params, X[i], y[i])          per example, with torch.func.vmap over torch.func.grad
    gᵢ ← gᵢ · min(1, C / (‖gᵢ‖ + 1e-6))          ‖gᵢ‖ the 2-norm over all parameters together (Opacus's factor)
    g = (Σᵢ gᵢ + C · σ · z) / N                  z ~ N(0, 1) per entry: torch.randn(p.shape, generator=generator,
                                                dtype=p.dtype) for each parameter, in the order of params, drawn
                                                on the generator's device and then moved to the parameter's
    loss_fn(params, x, y) -> 0-d tensor, for one example; params: dict name -> tensor; X: (N, D); y: (N,), all on
    one device (a GPU's too); max_norm C > 0; noise_multiplier σ ≥ 0; generator: torch.Generator, on the CPU or on
    that device (a generator draws only on its own device)
    ->  dict name -> tensor shaped like params[name], on its device
    """
    ### BEGIN SOLUTION
    per_example = torch.func.vmap(torch.func.grad(loss_fn), in_dims=(None, 0, 0))(params, X, y)
    norms = torch.sqrt(sum(g.reshape(len(X), -1).pow(2).sum(dim=1) for g in per_example.values()))
    factor = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    noisy = {}
    for name, p in params.items():
        clipped = per_example[name] * factor.reshape(-1, *([1] * p.dim()))
        z = torch.randn(p.shape, generator=generator, dtype=p.dtype, device=generator.device).to(p.device)
        noise = z * (noise_multiplier * max_norm)
        noisy[name] = (clipped.sum(dim=0) + noise) / len(X)
    return noisy
    ### END SOLUTION
