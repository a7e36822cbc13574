"""A small web app for drawing a digit and asking a model what it is.

The server is built on the standard library (``http.server.ThreadingHTTPServer``) around
an injectable predictor, so any model (the framework's, ONNX Runtime's, a stub in tests)
can sit behind it::

    predict_proba(images: float32 (N, 28, 28) in [0, 1]) -> (N, 10) probabilities

Routes: ``GET /`` (the page and its two static files), ``GET /healthz`` and
``POST /predict``, which takes ``{"width": W, "height": H, "pixels": [W*H greys 0..255]}``
(row-major, any background: dark ink on white is what the page sends), runs the shared
:func:`tinygrad_mnist.data.preprocess.mnist_style` and then the predictor, and answers
``{"digit": d, "probabilities": [10 floats], "preview": [784 greys 0..255],
"milliseconds": t}``; the preview is the 28x28 image the model saw (row-major). Every
error is a JSON ``{"error": message}`` with a 4xx status (500 only if the predictor
itself fails); no stack trace is ever sent.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np

from ..data.preprocess import mnist_style

#: ``images (N, 28, 28) float32 in [0, 1] -> (N, 10)`` class probabilities; must be thread-safe.
Predictor = Callable[[np.ndarray], np.ndarray]

MAX_SIDE = 512                        #: largest accepted width or height, in pixels
MAX_BODY_BYTES = 4 * MAX_SIDE ** 2 + 4096  #: room for MAX_SIDE**2 values of "255,"
REQUEST_TIMEOUT = 10.0                #: seconds a client may take to send its request
EMPTY_DRAWING = "Draw a digit first."
NUM_CLASSES = 10
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The only files served, by URL path: no path from a request ever reaches the file system.
STATIC_FILES: Dict[str, Tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'none'"),
}
log = logging.getLogger(__name__)


class RequestError(Exception):
    """A request the client must fix; ``status`` is the 4xx code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def parse_request(body: bytes) -> np.ndarray:
    """Validate a ``/predict`` body and return the drawing as ``uint8 (height, width)``.

    Raises :class:`RequestError` (400) naming what is wrong: not UTF-8 JSON, not an
    object, width/height not integers in 1..MAX_SIDE, pixels not a flat list of
    ``width*height`` numbers in 0..255."""
    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise RequestError(400, "the body must be UTF-8 encoded JSON") from None
    except (ValueError, RecursionError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply" \
            if isinstance(e, RecursionError) else str(e)
        raise RequestError(400, f"the body is not valid JSON: {reason}") from None
    if not isinstance(payload, dict):
        raise RequestError(400, 'expected a JSON object {"width": W, "height": H, "pixels": [...]}')
    sizes = []
    for key in ("width", "height"):
        value = payload.get(key)
        if type(value) is not int:  # noqa: E721 -- bool and float are not sizes
            raise RequestError(400, f'"{key}" must be an integer, got {_describe(value)}')
        if not 1 <= value <= MAX_SIDE:
            raise RequestError(400, f'"{key}" must be between 1 and {MAX_SIDE}, got {value}')
        sizes.append(value)
    width, height = sizes
    pixels = payload.get("pixels")
    if not isinstance(pixels, list):
        raise RequestError(400, f'"pixels" must be a list of numbers, got {_describe(pixels)}')
    if len(pixels) != width * height:
        raise RequestError(400, f'"pixels" must hold width*height = {width}*{height} = '
                                f"{width * height} values, got {len(pixels)}")
    if not all(type(v) is int or type(v) is float for v in pixels):
        bad = next(v for v in pixels if type(v) is not int and type(v) is not float)
        raise RequestError(400, f'"pixels" must hold only numbers, found {_describe(bad)}')
    try:
        grey = np.asarray(pixels, dtype=np.float64)
    except OverflowError:
        raise RequestError(400, '"pixels" must be greys in 0..255, found a huge number') from None
    if grey.size and not (grey.min() >= 0 and grey.max() <= 255):
        raise RequestError(400, f'"pixels" must be greys in 0..255, got values from '
                                f"{grey.min():g} to {grey.max():g}")
    return np.rint(grey).astype(np.uint8).reshape(height, width)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = json.dumps(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def predict_drawing(predict_proba: Predictor, drawing: np.ndarray) -> Dict[str, Any]:
    """Preprocess one drawing with ``mnist_style`` and run the predictor on it.

    Raises :class:`RequestError` (422) when the drawing has no ink."""
    try:
        image = mnist_style(drawing)
    except ValueError:
        raise RequestError(422, EMPTY_DRAWING) from None
    proba = np.asarray(predict_proba(image[None]), dtype=np.float64)
    if proba.shape != (1, NUM_CLASSES) or not np.isfinite(proba).all():
        raise RuntimeError(f"the predictor returned {proba.dtype} {proba.shape}; "
                           f"expected finite (1, {NUM_CLASSES}) probabilities")
    proba = proba[0]
    return {"digit": int(np.argmax(proba)),
            "probabilities": [round(float(p), 6) for p in proba],
            "preview": np.rint(image * 255).astype(np.uint8).ravel().tolist()}


class _Handler(BaseHTTPRequestHandler):
    """Request handler; the predictor lives on the server object (``self.server``)."""
    server: "DigitServer"
    server_version = "tinygrad-mnist"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 -- http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send_json(200, {"status": "ok"})
        elif path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            self._send(200, self.server.static(name), content_type,
                       {"Cache-Control": "no-cache"})
        elif path == "/predict":
            self._send_json(405, {"error": "use POST /predict"}, {"Allow": "POST"})
        else:
            self._send_json(404, {"error": f"not found: {path[:100]}"})

    def do_POST(self) -> None:  # noqa: N802
        started = time.perf_counter()
        body: Optional[bytes] = None
        try:
            if self.path.split("?", 1)[0] != "/predict":
                raise RequestError(404, f"not found: {self.path[:100]}")
            body = self._read_body()
            result = predict_drawing(self.server.predict_proba, parse_request(body))
        except RequestError as e:
            if body is None:  # an unread body must not be taken for the next request
                self.close_connection = True
            self._send_json(e.status, {"error": e.message})
            return
        except Exception:  # the predictor failed: log it here, tell the client nothing more
            log.exception("prediction failed")
            self._send_json(500, {"error": "the model failed to make a prediction"})
            return
        result["milliseconds"] = round(1000 * (time.perf_counter() - started), 1)
        self._send_json(200, result)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            raise RequestError(411, "send a Content-Length (chunked bodies are not accepted)")
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise RequestError(411, "a Content-Length header is required")
        try:
            length = int(length_header)
            if length < 0:
                raise ValueError
        except ValueError:
            raise RequestError(400, "Content-Length must be a non-negative integer") from None
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"the body is {length} bytes; at most {MAX_BODY_BYTES} "
                                    "are accepted")
        body = self.rfile.read(length)
        if len(body) != length:
            raise RequestError(400, "the body is shorter than its Content-Length")
        content_type = self.headers.get_content_type()
        if content_type != "application/json":  # also makes cross-site posts need CORS
            raise RequestError(415, f"Content-Type must be application/json, got {content_type}")
        return body

    # ------------------------------------------------------------------ responses
    def _send_json(self, status: int, payload: Dict[str, Any],
                   headers: Optional[Dict[str, str]] = None) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self._send(status, body, "application/json",
                   {"Cache-Control": "no-store", **(headers or {})})

    def _send(self, status: int, body: bytes, content_type: str,
              headers: Dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**_SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: Optional[str] = None,
                   explain: Optional[str] = None) -> None:
        """http.server's own errors (bad request line, huge headers...) as JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable request line: answer as 1.0
            self.request_version = "HTTP/1.0"
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self._send_json(code, {"error": message or phrase})

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- base signature
        if self.server.log_requests:
            super().log_message(format, *args)


class DigitServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` holding the predictor and the page's static files."""
    daemon_threads = True       # a hung client never blocks shutdown
    request_queue_size = 64

    def __init__(self, address: Tuple[str, int], predict_proba: Predictor,
                 log_requests: bool = True) -> None:
        self.predict_proba = predict_proba
        self.log_requests = log_requests
        self._static = {name: (STATIC_DIR / name).read_bytes()
                        for name, _ in set(STATIC_FILES.values())}
        self.address_family = _address_family(address[0])
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up is routine; anything else goes to the log, not stdout."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            log.exception("error while handling a request from %s", client_address[0])

    def static(self, name: str) -> bytes:
        """The bytes of one of the page's files (read once, at start-up)."""
        return self._static[name]

    @property
    def url(self) -> str:
        """``http://host:port/`` of the bound socket (the real port when 0 was asked for)."""
        host, port = self.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"


def make_server(predict_proba: Predictor, host: str = "127.0.0.1", port: int = 8000, *,
                log_requests: bool = True) -> DigitServer:
    """Bind (but do not start) the app: call ``serve_forever()`` on the result, or run it in
    a thread and ``shutdown()`` it. ``port=0`` picks a free port (see ``server.url``).
    ``predict_proba`` may be called from several threads at once."""
    if not callable(predict_proba):
        raise TypeError(f"predict_proba must be callable, got {type(predict_proba).__name__}")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    return DigitServer((host, int(port)), predict_proba, log_requests=log_requests)


def _address_family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name such as "localhost"
        return socket.AF_INET


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_predictor(run_dir: Union[str, os.PathLike]) -> Predictor:
    """The ``predict_proba`` of a run directory's best model (or an ``.npz`` checkpoint).

    Calls are serialised by a lock: the framework's grad mode is process-wide, so two
    threads inside ``no_grad()`` at once could leave it switched off or on."""
    from ..inference import load_trained
    trained = load_trained(run_dir)
    lock = threading.Lock()

    def predict_proba(images: np.ndarray) -> np.ndarray:
        with lock:
            return trained.predict_proba(images)
    return predict_proba


def serve_run(run_dir: Union[str, os.PathLike], host: str = "127.0.0.1",
              port: int = 8000) -> None:
    """``tinygrad-mnist serve RUN_DIR``: load the run's model and serve it until Ctrl+C."""
    serve(load_predictor(run_dir), host, port)


def serve(predict_proba: Predictor, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the app until Ctrl+C, printing its address. Raises OSError (with the address in
    its message) when the port cannot be bound."""
    try:
        server = make_server(predict_proba, host, port)
    except OSError as e:
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    if not is_loopback(host):
        print(f"warning: listening on {host}, reachable from other machines; "
              "there is no authentication", file=sys.stderr)
    print(f"Serving the digit demo on {server.url} (Ctrl+C to stop)", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
