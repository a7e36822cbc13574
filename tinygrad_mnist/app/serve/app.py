"""The digit app's HTTP server: a Starlette app on uvicorn, with the limits uvicorn leaves
to its users, and micro-batched predictions.

* Routes: ``GET /`` (the page and its two static files), ``GET /healthz`` and ``POST
  /predict`` (see :mod:`.contract`). Every answer but the page's files is JSON; every
  error is ``{"error": message}``: 4xx for what the client must fix, 500 only if the
  predictor fails (its traceback goes to the server's log, nothing to the client).
  The page's JSON drawing is prepared on the event loop; an image file is decoded and
  prepared on one thread of its own, one file at a time (which bounds the memory that
  large pictures take). A form post is a "simple" cross-site request that a browser
  sends without asking: /predict changes nothing, and without CORS headers the other
  site cannot read the answer.
* Limits, enforced on every connection: the request line and headers within
  ``REQUEST_TIMEOUT`` seconds of connecting (or of the previous answer) and at most
  ``MAX_HEADER_BYTES``; the body within ``REQUEST_TIMEOUT`` more seconds and at most
  ``MAX_BODY_BYTES`` (413 from its Content-Length alone); too slow gets 408, too big
  431/413, malformed HTTP (a bad request line, HTTP/0.9, two Content-Lengths, a
  Transfer-Encoding beside a Content-Length...) 400, and the connection is closed. An
  idle kept-alive connection is closed after ``KEEP_ALIVE_TIMEOUT`` seconds. A client
  that hangs up mid-request is dropped without a word in the log.
* Predictions are micro-batched (:class:`MicroBatcher`): requests that arrive while the
  model is busy, or within ``BATCH_WINDOW`` seconds of one another, go through one
  forward pass on one worker thread, so the predictor is never called from two
  threads at once and needs no lock.

``make_server(predict_proba, port=0)`` binds a socket and returns a
:class:`DigitServer`; ``serve_forever()`` runs it (in any thread), ``shutdown()`` stops
it from another, ``server_close()`` releases the socket.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import json
import logging
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http import HTTPStatus
from pathlib import Path
from typing import Any, AsyncIterator, Dict, Optional, Tuple

import numpy as np

from .contract import (JSON_TYPE, KEEP_ALIVE_TIMEOUT, MAX_BODY_BYTES, MAX_HEADER_BYTES,
                       MODEL_FAILED, REQUEST_TIMEOUT, Predictor, RequestError, answer,
                       body_kind, check_probabilities, parse_body, prepare_drawing)

try:  # the optional "deploy" packages
    import httptools
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError as missing:  # pragma: no cover -- said when a server is made
    _MISSING: Optional[ImportError] = missing
    HttpToolsProtocol = object  # type: ignore[assignment,misc]
else:
    _MISSING = None
try:
    from orjson import dumps as _dumps
except ImportError:  # pragma: no cover
    _dumps = None

BATCH_WINDOW = 0.002  #: seconds a lone request waits for others to share its forward pass
MAX_BATCH = 128       #: drawings in one forward pass at most
STATIC_DIR = Path(__file__).resolve().parent / "static"
#: The only files served, by URL path: no path from a request ever reaches the file system.
STATIC_FILES: Dict[str, Tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/style.css": ("style.css", "text/css; charset=utf-8"),
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": ("default-src 'self'; frame-ancestors 'none'; "
                                "base-uri 'none'; form-action 'none'"),
}
SERVER_NAME = "tinygrad-mnist"
log = logging.getLogger("tinygrad_mnist.app.serve")


def _require_deploy_packages() -> None:
    if _MISSING is not None:
        raise ImportError(f'the web app needs the optional packages starlette, uvicorn and '
                          f'httptools: pip install -e ".[deploy]" ({_MISSING})')


# ------------------------------------------------------------------ micro-batching
class MicroBatcher:
    """Collects the 28x28 images of concurrent requests and runs each batch through one
    ``predict_proba`` call on a single worker thread.

    A request waiting alone waits ``window`` seconds for company; requests arriving
    while a batch is being computed form the next one (up to ``max_batch``)."""

    def __init__(self, predict_proba: Predictor, window: float = BATCH_WINDOW,
                 max_batch: int = MAX_BATCH) -> None:
        self.predict_proba = predict_proba
        self.window, self.max_batch = window, max_batch
        self.queue: "asyncio.Queue[Tuple[np.ndarray, asyncio.Future]]" = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="tinygrad-mnist-model")
        self.task: Optional[asyncio.Task] = None

    async def predict(self, image: np.ndarray) -> Dict[str, Any]:
        """The answer for one 28x28 image (RuntimeError if the predictor fails)."""
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run())
        future = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((image, future))
        return answer(image, await future)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            if self.queue.empty() and self.window > 0:
                await asyncio.sleep(self.window)
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            batch = [(image, future) for image, future in batch if not future.done()]
            if not batch:
                continue
            images = np.stack([image for image, _ in batch])
            try:
                proba = await loop.run_in_executor(self.executor, self._compute, images)
            except Exception as e:  # noqa: BLE001 -- the predictor failed: every request hears
                for _, future in batch:
                    if not future.done():
                        future.set_exception(e)
                continue
            for (_, future), row in zip(batch, proba):
                if not future.done():  # else the client hung up meanwhile
                    future.set_result(row)

    def _compute(self, images: np.ndarray) -> np.ndarray:
        """On the worker thread: the batch's (N, 10) probabilities, checked."""
        return check_probabilities(self.predict_proba(images), len(images))

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)


