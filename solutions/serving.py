"""A small prediction service for chapter 09: a FastAPI app around any digits classifier, run by uvicorn on loopback in
a thread that starts and stops cleanly, and a client that measures its latency.

The app has two routes. `POST /predict` takes {"images": [...]}, a batch of digits, each 64 pixel values or an 8 x 8
grid, in [0, 1] as `solutions.data.digits` scales them; it answers {"classes": [n ints], "probabilities": [n lists
of 10 floats]}. A body that is not JSON, has no "images", holds something other than numbers, has the wrong shape,
holds NaN or infinity, values outside [0, 1], or more than `max_batch` images, gets status 422 and {"detail": "..."}
saying which. `GET /health` answers {"status": "ok"}.

FastAPI and uvicorn (the `deploy` extra: pip install "nncourse[deploy]") are imported only when an app is made, so
this module imports without them. Nothing here listens beyond 127.0.0.1.
"""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np

MAX_BATCH = 256
PIXELS = 64
TIMEOUT_S = 10.0


class BadRequest(ValueError):
    """A request the service refuses; the message says what was wrong, for the 422 answer."""


def parse_images(body, max_batch: int = MAX_BATCH) -> np.ndarray:
    """The batch in a request's JSON body as a (n, 64) float32 array; BadRequest saying what is wrong otherwise."""
    if not isinstance(body, dict) or "images" not in body:
        raise BadRequest('the body must be a JSON object with a key "images": a list of digit images')
    images = body["images"]
    if not isinstance(images, list) or not images:
        raise BadRequest('"images" must be a non-empty list of images')
    if len(images) > max_batch:
        raise BadRequest(f"a batch of {len(images)} images is too large: at most {max_batch} per request")
    try:
        array = np.array(images, dtype=np.float64)
    except (TypeError, ValueError):
        raise BadRequest("every image must be a list of numbers, all of the same length "
                         "(64 pixels, or 8 rows of 8)") from None
    if array.dtype == object or not np.issubdtype(array.dtype, np.number) or \
            any(isinstance(v, bool) for v in _flat(images)):
        raise BadRequest("pixels must be numbers")
    if array.shape[1:] not in ((PIXELS,), (8, 8)):
        raise BadRequest(f"each image must have 64 pixels or 8 rows of 8; got shape {list(array.shape[1:])}")
    if not np.all(np.isfinite(array)):
        raise BadRequest("pixels must be finite: NaN or infinity found")
    if array.min() < 0 or array.max() > 1:
        raise BadRequest(f"pixels must lie in [0, 1]; found values from {array.min():g} to {array.max():g}")
    return array.reshape(len(array), PIXELS).astype(np.float32)


def _flat(items):
    for item in items:
        if isinstance(item, list):
            yield from _flat(item)
        else:
            yield item


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def create_app(predict_logits, max_batch: int = MAX_BATCH):
    """A FastAPI app serving `predict_logits`: (n, 64) float32 array -> (n, 10) logits (numpy or torch)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="digits", docs_url=None, redoc_url=None)

    # both endpoints are coroutines: FastAPI runs a plain `def` endpoint on a pool of worker threads that
    # outlive the server by seconds, and the service must be gone, threads included, when it is stopped
    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise BadRequest("the body is not valid JSON") from None
            images = parse_images(body, max_batch)
        except BadRequest as error:
            return JSONResponse(status_code=422, content={"detail": str(error)})
        logits = np.asarray(predict_logits(images), dtype=np.float64)
        probabilities = softmax(logits)
        return {"classes": probabilities.argmax(axis=1).tolist(), "probabilities": probabilities.round(6).tolist()}

    return app


class Service:
    """`with Service(app) as url:` runs `app` with uvicorn on 127.0.0.1 at a free port, in a thread, until the block
    ends; `url` is "http://127.0.0.1:PORT". Starting and stopping each wait at most `timeout` seconds, and the
    thread is gone when the block is left (RuntimeError otherwise)."""

    def __init__(self, app, timeout: float = TIMEOUT_S):
        self.app, self.timeout = app, timeout

    def __enter__(self) -> str:
        import uvicorn

        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        port = self.socket.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name=f"uvicorn-{port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + self.timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"the service did not start within {self.timeout} s")
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(self.timeout)
        self.socket.close()
        if self.thread.is_alive():
            raise RuntimeError(f"the service did not stop within {self.timeout} s")
        return False


def request(url: str, payload=None, timeout: float = TIMEOUT_S, raw: bytes | None = None):
    """GET `url` (no payload) or POST `payload` as JSON (or `raw` bytes as they are): (status, decoded JSON body)."""
    data = raw if raw is not None else (None if payload is None else json.dumps(payload).encode())
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def latency_percentiles(url: str, payload, requests: int = 200, timeout: float = TIMEOUT_S) -> dict:
    """p50, p95 and p99 of `requests` sequential POSTs of `payload` to `url`, in milliseconds, after 5 warm-up
    requests. Sequential from one client: a bounded load that measures one request's latency, not throughput."""
    for _ in range(5):
        request(url, payload, timeout)
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        status, _ = request(url, payload, timeout)
        times.append((time.perf_counter() - start) * 1e3)
        if status != 200:
            raise RuntimeError(f"the service answered {status}")
    p50, p95, p99 = np.percentile(times, [50, 95, 99])
    return {"p50": float(p50), "p95": float(p95), "p99": float(p99)}


def torch_logits(model):
    """(n, 64) float32 array -> logits array, by a torch model in eval mode without gradients, on the model's own
    device (a GPU's too): the batch goes to the device and dtype of the model's parameters (the CPU and torch's
    default dtype for a model without any, such as a dynamically quantized one), the logits come back to the CPU."""
    import torch

    model.eval()
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.get_default_dtype()

    def predict(images):
        with torch.inference_mode():
            return model(torch.from_numpy(images).to(device=device, dtype=dtype)).float().cpu().numpy()
    return predict


def onnx_logits(path: str):
    """(n, 64) float32 array -> logits array, by ONNX Runtime on the CPU, the model's first input fed the batch."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def predict(images):
        return session.run(None, {name: images})[0]
    return predict
