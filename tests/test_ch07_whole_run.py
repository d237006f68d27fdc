"""Chapter 07's whole run (solutions/ch07_training_run.py, below the exercises): early stopping's state past its
first stop signal, save_run's file and its atomic write, the GPU generators (simulated) and a GradScaler in it, and a
run resumed in a new process, early stopping and all, that ends as the run that never stopped, bit for bit."""
import io
import math
import random
import subprocess
import sys
import textwrap

import pytest
import torch

from solutions import ch07_training_run as ch07

# Early stopping (patience 2) fires after epoch 5 of this run, the best epoch being 3: a checkpoint saved after epoch
# 4 holds one epoch without improvement, and the resumed run must stop one epoch later, as the straight run does.
STOPS = dict(seed=3, epochs=8, lr=0.02)


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the new process: the same float sums in the same order
    yield
    torch.set_num_threads(before)


def test_early_stopping_keeps_the_best_weights_and_says_stop_again_past_its_first_signal():
    model = torch.nn.Linear(2, 1)
    stopping = ch07.EarlyStopping(patience=2)
    assert (stopping.best_loss, stopping.best_epoch, stopping.best_weights) == (math.inf, -1, None)
    losses = [1.0, 0.5, 0.7, 0.6, 0.8, 0.4, math.nan, 0.4, 0.3]
    says = [False, False, False, True, True, False, False, True, False]
    for epoch, (loss, stop) in enumerate(zip(losses, says)):
        with torch.no_grad():
            model.weight.fill_(epoch)
        assert stopping.step((2.0, 0.1, loss, 0.5), model) is stop, epoch
        if epoch == 4:  # past the first stop signal the count goes on, and the best stays the best
            assert stopping.bad_epochs == 3 and stopping.best_epoch == 1
            assert torch.equal(stopping.best_weights["weight"], torch.ones(1, 2))
    assert stopping.best_epoch == 8 and stopping.best_loss == 0.3 and stopping.bad_epochs == 0
    assert torch.equal(stopping.best_weights["weight"], torch.full((1, 2), 8.0))
    assert len(stopping.history) == len(losses) and stopping.history[2] == (2.0, 0.1, 0.7, 0.5)


def test_early_stoppings_state_goes_through_a_file_and_decides_as_before():
    model = torch.nn.Linear(2, 1)
    stopping = ch07.EarlyStopping(patience=3)
    for loss in (1.0, 0.5, 0.6, 0.7):
        stopping.step((1.0, 0.5, loss, 0.5), model)
    buffer = io.BytesIO()
    torch.save(stopping.state_dict(), buffer)
    buffer.seek(0)
    copied = ch07.EarlyStopping(patience=3)
    copied.load_state_dict(torch.load(buffer, weights_only=True))
    assert copied.history == stopping.history and copied.bad_epochs == 2 and copied.best_epoch == 1
    for loss, stop in ((0.8, True), (0.4, False)):
        assert copied.step((1.0, 0.5, loss, 0.5), model) is stop is stopping.step((1.0, 0.5, loss, 0.5), model)


def test_save_run_holds_the_exercises_keys_and_the_rest_of_the_run(tmp_path):
    run = ch07.TrainingRun(seed=0, n_images=64, n_val=16, epochs=2, scaler=True)
    path = tmp_path / "last.pt"
    run.fit(path=path, last=0)
    saved = torch.load(path, weights_only=True)
    assert sorted(saved) == sorted(ch07.RUN_KEYS) and saved["epoch"] == 0
    assert saved["python_rng"] == random.getstate()
    assert saved["scaler"] == run.scaler.state_dict() and saved["scaler"]["_growth_tracker"] == 2
    assert saved["stopping"]["history"] == run.stopping.history and saved["stopping"]["best_epoch"] == 0
    assert saved["cuda_rng"] == [] and saved["mps_rng"] is None  # this machine has neither
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # the temporary file renamed, none left


class Killed(Exception):
    """The process stops here: a time limit, a pre-empted machine, Ctrl-C."""


