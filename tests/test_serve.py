"""The digit web app's HTTP server: routes, the /predict contract, input validation
(every bad request gets a 4xx JSON answer, never a stack trace), the real preprocessing
and a small model trained here on real MNIST, and concurrent requests (micro-batched).
More bad requests and connection faults: tests/test_bad_inputs.py."""
from __future__ import annotations

import functools
import http.client
import json
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np
import pytest

from tinygrad_mnist.app.serve import (EMPTY_DRAWING, MAX_BODY_BYTES, MAX_SIDE, RequestError,
                                  make_server, parse_request)

Predictor = Callable[[np.ndarray], np.ndarray]


# ---------------------------------------------------------------- helpers shared with test_browser
@functools.lru_cache(maxsize=None)
def mnist_test_set() -> Tuple[np.ndarray, np.ndarray]:
    """The real MNIST test images and labels; skips when TINYGRAD_MNIST_DATA is unset."""
    if not os.environ.get("TINYGRAD_MNIST_DATA"):
        pytest.skip("TINYGRAD_MNIST_DATA is not set: these tests need the real MNIST files")
    from tinygrad_mnist.data import load_mnist
    mnist = load_mnist(download=False)
    return mnist.test_images, mnist.test_labels


@functools.lru_cache(maxsize=None)
def tiny_mnist_predictor() -> Predictor:
    """A 784-32-10 ReLU MLP trained for 80 seeded SGD steps of 512 images on real MNIST
    (~90% test accuracy; few, large matrix products, so a busy machine slows it little),
    as a thread-safe ``predict_proba``."""
    if not os.environ.get("TINYGRAD_MNIST_DATA"):
        pytest.skip("TINYGRAD_MNIST_DATA is not set: these tests need the real MNIST files")
    from tinygrad_mnist.data import load_mnist
    mnist = load_mnist(download=False)
    x, y = mnist.train_images, mnist.train_labels
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, np.sqrt(2 / 784), (784, 32)).astype(np.float32)
    w2 = rng.normal(0, np.sqrt(1 / 32), (32, 10)).astype(np.float32)
    b1, b2 = np.zeros(32, np.float32), np.zeros(10, np.float32)
    batch = 512
    for _ in range(80):
        i = rng.integers(0, len(x), batch)
        xb = x[i].reshape(batch, 784).astype(np.float32) / 255
        h = np.maximum(xb @ w1 + b1, 0)
        g = _softmax(h @ w2 + b2)
        g[np.arange(batch), y[i]] -= 1
        g /= batch
        gh = (g @ w2.T) * (h > 0)
        for param, grad in ((w2, h.T @ g), (b2, g.sum(0)), (w1, xb.T @ gh), (b1, gh.sum(0))):
            param -= 0.5 * grad

    def predict_proba(images: np.ndarray) -> np.ndarray:
        h = np.maximum(images.reshape(len(images), 784) @ w1 + b1, 0)
        return _softmax(h @ w2 + b2)
    return predict_proba


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class running:
    """Context manager: the app on 127.0.0.1 and a free port, served from a thread."""

    def __init__(self, predict_proba: Predictor, **options: Any) -> None:
        self.server = make_server(predict_proba, port=0, log_requests=False, **options)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)

    def __enter__(self) -> "running":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return self.server.url


# ---------------------------------------------------------------- fixtures and local helpers
def stub_proba(images: np.ndarray) -> np.ndarray:
    """Always 82% "7"."""
    p = np.full((len(images), 10), 0.02)
    p[:, 7] = 0.82
    return p


@pytest.fixture
def app() -> Iterator[running]:
    with running(stub_proba) as a:
        yield a


