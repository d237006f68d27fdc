"""Chapter 07: a full training run. A 2-D convolution written from scratch, evaluation in eval mode without
autograd, and a checkpoint that saves and restores everything a run needs to continue bit for bit: the model, the
optimizer, the learning-rate schedule, the epoch and every random number generator the run draws from.

Below the exercises, `TrainingRun` trains the course's digits CNN (solutions/models.py) with all three generators
in play (torch's global one for dropout, the data loader's torch.Generator for shuffling, a numpy Generator for
augmentation); tests/test_ch07_solutions.py resumes it from a checkpoint in a new process and compares bit for bit.
"""
import numpy as np
import torch
import torch.nn.functional as F

from solutions import models

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "torch_rng", "loader_rng", "numpy_rng")


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """A 2-D convolution as torch.nn.functional.conv2d computes it (a cross-correlation: the kernel is not flipped).

    x: (N, C_in, H, W), weight: (C_out, C_in, kH, kW), bias: (C_out,) or None; stride and padding: ints, the same
    for height and width, padding adding that many rows and columns of zeros on every side.
    out[n, o, i, j] = bias[o] + Σ_c Σ_p Σ_q x_padded[n, c, i·stride + p, j·stride + q] · weight[o, c, p, q]
    ->  (N, C_out, H_out, W_out), H_out = (H + 2·padding − kH) // stride + 1, W_out likewise; x's dtype
    """
    ### BEGIN SOLUTION
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    padded = x.new_zeros((n, c_in, h + 2 * padding, w + 2 * padding))
    padded[:, :, padding:padding + h, padding:padding + w] = x
    h_out = (h + 2 * padding - kh) // stride + 1
    w_out = (w + 2 * padding - kw) // stride + 1
    # im2col: for each kernel position (p, q), the input it meets at every output position
    patches = torch.stack([padded[:, :, p:p + stride * (h_out - 1) + 1:stride, q:q + stride * (w_out - 1) + 1:stride]
                           for p in range(kh) for q in range(kw)], dim=2)  # (N, C_in, kH·kW, H_out, W_out)
    out = torch.einsum("nckhw,ock->nohw", patches, weight.reshape(c_out, c_in, kh * kw))
    if bias is not None:
        out = out + bias.view(1, c_out, 1, 1)
    return out
    ### END SOLUTION


def evaluate(model, loader):
    """The mean cross-entropy loss and the accuracy of `model` over every example `loader` yields.

    loader: an iterable of batches (x, y), y: (B,) int class indices; batches may differ in size, and every
    example counts once. The model runs in eval mode (dropout off, batch norm on its running statistics) and without
    autograd; batches are moved to the device of the model's parameters; the model is left in the mode it came in.
    ->  (loss: float, accuracy: float in [0, 1])
    """
    ### BEGIN SOLUTION
    was_training = model.training
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            scores = model(x)
            total_loss += F.cross_entropy(scores, y, reduction="sum").item()
            correct += (scores.argmax(dim=1) == y).sum().item()
            count += len(y)
    model.train(was_training)
    return total_loss / count, correct / count
    ### END SOLUTION


def save_checkpoint(path, model, optimizer, scheduler, epoch, generator, rng):
    """Save everything a run needs to continue exactly where it stopped, with torch.save, to `path`.

    The file holds one dict with these keys (the names load_checkpoint reads):
      "model", "optimizer", "scheduler": their state_dict()s (never the objects themselves: torch.load with
                                         weights_only=True reads tensors, numbers and containers only);
      "epoch": the epoch just finished (an int);
      "torch_rng": torch's global generator's state (dropout draws from it);
      "loader_rng": the state of `generator`, the data loader's torch.Generator (it shuffles the batches);
      "numpy_rng": the state of `rng`, the numpy Generator the augmentation draws from (rng.bit_generator.state).
    ->  None
    """
    import torch  # here as well as at the top: grading rebuilds this function from its source alone

    ### BEGIN SOLUTION
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch, "torch_rng": torch.get_rng_state(),
                "loader_rng": generator.get_state(), "numpy_rng": rng.bit_generator.state}, path)
    ### END SOLUTION


def load_checkpoint(path, model, optimizer, scheduler, generator, rng):
    """Restore a checkpoint that save_checkpoint wrote into a run's objects, in place, and say where to go on.

    Read the file with torch.load(path, weights_only=True, map_location="cpu"): a checkpoint saved on a GPU then
    loads on a machine without one (each load_state_dict copies into its object's own device, and the generators'
    states must be CPU tensors anyway). Load the model's, the optimizer's and the scheduler's state_dicts into
    them; set torch's global generator, `generator` (the loader's) and `rng` (numpy's) to the saved states.
    ->  the epoch to continue from: the saved epoch + 1 (an int)
    """
    ### BEGIN SOLUTION
    checkpoint = torch.load(path, weights_only=True, map_location="cpu")
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    torch.set_rng_state(checkpoint["torch_rng"])
    generator.set_state(checkpoint["loader_rng"])
    rng.bit_generator.state = checkpoint["numpy_rng"]
    return checkpoint["epoch"] + 1
    ### END SOLUTION


# ---------------------------------------------------------------- a training run to resume (not an exercise)

def shift_images(images, rng, max_shift=1):
    """Each image moved by its own random whole-pixel shift (dy, dx) in [−max_shift, max_shift], drawn from the numpy
    Generator `rng`, the pixels moved in from outside set to 0. images: (N, 1, H, W) tensor -> a new tensor."""
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
    out = torch.zeros_like(images)
    height, width = images.shape[-2:]
    for k, (dy, dx) in enumerate(shifts.tolist()):
        out[k, :, max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
            images[k, :, max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


class TrainingRun:
    """The digits CNN trained with AdamW, a OneCycle schedule, dropout, shuffled batches and shifted images: every
    kind of state a checkpoint must carry. Built from `seed` alone, so two processes build the same run.

    The model and the data are float32 on the CPU; `n_images` digits (a stratified sample) keep a test fast.
    """

    def __init__(self, seed=0, n_images=240, batch_size=32, epochs=4, lr=0.01):
        from solutions.data import digit_images

        images, labels = digit_images()
        order = np.random.default_rng(seed).permutation(len(labels))[:n_images]
        self.x = torch.tensor(images[order, None], dtype=torch.float32)
        self.y = torch.tensor(labels[order])
        self.x = (self.x - self.x.mean()) / self.x.std()
        torch.manual_seed(seed)
        self.model = models.digits_cnn(seed=seed)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.01)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self.x, self.y),
                                                  batch_size=batch_size, shuffle=True, generator=self.generator)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=lr,
                                                             total_steps=epochs * len(self.loader))
        self.rng = np.random.default_rng(seed + 2)
        self.epochs = epochs

    def train_epochs(self, start, stop):
        """Train epochs start .. stop − 1."""
        self.model.train()
        for _ in range(start, stop):
            for x, y in self.loader:
                x = shift_images(x, self.rng)
                loss = F.cross_entropy(self.model(x), y)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                self.scheduler.step()

    def save(self, path, epoch):
        save_checkpoint(path, self.model, self.optimizer, self.scheduler, epoch, self.generator, self.rng)

    def load(self, path):
        return load_checkpoint(path, self.model, self.optimizer, self.scheduler, self.generator, self.rng)
