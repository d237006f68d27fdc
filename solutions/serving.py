"""A small prediction service for chapter 09: a FastAPI app around any digits classifier, run by uvicorn on loopback in
a thread that starts and stops cleanly, and a client that measures its latency.

The app has two routes. `POST /predict` takes {"images": [...]}, a batch of digits, each 64 pixel values or an 8 x 8
grid, in [0, 1] as `solutions.data.digits` scales them; it answers {"classes": [n ints], "probabilities": [n lists
of 10 floats]}. A body larger than `max_body_bytes` gets status 413 and is never held whole; a body that is not
JSON or is nested too deeply to parse, has no "images", holds something other than numbers, has the wrong shape,
holds NaN or infinity, values outside [0, 1], or more than `max_batch` images, gets status 422; both with
{"detail": "..."} saying which. `GET /health` answers {"status": "ok"}.

The model runs on a thread of the app's own, not on the event loop, so that the loop goes on reading requests and
answering /health while it computes (`on_the_loop=True` runs it in the coroutine, to show what that costs).

FastAPI and uvicorn (the `deploy` extra: pip install "nncourse[deploy]") are imported only when an app is made, so
this module imports without them. Nothing here listens beyond 127.0.0.1.
"""

import asyncio
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MAX_BATCH = 256
MAX_BODY_BYTES = 2**20  # 256 images of 64 pixels written with 17 significant digits take about 330 kB
DRAIN_FACTOR = 8  # a body over the limit is read and dropped up to this many times the limit, then refused unread
PIXELS = 64
TIMEOUT_S = 10.0
TAIL_SAMPLES = 10  # a percentile p is reported only with at least this many requests slower than it


class BadRequest(ValueError):
    """A request the service refuses; the message says what was wrong, for the 422 answer."""


class TooLarge(ValueError):
    """A body over the size limit; the message says the limit, for the 413 answer."""


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