def request(port: int, method: str, path: str, body: Optional[bytes] = None,
            headers: Optional[Dict[str, str]] = None) -> Tuple[int, Any, bytes]:
    """(status, headers (case-insensitive), body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def post(port: int, payload: Any, content_type: str = "application/json"
         ) -> Tuple[int, Dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    status, headers, data = request(port, "POST", "/predict", body,
                                    {"Content-Type": content_type})
    assert headers["Content-Type"] == "application/json"
    return status, json.loads(data)


def drawing(width: int = 40, height: int = 40) -> Dict[str, Any]:
    """Dark ink on white, as the page sends it: a vertical bar."""
    pixels = np.full((height, width), 255, dtype=np.int64)
    pixels[height // 5:-height // 5, width // 2 - 2:width // 2 + 2] = 0
    return {"width": width, "height": height, "pixels": pixels.ravel().tolist()}


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, half-close, return everything the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- routes
def test_page_and_static_files(app: running) -> None:
    status, headers, body = request(app.port, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert 'name="viewport"' in page and 'id="pad"' in page and 'id="predict"' in page
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "Python" not in headers["Server"]
    for path, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, body = request(app.port, "GET", path)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
    assert json.loads(request(app.port, "GET", "/healthz")[2]) == {"status": "ok"}


@pytest.mark.parametrize("path", ["/nope", "/../setup.cfg", "/static/../server.py",
                                  "/%2e%2e/server.py", "/server.py"])
def test_unknown_paths_are_404_json(app: running, path: str) -> None:
    status, headers, body = request(app.port, "GET", path)
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert "error" in json.loads(body)


def test_wrong_methods(app: running) -> None:
    status, headers, body = request(app.port, "GET", "/predict")
    assert status == 405 and headers["Allow"] == "POST" and "error" in json.loads(body)
    status, headers, body = request(app.port, "POST", "/", b"{}",
                                    {"Content-Type": "application/json"})
    assert status == 405 and "GET" in headers["Allow"] and "error" in json.loads(body)
    status, headers, body = request(app.port, "DELETE", "/predict")
    assert status == 405 and headers["Allow"] == "POST" and "error" in json.loads(body)


def test_binds_to_loopback_by_default() -> None:
    server = make_server(stub_proba, port=0, log_requests=False)
    try:
        assert server.server_address[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.server_close()
    with pytest.raises(TypeError, match="callable"):
        make_server("not a function", port=0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- the /predict contract
def test_predict_answers_digit_probabilities_and_preview(app: running) -> None:
    status, data = post(app.port, drawing())
    assert status == 200
    assert data["digit"] == 7
    assert data["probabilities"] == pytest.approx(stub_proba(np.zeros((1, 28, 28)))[0].tolist())
    preview = np.array(data["preview"])
    assert preview.shape == (784,) and preview.min() >= 0 and preview.max() == 255
    ink = preview.reshape(28, 28) > 0        # a centred vertical bar, light on black
    assert ink[:, 13:15].all(axis=1)[6:22].all() and not ink[:, :10].any()


def test_the_predictor_gets_the_mnist_style_image() -> None:
    """The drawing gets predict's steps, data.mnist_style (for a clean drawing: crop,
    fit into 20x20, centre by centre of mass)."""
    seen = []

    def spy(images: np.ndarray) -> np.ndarray:
        seen.append(images.copy())
        return stub_proba(images)
    from tinygrad_mnist.data import mnist_style
    with running(spy) as a:
        payload = drawing(60, 30)
        status, data = post(a.port, payload)
    assert status == 200 and len(seen) == 1
    (images,) = seen
    assert images.shape == (1, 28, 28) and images.dtype == np.float32
    expected = mnist_style(np.array(payload["pixels"], np.uint8).reshape(30, 60))
    np.testing.assert_array_equal(images[0], expected)
    np.testing.assert_array_equal(data["preview"], np.rint(expected * 255).ravel())


def test_a_photo_sent_as_pixels_gets_the_photo_steps() -> None:
    """A noisy photo under a light gradient gets predict's photo steps: its preview is
    the stroke on black, not the gradient as a grey block."""
    rng = np.random.default_rng(0)
    xx = np.mgrid[0:120, 0:160][1]
    photo = 190 + 50 * (xx / 160 - 0.5) + rng.normal(0, 6, (120, 160))
    photo[20:100, 75:87] = 40                                       # a dark stroke
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    seen = []

    def spy(images: np.ndarray) -> np.ndarray:
        seen.append(images.copy())
        return stub_proba(images)
    from tinygrad_mnist.data import mnist_style
    with running(spy) as a:
        status, data = post(a.port, {"width": 160, "height": 120,
                                     "pixels": photo.ravel().tolist()})
    assert status == 200
    np.testing.assert_array_equal(seen[0][0], mnist_style(photo))
    preview = np.array(data["preview"]).reshape(28, 28)
    assert (preview > 0).sum() < 150 and preview[:, :8].max() == 0   # a bar, no grey block


def test_empty_drawing_is_422_with_a_message(app: running) -> None:
    for grey in (255, 0, 128):
        blank = {"width": 20, "height": 20, "pixels": [grey] * 400}
        assert post(app.port, blank) == (422, {"error": EMPTY_DRAWING})


def test_float_pixels_and_light_ink_on_black_are_accepted(app: running) -> None:
    payload = drawing()
    payload["pixels"] = [255.0 - v for v in payload["pixels"]]
    assert post(app.port, payload)[0] == 200


# ---------------------------------------------------------------- bad requests
BAD_BODIES = {
    "not JSON": b"width=1",
    "truncated JSON": b'{"width": 2, ',
    "not UTF-8": b'{"width": "\xff"}',
    "a list": b"[1, 2, 3]",
    "a string": b'"7"',
    "NaN": b'{"width": 1, "height": 1, "pixels": [NaN]}',
    "Infinity": b'{"width": 1, "height": 1, "pixels": [Infinity]}',
    "1e400": b'{"width": 1, "height": 1, "pixels": [1e400]}',
    "a huge integer": b'{"width": 1, "height": 1, "pixels": [1' + b"0" * 400 + b"]}",
    "too many digits": b'{"width": 1, "height": 1, "pixels": [' + b"9" * 5000 + b"]}",
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
}
BAD_PAYLOADS = {
    "no width": {"height": 2, "pixels": [0] * 4},
    "width as string": {"width": "2", "height": 2, "pixels": [0] * 4},
    "width as bool": {"width": True, "height": 1, "pixels": [0]},
    "width as float": {"width": 2.0, "height": 2, "pixels": [0] * 4},
    "zero height": {"width": 2, "height": 0, "pixels": []},
    "negative width": {"width": -2, "height": -2, "pixels": [0] * 4},
    "too wide": {"width": MAX_SIDE + 1, "height": 1, "pixels": [0] * (MAX_SIDE + 1)},
    "too few pixels": {"width": 3, "height": 3, "pixels": [0] * 8},
    "too many pixels": {"width": 3, "height": 3, "pixels": [0] * 10},
    "nested pixels": {"width": 2, "height": 2, "pixels": [[0, 0], [0, 0]]},
    "pixels as string": {"width": 2, "height": 2, "pixels": "0000"},
    "pixels missing": {"width": 2, "height": 2},
    "a string pixel": {"width": 2, "height": 1, "pixels": [0, "255"]},
    "a null pixel": {"width": 2, "height": 1, "pixels": [0, None]},
    "a bool pixel": {"width": 2, "height": 1, "pixels": [0, True]},
    "a pixel above 255": {"width": 2, "height": 1, "pixels": [0, 256]},
    "a negative pixel": {"width": 2, "height": 1, "pixels": [0, -0.5]},
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_malformed_bodies_are_400(app: running, body: bytes) -> None:
    status, data = post(app.port, body)
    assert status == 400 and data["error"]
    assert "Traceback" not in data["error"]


@pytest.mark.parametrize("payload", BAD_PAYLOADS.values(), ids=BAD_PAYLOADS.keys())
def test_invalid_payloads_are_400_with_a_message(app: running, payload: Dict) -> None:
    status, data = post(app.port, payload)
    assert status == 400 and len(data) == 1 and 10 < len(data["error"]) < 200


def test_messages_name_the_problem() -> None:
    cases = {b'{"width": 3, "height": 3, "pixels": []}': "9 values, got 0",
             b'{"width": 600, "height": 3, "pixels": []}': f"between 1 and {MAX_SIDE}",
             b'{"width": 1, "height": 1, "pixels": [300]}': "0..255",
             b"{": "not valid JSON"}
    for body, fragment in cases.items():
        with pytest.raises(RequestError, match=fragment.replace(".", r"\.")) as info:
            parse_request(body)
        assert info.value.status == 400


def test_parse_request_returns_the_drawing() -> None:
    image = parse_request(b'{"width": 3, "height": 2, "pixels": [0, 1.4, 2, 3, 254.6, 255]}')
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image, [[0, 1, 2], [3, 255, 255]])


def test_wrong_content_type_is_415(app: running) -> None:
    status, data = post(app.port, drawing(), content_type="text/plain")
    assert status == 415 and "application/json" in data["error"]


def test_huge_body_is_413_without_being_read(app: running) -> None:
    """Only the headers are sent: the server must answer from Content-Length alone."""
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    answer = raw_exchange(app.port, head)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 413")
    assert b"at most" in rest.split(b"\r\n\r\n", 1)[1]


def test_huge_body_sent_whole_is_413(app: running) -> None:
    payload = b'{"width": 512, "height": 512, "pixels": [' + b"255.0000," * 300_000 + b"0]}"
    assert len(payload) > MAX_BODY_BYTES
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        conn.putrequest("POST", "/predict")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Content-Length", str(len(payload)))
        conn.endheaders()
        try:
            conn.send(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before reading it all: the answer is already there
        response = conn.getresponse()
        assert response.status == 413 and "error" in json.loads(response.read())
    finally:
        conn.close()


@pytest.mark.parametrize("headers, status", [
    ("Content-Length: abc\r\n", 400),
    ("Content-Length: -5\r\n", 400),
    ("", 411),
    ("Transfer-Encoding: chunked\r\n", 411),
])
def test_bad_or_missing_length_is_4xx(app: running, headers: str, status: int) -> None:
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"{headers}\r\n").encode()
    answer = raw_exchange(app.port, head + b"0\r\n\r\n")
    assert answer.startswith(f"HTTP/1.1 {status}".encode())
    assert b'{"error":' in answer


def test_garbage_request_line_is_answered_with_json(app: running) -> None:
    answer = raw_exchange(app.port, b"GET / \x00\x01nonsense\r\n\r\n")
    assert answer.split(b"\r\n")[0].endswith(b" 400 Bad Request")
    assert b'{"error":' in answer and b"Traceback" not in answer


def test_short_body_is_400_or_408_after_timeout() -> None:
    """A body shorter than its Content-Length: 400 at once if the client half-closes,
    408 at the request timeout if it just stops."""
    head = (b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{}")
    with running(stub_proba, request_timeout=0.5) as a:
        started = time.monotonic()
        answer = raw_exchange(a.port, head)
        assert answer.startswith(b"HTTP/1.1 400") and b"shorter" in answer
        assert time.monotonic() - started < 0.4
        with socket.create_connection(("127.0.0.1", a.port), timeout=5) as s:
            s.sendall(head)
            answer = s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408") and b'{"error":' in answer
        assert 0.4 < time.monotonic() - started < 5


def test_a_slow_client_is_dropped() -> None:
    with running(stub_proba, request_timeout=0.3) as a, \
            socket.create_connection(("127.0.0.1", a.port)) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\n")  # ...and never finishes its headers
        s.settimeout(5)
        started = time.monotonic()
        answer = s.recv(1024)
        assert answer.startswith(b"HTTP/1.1 408")  # told, then hung up on
        while answer:
            answer = s.recv(1024)
        assert time.monotonic() - started < 4
        assert post(a.port, drawing())[0] == 200  # and still serves others


@pytest.mark.parametrize("predictor", [
    lambda images: 1 / 0,
    lambda images: np.ones((1, 3)),
    lambda images: np.full((1, 10), np.nan),
], ids=["raises", "wrong shape", "NaN"])
def test_a_failing_predictor_is_500_without_details(predictor: Predictor,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with running(predictor) as a:
        status, data = post(a.port, drawing())
    assert status == 500 and data == {"error": "the model failed to make a prediction"}
    assert "prediction failed" in caplog.text   # the details stay in the server's log


# ---------------------------------------------------------------- concurrency
def test_concurrent_requests_share_a_forward_pass() -> None:
    """While the model works on one request, four more arrive: they are answered by one
    call of the predictor with all four drawings (micro-batching), each its own answer."""
    sizes: list = []
    first_started = threading.Event()

    def slow(images: np.ndarray) -> np.ndarray:
        sizes.append(len(images))
        if len(sizes) == 1:
            first_started.set()
            time.sleep(0.5)  # the others arrive meanwhile
        p = np.full((len(images), 10), 0.01)
        p[np.arange(len(images)), np.arange(len(images)) % 10] = 0.91
        return p
    results: list = []
    with running(slow) as a:
        first = threading.Thread(target=lambda: results.append(post(a.port, drawing())))
        first.start()
        assert first_started.wait(5)
        threads = [threading.Thread(target=lambda: results.append(post(a.port, drawing())))
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in [first, *threads]:
            t.join(10)
    assert [status for status, _ in results] == [200] * 5
    assert sizes == [1, 4]
    assert sorted(data["digit"] for _, data in results) == [0, 0, 1, 2, 3]


# ---------------------------------------------------------------- a real model on real digits
def as_drawing(image: np.ndarray, scale: int = 4) -> Dict[str, Any]:
    """An MNIST image as the page would send it: enlarged, dark ink on white."""
    big = 255 - np.kron(image, np.ones((scale, scale), dtype=np.uint8)).astype(np.int64)
    return {"width": big.shape[1], "height": big.shape[0], "pixels": big.ravel().tolist()}


def test_real_digits_through_http_and_in_parallel() -> None:
    """A model trained here on real MNIST reads real test digits sent as drawings, from
    eight client threads at once, and every answer is the one for its own image."""
    images, labels = mnist_test_set()
    predict_proba = tiny_mnist_predictor()
    n = 40
    answers: Dict[int, Tuple[int, Dict[str, Any]]] = {}
    with running(predict_proba) as a:
        def client(k: int) -> None:
            for i in range(k, n, 8):
                answers[i] = post(a.port, as_drawing(images[i]))
        threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert sorted(answers) == list(range(n))
    from tinygrad_mnist.data import mnist_style
    expected = predict_proba(np.stack([
        mnist_style(np.array(as_drawing(images[i])["pixels"], np.uint8).reshape(112, 112))
        for i in range(n)]))
    digits = np.array([answers[i][1]["digit"] for i in range(n)])
    assert all(status == 200 for status, _ in answers.values())
    np.testing.assert_allclose([answers[i][1]["probabilities"] for i in range(n)], expected,
                               atol=1e-6)   # rounded to 6 decimals in the JSON
    assert (digits == labels[:n]).mean() >= 0.85


# ---------------------------------------------------------------- loading a run
def test_load_predictor_serialises_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run's model is called one thread at a time (grad mode is process-wide), by the
    server's model thread and by any other."""
    from tinygrad_mnist.app import inference
    inside, most = [0], [0]

    class Trained:
        classes, image_shape = tuple("0123456789"), (1, 28, 28)

        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            inside[0] -= 1
            return stub_proba(images)
    loaded = []
    monkeypatch.setattr(inference, "load_trained", lambda path: loaded.append(path) or Trained())
    from tinygrad_mnist.app.serve import load_predictor
    predict_proba = load_predictor("some/run")
    assert [str(path) for path in loaded] == ["some/run"]
    with running(predict_proba) as a:
        threads = [threading.Thread(target=post, args=(a.port, drawing())) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert most == [1] and inside == [0]


def test_serve_names_an_address_in_use() -> None:
    from tinygrad_mnist.app.serve import serve
    with running(stub_proba) as a:
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{a.port}"):
            serve(stub_proba, port=a.port)


def test_keep_alive_after_errors(app: running) -> None:
    """One connection goes on serving after errors, whether their body was read (bad
    JSON) or not (an unknown path: the server skips the body)."""
    conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=10)
    try:
        json_type = {"Content-Type": "application/json"}
        conn.request("POST", "/predict", body=json.dumps(drawing()), headers=json_type)
        assert conn.getresponse().read() and conn.sock is not None
        conn.request("POST", "/predict", body=b"not json", headers=json_type)
        response = conn.getresponse()
        assert response.status == 400 and response.read()
        conn.request("POST", "/predict", body=json.dumps(drawing()), headers=json_type)
        response = conn.getresponse()
        assert response.status == 200 and response.read()
        conn.request("POST", "/elsewhere", body=b"{}", headers=json_type)
        response = conn.getresponse()
        assert response.status == 404 and response.read()
        conn.request("POST", "/predict", body=json.dumps(drawing()), headers=json_type)
        response = conn.getresponse()
        assert response.status == 200 and response.read()
    finally:
        conn.close()


