"""Chapter 09's prediction service (solutions/serving.py), started on loopback in a thread and stopped: /health
answers, /predict gives the eager model's classes and probabilities, every malformed request gets a 422 that says
what was wrong, a body over the limit 413, the model runs off the event loop, latency percentiles need enough
requests, and nothing is left running. ONNX export, by the legacy exporter and by torch.export with onnxscript
(where it is installed): ONNX Runtime's outputs equal the eager model's."""
import socket
import threading
import time

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


def test_a_body_over_the_limit_gets_413_and_one_nested_too_deeply_422(model):
    """413 for a body over max_body_bytes, whether its Content-Length says so at once (then nothing of it is read)
    or it is read and dropped on the way; 422, not 500, for JSON nested deeper than Python's parser goes; and the
    service answers normally afterwards."""
    with serving.Service(serving.create_app(serving.torch_logits(model), max_body_bytes=10_000), timeout=10) as url:
        too_large = (413, {"detail": "the body is larger than the limit of 10000 bytes"})
        assert serving.request(f"{url}/predict", {"images": [[0.5] * 64] * 40}, timeout=5) == too_large
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:  # a gigabyte announced, none sent
            connection.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               b"Content-Length: 1000000000\r\n\r\n")
            assert connection.recv(4096).startswith(b"HTTP/1.1 413 ")
        deep = b'{"images": ' + b"[" * 4000 + b"]" * 4000 + b"}"
        assert serving.request(f"{url}/predict", raw=deep, timeout=5) == \
            (422, {"detail": "the body is nested too deeply to be a batch of images"})
        assert serving.request(f"{url}/predict", raw=b"[" * 100 + b"0" + b"]" * 100, timeout=5)[0] == 422
        assert serving.request(f"{url}/predict", {"images": [[0.5] * 64]}, timeout=5)[0] == 200


def slow_model(images):
    time.sleep(0.5)
    return np.zeros((len(images), 10))


@pytest.mark.parametrize("on_the_loop", [False, True], ids=["on its own thread", "on the event loop"])
def test_health_answers_while_the_model_computes_unless_it_runs_on_the_loop(on_the_loop):
    """The model on the app's own thread leaves the event loop free: /health answers within 0.25 s while a 0.5 s
    prediction runs. On the loop (on_the_loop=True, the way the chapter warns against) it waits for the prediction.
    The model's thread is gone with the service."""
    before = set(threading.enumerate())
    with serving.Service(serving.create_app(slow_model, on_the_loop=on_the_loop), timeout=10) as url:
        busy = threading.Thread(target=serving.request, args=(f"{url}/predict", {"images": [[0.5] * 64]}))
        busy.start()
        time.sleep(0.1)  # the prediction has started
        start = time.perf_counter()
        assert serving.request(f"{url}/health", timeout=5) == (200, {"status": "ok"})
        waited = time.perf_counter() - start
        busy.join()
    assert (waited > 0.3) if on_the_loop else (waited < 0.25), waited
    assert set(threading.enumerate()) <= before


def test_latency_percentiles_under_load_and_only_with_enough_requests(model):
    with serving.Service(serving.create_app(serving.torch_logits(model)), timeout=10) as url:
        found = serving.latency_percentiles(f"{url}/predict", {"images": [[0.5] * 64] * 4}, requests=40, clients=4,
                                            percentiles=(50, 75))
        assert set(found) == {"p50", "p75", "requests_per_s"} and 0 < found["p50"] <= found["p75"]
        with pytest.raises(ValueError, match="p99 of 200 requests would rest on 2 of them; ask for at least 1000"):
            serving.latency_percentiles(f"{url}/predict", {"images": [[0.5] * 64]}, requests=200, percentiles=(99,))


def test_the_dynamo_exporter_with_a_free_batch(model, tmp_path):
    """torch 2.13's default exporter (torch.export, then onnxscript) with dynamic_shapes, as the chapter uses it
    where onnxscript is installed: batches of other sizes than the example's run in ONNX Runtime."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    path = tmp_path / "digits.onnx"
    torch.onnx.export(model, (torch.zeros(2, 64),), str(path), input_names=["images"], output_names=["logits"],
                      dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch")},))
    X = digits()[1].astype(np.float32)
    with torch.no_grad():
        eager = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(serving.onnx_logits(path)(X), eager, rtol=1e-5, atol=1e-5)