def killed_halfway(save):
    """torch.save as it goes when the process is killed halfway through the file: half of the bytes written."""
    def killed(obj, f, *args, **kwargs):
        buffer = io.BytesIO()
        save(obj, buffer, *args, **kwargs)
        with open(f, "wb") as file:
            file.write(buffer.getvalue()[:len(buffer.getvalue()) // 2])
        raise Killed()
    return killed


def test_a_crash_while_saving_leaves_the_last_whole_checkpoint_in_place(tmp_path, monkeypatch):
    run = ch07.TrainingRun(seed=0, n_images=64, n_val=16, epochs=3)
    path = tmp_path / "last.pt"
    run.fit(path=path, last=0)
    before = path.read_bytes()
    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", killed_halfway(torch.save))
        with pytest.raises(Killed):
            run.fit(start=1, path=path, last=1)
    assert path.read_bytes() == before  # the half-written file is path.partial, never path
    assert ch07.TrainingRun(seed=1, n_images=64, n_val=16, epochs=3).load(path) == 1

    with pytest.raises(Killed):  # written in place, the same crash leaves a file torch cannot read
        killed_halfway(torch.save)(torch.load(path, weights_only=True), path)
    with pytest.raises(RuntimeError):
        torch.load(path, weights_only=True)


def test_the_gpu_generators_go_in_and_come_back_where_the_machine_has_that_gpu(tmp_path, monkeypatch):
    """Simulated: torch reports a CUDA machine with two GPUs and an MPS device; save_run keeps their generators'
    states and load_run sets them, and on a machine without them it loads the rest and leaves them alone."""
    run = ch07.TrainingRun(seed=0, n_images=64, n_val=16, epochs=2)
    run.fit(last=0)
    cuda_states = [torch.arange(4, dtype=torch.uint8), torch.arange(3, dtype=torch.uint8)]
    mps_state = torch.arange(5, dtype=torch.uint8)
    restored = []
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: cuda_states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: restored.append(("cuda", states)))
    monkeypatch.setattr(torch.mps, "get_rng_state", lambda: mps_state)
    monkeypatch.setattr(torch.mps, "set_rng_state", lambda state: restored.append(("mps", state)))
    for available in (True, False):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: available)
        if available:
            run.save(tmp_path / "gpu.pt", 0)
        fresh = ch07.TrainingRun(seed=1, n_images=64, n_val=16, epochs=2)
        assert fresh.load(tmp_path / "gpu.pt") == 1
    saved = torch.load(tmp_path / "gpu.pt", weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(saved["cuda_rng"], cuda_states)) and len(saved["cuda_rng"]) == 2
    assert torch.equal(saved["mps_rng"], mps_state)
    assert [where for where, _ in restored] == ["cuda", "mps"]  # once, on the machine with the GPUs


RESUME = """
import random, sys
import numpy, torch
from solutions import ch07_training_run as ch07
torch.set_num_threads(1)
run = ch07.TrainingRun(**eval(sys.argv[3]), scaler=True)
torch.manual_seed(1234)  # elsewhere than the checkpoint's: load must put every generator back
random.seed(1234)
run.generator.manual_seed(99)
run.rng = numpy.random.default_rng(99)
start = run.load(sys.argv[1])
last = run.fit(start)
torch.save({"start": start, "last": last, "model": run.model.state_dict(), "stopping": run.stopping.state_dict(),
            "scaler": run.scaler.state_dict()}, sys.argv[2])
"""


def test_a_run_resumed_in_a_new_process_stops_where_the_run_that_never_stopped_stops_bit_for_bit(tmp_path,
                                                                                                  one_thread):
    straight = ch07.TrainingRun(**STOPS, scaler=True)
    assert straight.fit(path=tmp_path / "straight.pt") == 5  # stopped early: 8 epochs were allowed
    assert straight.stopping.best_epoch == 3 and straight.stopping.bad_epochs == 2

    killed = ch07.TrainingRun(**STOPS, scaler=True)
    killed.fit(path=tmp_path / "last.pt", last=4)
    assert killed.stopping.bad_epochs == 1  # the checkpoint holds a patience count under way
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(RESUME), str(tmp_path / "last.pt"),
                             str(tmp_path / "resumed.pt"), repr(STOPS)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert (resumed["start"], resumed["last"]) == (5, 5)
    assert not torch.equal(resumed["model"]["0.weight"], killed.model.state_dict()["0.weight"])  # it trained on
    assert resumed["scaler"] == straight.scaler.state_dict()
    expected = straight.stopping.state_dict()
    assert resumed["stopping"]["history"] == expected["history"]  # every epoch's figures, to the last bit
    for key in ("best_loss", "best_epoch", "bad_epochs"):
        assert resumed["stopping"][key] == expected[key], key
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed["model"][name], value), name
        assert torch.equal(resumed["stopping"]["best_weights"][name], expected["best_weights"][name]), name


@pytest.mark.parametrize("left_out", ["early stopping's state", "Python's generator"])
def test_a_run_resumed_without_part_of_its_state_is_another_run(tmp_path, one_thread, left_out):
    """What save_run adds to the exercises' checkpoint is needed: resumed from load_checkpoint's part alone, early
    stopping starts counting again and runs past the straight run's stop; with Python's generator elsewhere, other
    batches are shifted and the weights differ."""
    straight = ch07.TrainingRun(**STOPS)
    straight.fit()
    killed = ch07.TrainingRun(**STOPS)
    killed.fit(path=tmp_path / "last.pt", last=4)
    resumed = ch07.TrainingRun(**STOPS)
    if left_out == "early stopping's state":
        start = ch07.load_checkpoint(tmp_path / "last.pt", resumed.model, resumed.optimizer, resumed.scheduler,
                                     resumed.generator, resumed.rng)
        random.setstate(torch.load(tmp_path / "last.pt", weights_only=True)["python_rng"])
        assert resumed.fit(start) > 5 and resumed.stopping.best_epoch != straight.stopping.best_epoch
    else:
        start = resumed.load(tmp_path / "last.pt")
        random.seed(0)
        resumed.fit(start)
        assert not all(torch.equal(a, b) for a, b in zip(resumed.model.parameters(), straight.model.parameters()))