# ---------------------------------------------------------------- image files
BOUNDARY = "----tinygrad-mnist-test-7MA4YWxkTrZu0gW"


def form(fields: Dict[str, bytes], boundary: str = BOUNDARY) -> Tuple[bytes, str]:
    """A multipart/form-data body with one file per field, and its Content-Type."""
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                    f'filename="{name}.png"\r\nContent-Type: image/png\r\n\r\n'.encode()
                    + data + b"\r\n" for name, data in fields.items())
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def picture_files(tmp_path: Any) -> Dict[str, Any]:
    """A clean drawing of a '7' (PNG) and a photo of one: tinted paper, a light gradient,
    noise, stored turned by 90 degrees with the EXIF tag that turns it back (JPEG)."""
    from PIL import Image, ImageDraw
    clean = Image.new("L", (120, 150), 255)
    ImageDraw.Draw(clean).line([(25, 30), (95, 30), (50, 125)], fill=0, width=11)
    clean.save(tmp_path / "seven.png")
    rng = np.random.default_rng(3)
    xx = np.mgrid[0:150, 0:120][1]
    grey = np.asarray(clean, np.float64) * 0.8 + 30 + 40 * (xx / 120 - 0.5)
    rgb = np.stack([grey, grey * 0.97, grey * 0.9], -1) + rng.normal(0, 5, (150, 120, 3))
    photo = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6   # "rotate 90 clockwise to view": stored turned the other way
    photo.transpose(Image.ROTATE_90).save(tmp_path / "photo.jpg", quality=88, exif=exif)
    return {"png": tmp_path / "seven.png", "jpeg": tmp_path / "photo.jpg"}


