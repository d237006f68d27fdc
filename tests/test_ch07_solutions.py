"""Chapter 07's references: conv2d against torch's in float64, evaluate's mode and autograd, and its device (the
model's, on a simulated GPU), a checkpoint that resumes a training run bit for bit in a new process and from a file
saved on a (simulated) GPU, and torch.export's program against the eager CNN."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from solutions import ch07_training_run as ch07
from solutions import models
from solutions.common import make_deterministic
from tests.fixtures_threads import torch_globals_restored  # noqa: F401  (a fixture)

CONFIGS = [  # (N, C_in, C_out, H, W, kH, kW, stride, padding)
    (1, 1, 1, 5, 5, 3, 3, 1, 0),
    (2, 3, 4, 8, 8, 3, 3, 1, 1),
    (3, 2, 5, 9, 7, 3, 2, 2, 1),
    (2, 4, 2, 6, 11, 1, 1, 3, 0),
    (1, 2, 3, 4, 4, 5, 5, 1, 2),
    (2, 1, 6, 8, 8, 2, 2, 2, 0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
def test_conv2d_equals_torch_in_float64(config):
    n, c_in, c_out, h, w, kh, kw, stride, padding = config
    generator = torch.Generator().manual_seed(sum(config))
    x = torch.randn(n, c_in, h, w, dtype=torch.float64, generator=generator)
    weight = torch.randn(c_out, c_in, kh, kw, dtype=torch.float64, generator=generator)
    bias = torch.randn(c_out, dtype=torch.float64, generator=generator)
    for b in (bias, None):
        ours = ch07.conv2d(x.clone(), weight.clone(), b, stride=stride, padding=padding)
        theirs = F.conv2d(x, weight, b, stride=stride, padding=padding)
        assert ours.shape == theirs.shape and ours.dtype == torch.float64
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


def test_conv2d_keeps_float32_and_matches_a_conv_layer():
    layer = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
    x = torch.randn(2, 3, 8, 8)
    out = ch07.conv2d(x, layer.weight.detach(), layer.bias.detach(), stride=2, padding=1)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, layer(x).detach(), rtol=1e-5, atol=1e-5)


def test_evaluate_uses_eval_mode_no_autograd_and_restores_the_mode():
    model = models.digits_cnn(seed=1, dropout=0.5)
    seen = []
    model.register_forward_pre_hook(lambda module, inputs: seen.append((module.training, torch.is_grad_enabled())))
    x, y = torch.randn(10, 1, 8, 8), torch.arange(10)
    batches = [(x[:4], y[:4]), (x[4:8], y[4:8]), (x[8:], y[8:])]
    loss, accuracy = ch07.evaluate(model.train(), batches)
    assert model.training and set(seen) == {(False, False)}
    with torch.no_grad():
        scores = model.eval()(x)
    assert loss == pytest.approx(F.cross_entropy(scores, y).item(), rel=1e-6)
    assert accuracy == pytest.approx((scores.argmax(1) == y).float().mean().item())
    ch07.evaluate(model, batches)
    assert not model.training


def test_evaluate_moves_the_batches_to_the_models_device_and_leaves_the_model_there():
    """Through the check's driver, on a machine with a simulated GPU: the model on the GPU evaluates CPU batches as on
    the CPU, and a model on the CPU of that machine stays on the CPU."""
    from autograder.instructor.exercises import ch07 as exercises
    from autograder.learner import drivers

    args, probe = exercises._evaluation(True, (4, 3), seed=86)(), torch.cuda.is_available
    on_the_cpu = drivers.evaluated_in_a_mode(ch07.evaluate, args)
    for device in ("cuda", "cpu"):
        result, training, recording, where = drivers.evaluated_in_a_mode(ch07.evaluate, {**args, "device": device})
        assert where == device and training and not recording
        assert result == pytest.approx(on_the_cpu[0], rel=1e-12)
    assert torch.cuda.is_available is probe  # the machine as it was, afterwards


RESUME = """
import sys, torch
from solutions import ch07_training_run as ch07
torch.set_num_threads(1)
run = ch07.TrainingRun(seed=3)
torch.manual_seed(1234)  # elsewhere than the checkpoint's: load must put every generator back
run.generator.manual_seed(99)
run.rng = __import__("numpy").random.default_rng(99)
start = run.load(sys.argv[1])
run.train_epochs(start, run.epochs)
torch.save(run.model.state_dict(), sys.argv[2])
print(start)
"""


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the new process: the same float sums in the same order
    yield
    torch.set_num_threads(before)


def test_a_run_resumed_in_a_new_process_ends_with_the_same_weights_bit_for_bit(tmp_path, one_thread):
    straight = ch07.TrainingRun(seed=3)
    straight.train_epochs(0, straight.epochs)

    first_half = ch07.TrainingRun(seed=3)
    half = first_half.epochs // 2
    first_half.train_epochs(0, half)
    first_half.save(tmp_path / "checkpoint.pt", half - 1)
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(RESUME), str(tmp_path / "checkpoint.pt"),
                             str(tmp_path / "final.pt")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(half)
    resumed = torch.load(tmp_path / "final.pt", weights_only=True)
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed[name], value), name
    assert not torch.equal(resumed["0.weight"], models.digits_cnn(seed=3)[0].weight)  # it did train


def test_a_checkpoint_holds_state_dicts_and_every_generator(tmp_path):
    run = ch07.TrainingRun(seed=0, n_images=64, epochs=1)
    run.train_epochs(0, 1)
    run.save(tmp_path / "c.pt", 0)
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert tuple(sorted(saved)) == tuple(sorted(ch07.CHECKPOINT_KEYS))
    assert torch.equal(saved["torch_rng"], torch.get_rng_state())
    assert torch.equal(saved["loader_rng"], run.generator.get_state())
    assert saved["numpy_rng"] == run.rng.bit_generator.state and saved["epoch"] == 0


def test_a_checkpoint_saved_on_a_gpu_loads_on_a_machine_without_one(tmp_path, monkeypatch):
    """Simulated: torch.save tags every tensor with the device its storage is on; tagged "cuda:0", as a GPU run
    saves it, a plain torch.load on a machine without CUDA refuses the file, and load_checkpoint (map_location
    "cpu") resumes from it with the weights saved."""
    run = ch07.TrainingRun(seed=0, n_images=64, epochs=2)
    run.train_epochs(0, 1)
    with monkeypatch.context() as gpu:
        gpu.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        run.save(tmp_path / "c.pt", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="on a CUDA device"):
        torch.load(tmp_path / "c.pt", weights_only=True)
    fresh = ch07.TrainingRun(seed=1, n_images=64, epochs=2)
    assert fresh.load(tmp_path / "c.pt") == 1
    for name, value in run.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[name], value) and value.device.type == "cpu", name


def test_the_checks_gpu_checkpoint_is_refused_without_map_location_and_resumes_with_it():
    """The check's driver writes the file as a GPU run does and reads it on a machine without CUDA: load_checkpoint
    ends where a CPU checkpoint's resume ends, and a torch.load without map_location raises torch's own error."""
    from autograder.instructor.exercises import ch07 as exercises
    from autograder.learner import drivers

    args = exercises._run(94)()
    plain = drivers.resumed_from_a_checkpoint(ch07.load_checkpoint, args)
    from_a_gpu = drivers.resumed_from_a_checkpoint(ch07.load_checkpoint, {**exercises._run(94)(), "saved_on": "cuda"})
    assert from_a_gpu[0] == plain[0] == 2
    for name, value in plain[1].items():
        assert torch.equal(from_a_gpu[1][name], value), name

    namespace = {"torch": torch, "save_checkpoint": ch07.save_checkpoint}  # a notebook's, where the driver looks
    exec("def without_map_location(path, *run):\n    torch.load(path, weights_only=True)", namespace)
    with pytest.raises(RuntimeError, match="on a CUDA device but torch.cuda.is_available"):
        drivers.resumed_from_a_checkpoint(namespace["without_map_location"],
                                          {**exercises._run(94)(), "saved_on": "cuda"})


def test_shift_images_moves_each_image_by_its_own_shift_and_fills_zeros():
    images = torch.arange(2 * 16, dtype=torch.float32).reshape(2, 1, 4, 4) + 1
    rng = np.random.default_rng(0)
    shifts = np.random.default_rng(0).integers(-1, 2, size=(2, 2))
    out = ch07.shift_images(images, rng)
    for k, (dy, dx) in enumerate(shifts):
        expected = torch.roll(images[k], (int(dy), int(dx)), dims=(1, 2))
        if dy == 1:
            expected[:, 0] = 0
        if dy == -1:
            expected[:, -1] = 0
        if dx == 1:
            expected[:, :, 0] = 0
        if dx == -1:
            expected[:, :, -1] = 0
        assert torch.equal(out[k], expected)


def test_the_exported_cnn_gives_the_eager_models_outputs_for_any_batch_size(tmp_path, torch_globals_restored):
    make_deterministic(0)
    model = models.digits_cnn(seed=0).eval()
    batch = torch.export.Dim("batch", min=1, max=4096)
    exported = torch.export.export(model, (torch.randn(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, tmp_path / "cnn.pt2")
    loaded = torch.export.load(tmp_path / "cnn.pt2").module()
    for n in (1, 7, 300):
        x = torch.randn(n, 1, 8, 8)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=1e-6, atol=1e-6)