def create_app(predict_logits, max_batch: int = MAX_BATCH, max_body_bytes: int = MAX_BODY_BYTES,
               on_the_loop: bool = False):
    """A FastAPI app serving `predict_logits`: (n, 64) float32 array -> (n, 10) logits (numpy or torch).

    An `async def` endpoint runs on the server's event loop, the one thread that reads every request: while it
    computes, no other request is read and /health does not answer. So the model runs on one worker thread of the
    app's own (app.state.executor, which `Service` shuts down with the server), awaited by the endpoint, and the
    loop stays free; torch releases Python's lock while its kernels run. One thread, because torch already spreads
    one call over the CPU's cores: two calls at once would only compete for them. With on_the_loop=True the model
    runs in the coroutine itself, blocking the loop (to measure what that costs)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(title="digits", docs_url=None, redoc_url=None)
    app.state.executor = None if on_the_loop else ThreadPoolExecutor(1, thread_name_prefix="digits-model")

    # both endpoints are coroutines: FastAPI runs a plain `def` endpoint on a pool of worker threads that
    # outlive the server by seconds, and the service must be gone, threads included, when it is stopped
    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.post("/predict")
    async def predict(request: Request):
        try:
            raw = await read_body(request, max_body_bytes)
            try:
                body = json.loads(raw)
            except ValueError:
                raise BadRequest("the body is not valid JSON") from None
            except RecursionError:
                raise BadRequest("the body is nested too deeply to be a batch of images") from None
            images = parse_images(body, max_batch)
        except TooLarge as error:
            return JSONResponse(status_code=413, content={"detail": str(error)})
        except BadRequest as error:
            return JSONResponse(status_code=422, content={"detail": str(error)})
        if app.state.executor is None:
            logits = predict_logits(images)
        else:
            logits = await asyncio.get_running_loop().run_in_executor(app.state.executor, predict_logits, images)
        probabilities = softmax(np.asarray(logits, dtype=np.float64))
        return {"classes": probabilities.argmax(axis=1).tolist(), "probabilities": probabilities.round(6).tolist()}

    return app


async def read_body(request, max_body_bytes: int) -> bytes:
    """The request's body, read as it arrives; TooLarge when it is longer than `max_body_bytes`. Past the limit the
    rest is read and dropped, never kept, so that a client still sending gets the answer 413, not a connection
    closed under it; a body whose Content-Length says more than DRAIN_FACTOR times the limit is refused at once,
    before any of it is read."""
    limit = f"the body is larger than the limit of {max_body_bytes} bytes"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > DRAIN_FACTOR * max_body_bytes:
        raise TooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > DRAIN_FACTOR * max_body_bytes:
            raise TooLarge(limit)
        if size <= max_body_bytes:
            chunks.append(chunk)
        else:
            chunks.clear()  # over the limit: read on, keep nothing
    if size > max_body_bytes:
        raise TooLarge(limit)
    return b"".join(chunks)


class Service:
    """`with Service(app) as url:` runs `app` with uvicorn on 127.0.0.1 at a free port, in a thread, until the block
    ends; `url` is "http://127.0.0.1:PORT". Starting and stopping each wait at most `timeout` seconds, and the
    thread is gone when the block is left (RuntimeError otherwise), the app's model thread with it: an app made by
    `create_app` serves in one Service."""

    def __init__(self, app, timeout: float = TIMEOUT_S):
        self.app, self.timeout = app, timeout

    def __enter__(self) -> str:
        import uvicorn

        # IPPROTO_TCP named: asyncio then sends each answer at once (TCP_NODELAY) on the connections it accepts,
        # which it does only for sockets that say they are TCP
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
        executor = getattr(getattr(self.app, "state", None), "executor", None)
        if executor is not None:
            executor.shutdown(wait=True)  # the model's thread goes with the server
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


def latency_percentiles(url: str, payload, requests: int = 200, clients: int = 1, percentiles=(50, 95),
                        timeout: float = TIMEOUT_S) -> dict:
    """Latency of `requests` POSTs of `payload` to `url` sent by `clients` clients at once (threads, each on one
    kept-alive connection, each after 5 warm-up requests), in milliseconds: {"p50": ..., ..., "requests_per_s": ...}.

    One client measures one request's latency with nothing else waiting; several measure it under load, where a
    request also waits for the others. A percentile p rests on the requests slower than it, requests · (1 − p/100)
    of them: each asked for needs at least TAIL_SAMPLES (p99 needs 1000 requests), else ValueError."""
    for p in percentiles:
        if requests * (100 - p) / 100 < TAIL_SAMPLES:
            raise ValueError(f"p{p} of {requests} requests would rest on {requests * (100 - p) / 100:g} of them; ask "
                             f"for at least {int(np.ceil(TAIL_SAMPLES * 100 / (100 - p)))} requests")
    body = json.dumps(payload).encode()
    times, errors = [], []
    shares = [requests // clients + (i < requests % clients) for i in range(clients)]
    started = threading.Barrier(clients + 1)

    def client(count):
        try:
            with _Connection(url, timeout) as connection:
                for _ in range(5):
                    connection.post(body)
                started.wait()
                for _ in range(count):
                    begin = time.perf_counter()
                    connection.post(body)
                    times.append((time.perf_counter() - begin) * 1e3)
        except Exception as error:  # reported below, in the caller's thread
            errors.append(error)
            started.abort()

    threads = [threading.Thread(target=client, args=(count,), name=f"client-{i}") for i, count in enumerate(shares)]
    for thread in threads:
        thread.start()
    try:
        started.wait()
    except threading.BrokenBarrierError:
        pass
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}") from errors[0]
    found = {f"p{p}": float(v) for p, v in zip(percentiles, np.percentile(times, percentiles))}
    return {**found, "requests_per_s": requests / elapsed}


class _Connection:
    """One kept-alive HTTP connection to the host of `url`, posting JSON bodies to its path; RuntimeError unless the
    answer is 200."""

    def __init__(self, url: str, timeout: float):
        parts = urllib.parse.urlsplit(url)
        self.path = parts.path or "/"
        self.connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        self.connection.connect()
        # each request leaves at once, not held back to be joined with more (Nagle's algorithm, which with the
        # server's delayed acknowledgement can hold a small request for tens of milliseconds)
        self.connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.connection.close()
        return False

    def post(self, body: bytes):
        self.connection.request("POST", self.path, body=body, headers={"Content-Type": "application/json"})
        answer = self.connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"the service answered {answer.status}")


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
