"""Chapter 07's references: conv2d against torch's in float64, evaluate's mode and autograd, and its device (the
model's, on a simulated GPU), a checkpoint's keys and a file saved on a (simulated) GPU, and torch.export's program
against the eager CNN. The whole run (early stopping, atomic saves, a resume in a new process) is in
tests/test_ch07_whole_run.py."""
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


def test_a_checkpoint_holds_state_dicts_and_every_generator(tmp_path):
    """save_checkpoint's file: the exercise's keys, state_dicts and generator states, the epoch as saved."""
    run = ch07.TrainingRun(seed=0, n_images=64, n_val=16, epochs=1)
    run.train_epoch()
    ch07.save_checkpoint(tmp_path / "c.pt", run.model, run.optimizer, run.scheduler, 0, run.generator, run.rng)
    saved = torch.load(tmp_path / "c.pt", weights_only=True)
    assert tuple(sorted(saved)) == tuple(sorted(ch07.CHECKPOINT_KEYS))
    assert torch.equal(saved["torch_rng"], torch.get_rng_state())
    assert torch.equal(saved["loader_rng"], run.generator.get_state())
    assert saved["numpy_rng"] == run.rng.bit_generator.state and saved["epoch"] == 0


def test_a_checkpoint_saved_on_a_gpu_loads_on_a_machine_without_one(tmp_path, monkeypatch):
    """Simulated: torch.save tags every tensor with the device its storage is on; tagged "cuda:0", as a GPU run
    saves it, a plain torch.load on a machine without CUDA refuses the file, and load_checkpoint (map_location
    "cpu") resumes from it with the weights saved."""
    run = ch07.TrainingRun(seed=0, n_images=64, n_val=16, epochs=2)
    run.fit(last=0)
    with monkeypatch.context() as gpu:
        gpu.setattr(torch.serialization, "location_tag", lambda storage: "cuda:0")
        run.save(tmp_path / "c.pt", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="on a CUDA device"):
        torch.load(tmp_path / "c.pt", weights_only=True)
    fresh = ch07.TrainingRun(seed=1, n_images=64, n_val=16, epochs=2)
    assert fresh.load(tmp_path / "c.pt") == 1
    for name, value in run.model.state_dict().items():
        assert torch.equal(fresh.model.state_dict()[name], value) and value.device.type == "cpu", name
    assert fresh.stopping.best_epoch == 0 and fresh.stopping.history == run.stopping.history
    assert all(value.device.type == "cpu" for value in fresh.stopping.best_weights.values())


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
    batch = torch.export.Dim("batch", min=1)  # no max: a max is checked on every call, and a larger batch refused
    exported = torch.export.export(model, (torch.randn(4, 1, 8, 8),), dynamic_shapes=({0: batch},))
    torch.export.save(exported, tmp_path / "cnn.pt2")
    loaded = torch.export.load(tmp_path / "cnn.pt2").module()
    for n in (1, 7, 300, 5000):
        x = torch.randn(n, 1, 8, 8)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), model(x), rtol=1e-6, atol=1e-6)

    capped = torch.export.export(model, (torch.randn(4, 1, 8, 8),),
                                 dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},)).module()
    with pytest.raises(Exception, match="4096"):
        capped(torch.randn(5000, 1, 8, 8))


def test_the_exported_dropout_is_a_no_op_that_decomposes_to_a_copy(torch_globals_restored):
    """What the chapter says of the exported graph: aten.dropout with train=False, which returns its input, and
    run_decompositions() turns into aten.clone."""
    import warnings

    model = models.digits_cnn(seed=0).eval()
    exported = torch.export.export(model, (torch.randn(4, 1, 8, 8),),
                                   dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))
    dropouts = [node for node in exported.graph.nodes if node.target is torch.ops.aten.dropout.default]
    assert len(dropouts) == 1 and dropouts[0].args[1:] == (0.25, False)
    x = torch.randn(3, 32, 4, 4)
    assert torch.equal(torch.ops.aten.dropout.default(x, 0.25, False), x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*LeafSpec", category=FutureWarning)
        core = exported.run_decompositions()
    targets = {node.target for node in core.graph.nodes if node.op == "call_function"}
    assert torch.ops.aten.clone.default in targets and not any("dropout" in str(t) for t in targets)


def checked(exercise_id, fn):
    """(passed, what the check printed) for `fn`."""
    import contextlib
    import io

    from autograder import check

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        passed = check(exercise_id, fn)
    return passed, output.getvalue()


def test_an_evaluate_that_averages_the_batches_accuracies_too_is_named():
    """Written as a learner writes it (a mean of per-batch figures, both of them): it fails, and the check names the
    mistake whose hint is about the accuracy as well, not the one about the loss alone."""
    def evaluate(model, loader):
        was_training = model.training
        model.eval()
        losses, accuracies = [], []
        with torch.no_grad():
            for x, y in loader:
                x, y = x.to(next(model.parameters()).device), y.to(next(model.parameters()).device)
                scores = model(x)
                losses.append(F.cross_entropy(scores, y).item())
                accuracies.append((scores.argmax(1) == y).float().mean().item())
        model.train(was_training)
        return sum(losses) / len(losses), sum(accuracies) / len(accuracies)

    passed, output = checked("ch07.evaluate", evaluate)
    assert not passed and "known mistake: loss and accuracy both as means of the batch means." in output


def test_a_conv2d_that_computes_in_float64_fails_on_float32_and_says_so():
    def conv2d(x, weight, bias=None, stride=1, padding=0):
        return ch07.conv2d(x.double(), weight.double(), None if bias is None else bias.double(), stride, padding)

    passed, output = checked("ch07.conv2d", conv2d)
    assert not passed and "✗ float32 in, float32 out" in output
    assert "known mistake: computed in float64 whatever x's dtype." in output


def test_torch_convolves_by_im2col_in_float64_on_the_cpu_and_by_onednn_in_float32():
    """What section 1 says of torch's own CPU convolution, for the chapter's second layer: float64 goes through
    _slow_conv2d_forward (unfold into columns, then one matrix product), float32 to oneDNN where torch has it."""
    from torch.profiler import profile

    def kernels(dtype):
        x, weight = torch.randn(64, 16, 8, 8, dtype=dtype), torch.randn(32, 16, 3, 3, dtype=dtype)
        with profile() as profiler:
            F.conv2d(x, weight, padding=1)
        return {event.key for event in profiler.key_averages()}

    assert "aten::_slow_conv2d_forward" in kernels(torch.float64)
    if torch.backends.mkldnn.is_available():
        assert "aten::mkldnn_convolution" in kernels(torch.float32)