def small_model(tmp_path: Any) -> Any:
    """A checkpoint of a small untrained MLP (its probabilities differ from image to
    image in the third decimal: enough to tell two preprocessings apart)."""
    import dataclasses
    import tinygrad_mnist as tg
    from tinygrad_mnist.app.config import TrainConfig
    from tinygrad_mnist.models import build_model
    config = TrainConfig.from_dict({"hidden": [16]})
    tg.manual_seed(0)
    tg.save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
             "config": dataclasses.asdict(config), "stats": [0.13, 0.31], "epoch": 1,
             "val_acc": 0.5}, tmp_path / "model.npz")
    return tmp_path / "model.npz"


def test_an_image_file_gets_predicts_answer(tmp_path: Any) -> None:
    """The same file, sent as the body or as a form's "image" field, gets the digit and
    probabilities `tinygrad-mnist predict` gives it (EXIF applied, the same steps)."""
    from tinygrad_mnist.app.predict import predict
    from tinygrad_mnist.app.serve import load_predictor
    from tinygrad_mnist.data import load_image, mnist_style
    model = small_model(tmp_path)
    files = picture_files(tmp_path)
    with running(load_predictor(model)) as a:
        for kind, path in files.items():
            (expected,), _ = predict(model, [path], top=10)
            proba = np.zeros(10)
            for label, p in expected.top:
                proba[label] = p
            data = path.read_bytes()
            answers = [post(a.port, data, f"image/{kind}"), post(a.port, *form({"image": data}))]
            for status, answer in answers:
                assert status == 200, answer
                assert answer["digit"] == expected.top[0][0]
                np.testing.assert_allclose(answer["probabilities"], proba, atol=6e-7)
                seen = mnist_style(load_image(path, color=True))
                np.testing.assert_array_equal(answer["preview"], np.rint(seen * 255).ravel())
    turned = np.array(answers[0][1]["preview"]).reshape(28, 28)
    assert turned[4:9].sum() > turned[:, 4:9].sum()   # the 7's bar on top: EXIF applied


