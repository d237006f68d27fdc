"""Chapter 09's prediction service (solutions/serving.py), started on loopback in a thread and stopped: /health
answers, /predict gives the eager model's classes and probabilities, every malformed request gets a 422 that says
what was wrong, and nothing is left running. ONNX export: ONNX Runtime's outputs equal the eager model's."""
import socket
import threading

import numpy as np
import pytest
import torch

from solutions import models, serving
from solutions.data import digits

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def model():
    return models.mlp([64, 32, 10], seed=4, dtype=torch.float32).eval()


def test_the_service_answers_refuses_what_is_malformed_and_stops_cleanly(model):
    X = digits()[1][:5].astype(np.float32)
    before = set(threading.enumerate())
    with serving.Service(serving.create_app(serving.torch_logits(model), max_batch=8), timeout=10) as url:
        assert serving.request(f"{url}/health", timeout=5) == (200, {"status": "ok"})
        status, answer = serving.request(f"{url}/predict", {"images": X.tolist()}, timeout=5)
        assert status == 200
        with torch.no_grad():
            probabilities = torch.softmax(model(torch.from_numpy(X)), dim=1).numpy()
        assert answer["classes"] == probabilities.argmax(axis=1).tolist()
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-6)
        grids = serving.request(f"{url}/predict", {"images": X.reshape(5, 8, 8).tolist()}, timeout=5)
        assert grids == (status, answer)
        refused = {
            "shape": ({"images": [[0.5] * 63]}, "64 pixels"),
            "type": ({"images": [["a"] * 64]}, "numbers"),
            "range": ({"images": [[2.0] * 64]}, "[0, 1]"),
            "size": ({"images": [[0.0] * 64] * 9}, "at most 8"),
            "key": ({"pixels": [[0.0] * 64]}, '"images"'),
            "empty": ({"images": []}, "non-empty"),
        }
        for why, (payload, words) in refused.items():
            status, answer = serving.request(f"{url}/predict", payload, timeout=5)
            assert status == 422 and words in answer["detail"], (why, answer)
        nan = b'{"images": [[NaN' + b', 0.0' * 63 + b']]}'
        assert serving.request(f"{url}/predict", raw=nan, timeout=5) == \
            (422, {"detail": "pixels must be finite: NaN or infinity found"})
        assert serving.request(f"{url}/predict", raw=b"{not json", timeout=5)[0] == 422
        port = int(url.rsplit(":", 1)[1])
    assert set(threading.enumerate()) <= before
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch 2.13 calls the TorchScript exporter legacy
def test_onnx_runtime_gives_the_eager_models_outputs(model, tmp_path):
    pytest.importorskip("onnxruntime")
    path = tmp_path / "digits.onnx"
    torch.onnx.export(model, (torch.zeros(1, 64),), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "batch"}}, dynamo=False)
    X = digits()[1].astype(np.float32)
    with torch.no_grad():
        eager = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(serving.onnx_logits(path)(X), eager, rtol=1e-5, atol=1e-5)


class _OnAnotherDevice(torch.nn.Module):
    """A model whose parameters are on the meta device, standing in for a GPU's: it checks where its input is and
    answers with CPU logits of that many rows (meta tensors hold no numbers to return)."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.empty(10, 64, device="meta", dtype=torch.float64))
        self.seen = []

    def forward(self, x):
        self.seen.append((x.device.type, x.dtype))
        return torch.zeros(len(x), 10, device="meta", dtype=x.dtype)


def test_the_logits_of_a_model_on_another_device_are_computed_there_and_come_back(monkeypatch):
    model = _OnAnotherDevice()
    images = np.zeros((3, 64), dtype=np.float32)
    moved = []
    real_to = torch.Tensor.to

    def to(tensor, *args, **kwargs):  # meta has no numbers: a tensor leaving it for the CPU is counted and made
        if tensor.device.type == "meta" and (kwargs.get("device") == "cpu" or "cpu" in map(str, args)):
            moved.append(tuple(tensor.shape))
            return torch.zeros(tensor.shape, dtype=tensor.dtype)
        return real_to(tensor, *args, **kwargs)
    monkeypatch.setattr(torch.Tensor, "to", to)
    monkeypatch.setattr(torch.Tensor, "cpu", lambda tensor: to(tensor, "cpu"))
    logits = serving.torch_logits(model)(images)
    assert model.seen == [("meta", torch.float64)] and moved == [(3, 10)]
    assert isinstance(logits, np.ndarray) and logits.shape == (3, 10)