# ------------------------------------------------------------------ the app
def _json(status: int, payload: Dict[str, Any], headers: Optional[Dict[str, str]] = None
          ) -> "Response":
    all_headers = {**SECURITY_HEADERS, "Cache-Control": "no-store", **(headers or {})}
    if _dumps is None:  # pragma: no cover
        return JSONResponse(payload, status, headers=all_headers)
    return Response(_dumps(payload), status, headers=all_headers,
                    media_type="application/json")


def build_app(predict_proba: Predictor, log_requests: bool = False,
              on_ready: Optional[Any] = None) -> "Starlette":
    """The Starlette app around `predict_proba` (micro-batched; see the module docstring);
    `on_ready()` is called once it runs (Ctrl+C is handled from then on)."""
    _require_deploy_packages()
    static = {name: (STATIC_DIR / name).read_bytes() for name, _ in set(STATIC_FILES.values())}
    state: Dict[str, Any] = {}

    async def page(request: "Request") -> "Response":
        name, content_type = STATIC_FILES[request.url.path]
        return Response(static[name], 200, media_type=content_type,
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    async def healthz(request: "Request") -> "Response":
        return _json(200, {"status": "ok"})

    async def predict(request: "Request") -> "Response":
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            body, content_type = await _read_body(request)
            if body_kind(content_type) == JSON_TYPE:   # the page's drawing: quick, done here
                image = prepare_drawing(parse_body(body, content_type))
            else:  # a file: decoded and prepared on a thread of its own, one at a time
                image = await loop.run_in_executor(state["files"], _prepare_file, body,
                                                   content_type)
            result = await state["batcher"].predict(image)
        except RequestError as e:
            return _json(e.status, {"error": e.message},
                         {"Connection": "close"} if e.status in (411, 413) else None)
        except ClientDisconnect:  # the client hung up (or timed out) mid-body
            return Response(status_code=400)
        except Exception:  # noqa: BLE001 -- the predictor failed: log here, tell nothing more
            log.exception("prediction failed")
            return _json(500, {"error": MODEL_FAILED})
        result["milliseconds"] = round(1000 * (loop.time() - started), 1)
        return _json(200, result)

    async def not_found(request: "Request", exc: Exception) -> "Response":
        return _json(404, {"error": f"not found: {request.url.path[:100]}"})

    async def not_allowed(request: "Request", exc: Exception) -> "Response":
        allow = "POST" if request.url.path == "/predict" else "GET, HEAD"
        return _json(405, {"error": f"use {allow.split(',')[0]} {request.url.path[:100]}"},
                     {"Allow": allow})

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        state["batcher"] = MicroBatcher(predict_proba)
        state["files"] = ThreadPoolExecutor(1, thread_name_prefix="tinygrad-mnist-files")
        gc.freeze()  # the model and the libraries: never again scanned by the collector
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            state["batcher"].close()
            state["files"].shutdown(wait=False, cancel_futures=True)

    routes = [Route(path, page, methods=["GET"]) for path in STATIC_FILES]
    routes += [Route("/healthz", healthz, methods=["GET"]),
               Route("/predict", predict, methods=["POST"])]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_allowed})

    async def fast_predict(scope: Dict[str, Any], receive: Any, send: Any) -> None:
        response = await predict(Request(scope, receive))
        await response(scope, receive, send)
    app = _PredictFirst(app, fast_predict)  # type: ignore[assignment]
    if log_requests:
        return _AccessLog(app)  # type: ignore[return-value]
    return app