def bad_image_bodies() -> Dict[str, Tuple[bytes, str, int, str]]:
    """name: (body, Content-Type, status, a fragment of the message)."""
    import io
    from PIL import Image
    png, gif, blank = io.BytesIO(), io.BytesIO(), io.BytesIO()
    noise = np.random.default_rng(0).integers(0, 256, (60, 60), dtype=np.uint8)
    Image.fromarray(noise).save(png, format="PNG")   # its pixels are most of its bytes
    Image.new("L", (30, 30), 0).save(gif, format="GIF")
    Image.new("L", (30, 30), 255).save(blank, format="PNG")
    good = png.getvalue()
    return {
        "text as PNG": (b"this is not an image", "image/png", 400, "not a PNG or JPEG"),
        "an empty body": (b"", "image/jpeg", 400, "empty"),
        "a GIF as PNG": (gif.getvalue(), "image/png", 400, "not a PNG or JPEG"),
        "a truncated PNG": (good[:len(good) // 2], "image/png", 400, "broken image"),
        "a blank picture": (blank.getvalue(), "image/png", 422, "no digit found"),
        "the wrong field": (*form({"file": good}), 400, 'named "image"'),
        "no boundary": (form({"image": good})[0], "multipart/form-data", 400, "boundary"),
        "another boundary": (form({"image": good})[0], form({}, "other")[1], 400,
                             "malformed multipart"),
        "no closing line": (form({"image": good})[0][:-30], form({})[1], 400,
                            "malformed multipart"),
        "text in the field": (*form({"image": b"GIF89a?"}), 400, 'the "image" field is not'),
    }


BAD_IMAGES = bad_image_bodies()


@pytest.mark.parametrize("case", BAD_IMAGES.values(), ids=BAD_IMAGES.keys())
def test_bad_image_bodies_get_a_4xx_and_one_line(app: running, case: Tuple) -> None:
    body, content_type, status, fragment = case
    answer = post(app.port, body, content_type)
    assert answer[0] == status and fragment in answer[1]["error"], answer
    assert "\n" not in answer[1]["error"] and len(answer[1]["error"]) < 200


def test_too_many_pixels_is_413_before_decoding(app: running,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    from PIL import Image
    monkeypatch.setattr("tinygrad_mnist.app.serve.contract.MAX_IMAGE_PIXELS", 899)
    png = io.BytesIO()
    Image.new("L", (30, 30), 0).save(png, format="PNG")
    for body, content_type in ((png.getvalue(), "image/png"), form({"image": png.getvalue()})):
        status, data = post(app.port, body, content_type)
        assert status == 413 and "30x30 pixels, over the limit of 899" in data["error"]


def test_a_huge_image_body_is_413_from_its_length(app: running) -> None:
    head = (f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n").encode()
    assert raw_exchange(app.port, head).startswith(b"HTTP/1.1 413")


def test_the_form_parser_keeps_the_files_bytes() -> None:
    """Line breaks, dashes and a boundary-like line inside the file are its own bytes;
    the other fields are skipped."""
    from tinygrad_mnist.app.serve.contract import parse_form
    data = bytes(range(256)) + b"\r\n--" + BOUNDARY[:-1].encode() + b"\r\n\r\n\r" + b"\n" * 3
    body, content_type = form({"note": b"hello", "image": data})
    assert parse_form(body, content_type) == data
    quoted = content_type.replace(f"boundary={BOUNDARY}", f'boundary="{BOUNDARY}"')
    assert parse_form(body, quoted) == data


def test_the_documented_curl_lines(tmp_path: Any) -> None:
    """docs/serving.md's curl lines for seven.png, as written there, against a server."""
    import shlex
    import shutil
    import subprocess
    from pathlib import Path
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    doc = (Path(__file__).resolve().parent.parent / "docs" / "serving.md").read_text()
    lines = [shlex.split(line) for line in doc.splitlines()
             if line.startswith("curl ") and "seven.png" in line]
    assert len(lines) == 2 and any("-F" in line for line in lines)
    files = picture_files(tmp_path)
    with running(stub_proba) as a:
        for line in lines:
            line = [word.replace("seven.png", str(files["png"]))
                    .replace("http://127.0.0.1:8000/", a.url) for word in line]
            out = subprocess.run(line + ["-sS"], capture_output=True, timeout=30,
                                 check=True).stdout
            assert json.loads(out)["digit"] == 7
