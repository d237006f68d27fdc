"""Chapter 07: a full training run. A 2-D convolution written from scratch, evaluation in eval mode without
autograd, and a checkpoint that saves and restores what a model's training needs to continue bit for bit: the model,
the optimizer, the learning-rate schedule, the epoch and every random number generator the training draws from.

Below the exercises, the whole run (not an exercise): `EarlyStopping` with a state_dict, and `save_run` / `load_run`,
which add to the exercises' checkpoint what the rest of a run holds (early stopping's state, Python's generator, the
GPU generators, a GradScaler's state) and write the file atomically. `TrainingRun` trains the course's digits CNN
(solutions/models.py) with every kind of that state in play; tests/test_ch07_whole_run.py resumes it, early stopping
and all, from a checkpoint in a new process and compares bit for bit with the run that never stopped.
"""
import copy
import math
import os
import random

import numpy as np
import torch
import torch.nn.functional as F

from solutions import models

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "torch_rng", "loader_rng", "numpy_rng")
RUN_KEYS = CHECKPOINT_KEYS + ("stopping", "python_rng", "cuda_rng", "mps_rng", "scaler")  # save_run's file


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
    """Save what a model's training needs to continue exactly where it stopped, with torch.save, to `path`.

    The file holds one dict with these keys (the names load_checkpoint reads):
      "model", "optimizer", "scheduler": their state_dict()s (never the objects themselves: torch.load with
                                         weights_only=True reads tensors, numbers and containers only);
      "epoch": the epoch just finished (an int);
      "torch_rng": torch's global generator's state (dropout draws from it);
      "loader_rng": the state of `generator`, the data loader's torch.Generator (it shuffles the batches);
      "numpy_rng": the state of `rng`, the numpy Generator the augmentation draws from (rng.bit_generator.state).
    ->  None
    """
    ### BEGIN SOLUTION
    import torch

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


# ---------------------------------------------------------------- the whole run (not an exercise)

class EarlyStopping:
    """Early stopping on the validation loss (chapter 05) for a torch model, holding the loop's whole state:
    every epoch's figures, the best validation loss, the epoch and a copy of the weights that gave it, and how many
    epochs in a row have not improved on it; state_dict() / load_state_dict() put all of it in a checkpoint.

    EarlyStopping(patience): stop once `patience` ≥ 1 epochs in a row bring no improvement.
    step(figures, model) -> bool: once per epoch, after validation; figures: (train loss, train accuracy, validation
        loss, validation accuracy), floats. The epoch is an improvement when its validation loss < best_loss (a NaN
        never is): then best_loss, best_epoch (the epoch's index in history, from 0) and best_weights (a copy of
        model.state_dict()) are its own, and bad_epochs goes back to 0; any other epoch adds 1 to bad_epochs.
        True (stop) when bad_epochs has reached patience; after that, each epoch without improvement says True again.
    Before the first improvement best_loss is inf, best_epoch −1 and best_weights None.
    """

    def __init__(self, patience):
        self.patience = patience
        self.history = []
        self.best_loss, self.best_epoch, self.best_weights, self.bad_epochs = math.inf, -1, None, 0

    def step(self, figures, model):
        self.history.append(tuple(figures))
        if figures[2] < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = figures[2], len(self.history) - 1, 0
            self.best_weights = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state_dict(self):
        """Everything step() has changed, as tensors, numbers and containers (what torch.load(weights_only=True)
        reads back)."""
        return {"history": list(self.history), "best_loss": self.best_loss, "best_epoch": self.best_epoch,
                "best_weights": self.best_weights, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state):
        self.history = [tuple(figures) for figures in state["history"]]
        self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
        self.best_weights, self.bad_epochs = state["best_weights"], state["bad_epochs"]


def save_run(path, model, optimizer, scheduler, epoch, generator, rng, stopping, scaler=None):
    """The whole run in one file at `path`: save_checkpoint's keys, and
      "stopping": stopping.state_dict() (an EarlyStopping's history, best loss, epoch and weights, patience count);
      "python_rng": the state of Python's own generator (random.getstate()), which libraries may draw from;
      "cuda_rng", "mps_rng": the GPU generators' states (dropout on a GPU draws from them; [] and None without one);
      "scaler": a GradScaler's state_dict() (its scale and growth count), None when the run has none.
    Written to `path`.partial, then renamed over `path` (os.replace, atomic): a crash while saving leaves the last
    whole checkpoint at `path`, never part of a new one."""
    partial = f"{path}.partial"
    save_checkpoint(partial, model, optimizer, scheduler, epoch, generator, rng)
    state = torch.load(partial, weights_only=True, map_location="cpu")
    state.update(stopping=stopping.state_dict(), python_rng=random.getstate(),
                 cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                 mps_rng=torch.mps.get_rng_state() if torch.backends.mps.is_available() else None,
                 scaler=None if scaler is None else scaler.state_dict())
    torch.save(state, partial)
    os.replace(partial, path)