class _PredictFirst:
    """POST /predict straight to its endpoint (which answers every error itself), the
    rest through Starlette's routing and middleware, which the hot path can do without."""

    def __init__(self, app: Any, predict: Any) -> None:
        self.app, self.predict = app, predict

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if (scope["type"] == "http" and scope["path"] == "/predict"
                and scope["method"] == "POST"):
            await self.predict(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _prepare_file(body: bytes, content_type: str) -> np.ndarray:
    """An image file's body (or a form holding one) as the 28x28 image the model sees."""
    return prepare_drawing(parse_body(body, content_type))


async def _read_body(request: "Request") -> Tuple[bytes, str]:
    """The request's body and Content-Type, checked against the contract's limits and
    body types before the body is read."""
    headers = request.headers
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise RequestError(411, "send a Content-Length (chunked bodies are not accepted)")
    lengths = headers.getlist("content-length")
    if not lengths:
        raise RequestError(411, "a Content-Length header is required")
    try:
        length = int(lengths[0])
        if length < 0 or not lengths[0].strip().isdigit():
            raise ValueError
    except ValueError:
        raise RequestError(400, "Content-Length must be a non-negative integer") from None
    if length > MAX_BODY_BYTES:
        raise RequestError(413, f"the body is {length} bytes; at most {MAX_BODY_BYTES} are "
                                "accepted")
    content_type = headers.get("content-type", "")
    body_kind(content_type)  # 415 for another type, before the body is read
    return await request.body(), content_type


class _AccessLog:
    """One line per request on stderr: client, method, path, status."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def logged(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                client = (scope.get("client") or ("-",))[0]
                print(f'{client} "{scope["method"]} {scope["path"][:100]}" '
                      f'{message["status"]}', file=sys.stderr, flush=True)
            await send(message)
        await self.app(scope, receive, logged)


# ------------------------------------------------------------------ the connection limits
class _Stop(Exception):
    """Raised in a parser callback to stop parsing a connection that was answered."""


class LimitedProtocol(HttpToolsProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's httptools connection with the limits uvicorn leaves out: a deadline for
    the request line and headers, and again for the body (408, then closed), a cap on
    the headers' size (431), HTTP/1.0 and 1.1 only, and malformed requests answered as
    JSON 400s without a warning in the log. The deadline is `config.request_timeout`."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_bytes = 0        # bytes received while its headers were incomplete
        self.head_size = 0         # bytes of its request line and headers
        self.in_head = True        # its headers are not complete yet
        self.first_line = b""      # its request line, until its end is seen
        self.eof = False           # the client has half-closed the connection
        self.pending: Optional[Tuple[int, str]] = None  # an error to answer after this answer
        self.deadline: Optional[asyncio.TimerHandle] = None
        self._arm()

    def _arm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
        self.deadline = self.loop.call_later(self.config.request_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def _timed_out(self) -> None:
        self.deadline = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete and not self.in_head:
            cycle.disconnected = True  # the app's receive() now says http.disconnect
            cycle.message_event.set()
            if cycle.response_started:
                self.transport.close()
                return
        if self.head_bytes or not self.in_head:
            self.reply_and_close(408, f"the request did not arrive within "
                                      f"{self.config.request_timeout:g} s", now=True)
        else:
            self.transport.close()  # a connection that never said anything

    def data_received(self, data: bytes) -> None:
        if self.in_head:
            self.head_bytes += len(data)
            if b"\n" not in self.first_line:
                self.first_line = (self.first_line + data)[:MAX_HEADER_BYTES]
                if b"\n" in self.first_line and b" HTTP/" not in self.first_line.split(b"\n")[0]:
                    self.reply_and_close(400, "malformed request line: expected METHOD PATH "
                                              "HTTP/1.1")
                    return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass  # no protocol upgrades here: the request is answered as a plain one
        except httptools.HttpParserError as e:
            self.reply_and_close(400, f"malformed HTTP request: {e}")
            return
        if self.in_head and self.head_bytes > MAX_HEADER_BYTES:
            self.reply_and_close(431, f"the request line and headers exceed "
                                      f"{MAX_HEADER_BYTES} bytes")

    def on_message_begin(self) -> None:
        self.head_size = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.head_size += len(url)
        if self.head_size > MAX_HEADER_BYTES:
            self.reply_and_close(431, f"the request line and headers exceed "
                                      f"{MAX_HEADER_BYTES} bytes")
            raise _Stop
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > MAX_HEADER_BYTES:
            self.reply_and_close(431, f"the request line and headers exceed "
                                      f"{MAX_HEADER_BYTES} bytes")
            raise _Stop
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        version = self.parser.get_http_version()
        if version not in ("1.0", "1.1"):
            self.reply_and_close(505, f"HTTP/{version} is not supported; use HTTP/1.1")
            raise _Stop  # stops the parser: the rest of the data is not read
        self._arm()  # a fresh deadline for the body
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.pending is not None:
            self.reply_and_close(*self.pending)
        elif self.eof and not self.pipeline:
            self.transport.close()  # the client has said all it will
        if not self.transport.is_closing():
            self.head_bytes, self.head_size, self.in_head, self.first_line = 0, 0, True, b""
            self._arm()  # the next request's headers

    def eof_received(self) -> Optional[bool]:
        """The client half-closed: answer what it did send, then close (decided once the
        app has seen the request, so that an answer from its headers alone goes first)."""
        self.eof = True
        self.loop.call_soon(self._after_eof)
        return True  # keep the connection open for the answer

    def _after_eof(self) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self.in_head and self.head_bytes:
            self.reply_and_close(400, "the connection was closed in the middle of the "
                                      "request's headers", now=True)
        elif cycle is not None and not cycle.response_complete and cycle.more_body:
            self.reply_and_close(400, "the body is shorter than its Content-Length", now=True)
        elif cycle is None or cycle.response_complete:
            self.transport.close()
        # else: an answer is being computed; on_response_complete closes after it

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self._disarm()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self.reply_and_close(400, "malformed HTTP request")

    def reply_and_close(self, status: int, message: str, now: bool = False) -> None:
        """Answer `status` with a JSON error outside any request cycle, then close. An
        error in a later (pipelined) request waits for the current request's answer,
        unless `now`, or the current request itself is incomplete."""
        self._disarm()
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not now and not cycle.more_body:  # about a later request: answer this one first
                self.pending = (status, message)
                self.flow.pause_reading()
                return
            if cycle.response_started:  # an answer is already under way: just close
                self.transport.close()
                return
            cycle.disconnected = True
            cycle.message_event.set()
        body = json.dumps({"error": message}, separators=(",", ":")).encode()
        head = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}", f"Server: {SERVER_NAME}",
                "Content-Type: application/json", f"Content-Length: {len(body)}",
                "Cache-Control: no-store", "Connection: close",
                *(f"{name}: {value}" for name, value in SECURITY_HEADERS.items())]
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        self.transport.close()


# ------------------------------------------------------------------ the server
class DigitServer:
    """The app bound to a listening socket (made by :func:`make_server`)."""

    def __init__(self, address: Tuple[str, int], predict_proba: Predictor,
                 log_requests: bool = True, request_timeout: float = REQUEST_TIMEOUT,
                 on_ready: Optional[Any] = None) -> None:
        _require_deploy_packages()
        self.predict_proba = predict_proba
        self.socket = _listen(address)
        self.server_address = self.socket.getsockname()[:2]
        config = uvicorn.Config(
            build_app(predict_proba, log_requests, on_ready), http=LimitedProtocol,
            lifespan="on",
            log_config=None, access_log=False, server_header=False, date_header=True,
            headers=[("Server", SERVER_NAME)], timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
            timeout_graceful_shutdown=2, backlog=1024, ws="none")
        config.request_timeout = request_timeout  # read by LimitedProtocol
        self.uvicorn = uvicorn.Server(config)
        self._stopped = threading.Event()
        self._stopped.set()

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown` (from another thread) or Ctrl+C (in the main
        thread: KeyboardInterrupt is raised after a graceful stop)."""
        self._stopped.clear()
        self.uvicorn.should_exit = False
        try:
            self.uvicorn.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait until it has returned."""
        self.uvicorn.should_exit = True
        self._stopped.wait(10)

    def server_close(self) -> None:
        """Release the listening socket."""
        self.socket.close()

    @property
    def url(self) -> str:
        """``http://host:port/`` of the bound socket (the real port when 0 was asked for)."""
        host, port = self.server_address[:2]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}/"


def _listen(address: Tuple[str, int]) -> socket.socket:
    host, port = address
    family = _address_family(host)
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


def _address_family(host: str) -> int:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a name such as "localhost"
        return socket.AF_INET


def make_server(predict_proba: Predictor, host: str = "127.0.0.1", port: int = 8000, *,
                log_requests: bool = True, request_timeout: float = REQUEST_TIMEOUT,
                on_ready: Optional[Any] = None) -> DigitServer:
    """Bind (but do not start) the app: call ``serve_forever()`` on the result, or run it
    in a thread and ``shutdown()`` it. ``port=0`` picks a free port (see ``server.url``).
    ``predict_proba`` is called from one worker thread, with batches of drawings;
    ``on_ready()``, if given, once the server runs."""
    if not callable(predict_proba):
        raise TypeError(f"predict_proba must be callable, got {type(predict_proba).__name__}")
    if not 0 <= int(port) <= 65535:
        raise ValueError(f"port must be in 0..65535, got {port}")
    return DigitServer((host, int(port)), predict_proba, log_requests=log_requests,
                       request_timeout=request_timeout, on_ready=on_ready)