def load_run(path, model, optimizer, scheduler, generator, rng, stopping, scaler=None):
    """Restore what save_run wrote into a run's objects, in place (load_checkpoint, then the rest); the GPU generators
    only where the machine has that GPU. ->  the epoch to continue from"""
    start = load_checkpoint(path, model, optimizer, scheduler, generator, rng)
    state = torch.load(path, weights_only=True, map_location="cpu")
    stopping.load_state_dict(state["stopping"])
    random.setstate(state["python_rng"])
    if state["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    if state["mps_rng"] is not None and torch.backends.mps.is_available():
        torch.mps.set_rng_state(state["mps_rng"])
    if scaler is not None:
        scaler.load_state_dict(state["scaler"])
    return start


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
    """The digits CNN trained with AdamW, a OneCycle schedule, dropout, shuffled batches, shifted images (half of the
    batches, chosen by Python's random) and early stopping on a validation set, optionally through a GradScaler:
    every kind of state a checkpoint must carry. Built from `seed` alone, so two processes build the same run.

    The model and the data are float32 on the CPU; `n_images` digits (a random sample), the last `n_val` of them for
    validation, keep a test fast.
    """

    def __init__(self, seed=0, n_images=240, n_val=60, batch_size=32, epochs=4, lr=0.01, patience=2, scaler=False):
        from solutions.data import digit_images

        images, labels = digit_images()
        order = np.random.default_rng(seed).permutation(len(labels))[:n_images]
        x = torch.tensor(images[order, None], dtype=torch.float32)
        x, y = (x - x.mean()) / x.std(), torch.tensor(labels[order])
        self.x, self.y = x[:n_images - n_val], y[:n_images - n_val]
        self.validation = [(x[n_images - n_val:], y[n_images - n_val:])]
        torch.manual_seed(seed)
        random.seed(seed)
        self.model = models.digits_cnn(seed=seed)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=0.01)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(self.x, self.y),
                                                  batch_size=batch_size, shuffle=True, generator=self.generator)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=lr,
                                                             total_steps=epochs * len(self.loader))
        self.rng = np.random.default_rng(seed + 2)
        self.stopping = EarlyStopping(patience)
        self.scaler = torch.amp.GradScaler("cpu", growth_interval=3) if scaler else None
        self.epochs = epochs

    def train_epoch(self):
        """One pass over the training images; -> (mean training loss, training accuracy), in train mode."""
        self.model.train()
        total, correct = 0.0, 0
        for x, y in self.loader:
            if random.random() < 0.5:
                x = shift_images(x, self.rng)
            scores = self.model(x)
            loss = F.cross_entropy(scores, y)
            self.optimizer.zero_grad()
            if self.scaler is None:
                loss.backward()
                self.optimizer.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            self.scheduler.step()
            total += loss.item() * len(y)
            correct += (scores.argmax(1) == y).sum().item()
        return total / len(self.y), correct / len(self.y)

    def fit(self, start=0, path=None, last=None):
        """Epochs start, start + 1, ... until early stopping says stop or the run's epochs are done (or, to stand in
        for a run killed there, after epoch `last`), each followed by validation, early stopping's step and, with
        `path`, save_run. ->  the last epoch trained"""
        epoch = start - 1
        for epoch in range(start, self.epochs if last is None else last + 1):
            figures = (*self.train_epoch(), *evaluate(self.model, self.validation))
            stop = self.stopping.step(figures, self.model)
            if path is not None:
                self.save(path, epoch)
            if stop:
                break
        return epoch

    def save(self, path, epoch):
        save_run(path, self.model, self.optimizer, self.scheduler, epoch, self.generator, self.rng, self.stopping,
                 self.scaler)

    def load(self, path):
        return load_run(path, self.model, self.optimizer, self.scheduler, self.generator, self.rng, self.stopping,
                        self.scaler)
