"""Serving a model: the digit web app's entry points. The app itself, on Starlette and
uvicorn with micro-batched predictions, is in :mod:`.app`; the ``/predict`` contract
(limits, validation, the answer) in :mod:`.contract`. The predictor behind the app is
injectable, so any model (the framework's, ONNX Runtime's, a stub in tests) can sit
there::

    predict_proba(images: float32 (N, 28, 28) in [0, 1]) -> (N, 10) probabilities

Routes: ``GET /`` (the page and its two static files), ``GET /healthz`` and
``POST /predict``, which takes ``{"width": W, "height": H, "pixels": [W*H greys 0..255]}``
(row-major, any background: dark ink on white is what the page sends), or a PNG or JPEG
file (as the body, or as the form field ``image``), gives the picture ``predict``'s steps
(:func:`tinygrad_mnist.data.mnist_style`) and then the predictor, and answers
``{"digit": d, "probabilities": [10 floats], "preview": [784 greys 0..255],
"milliseconds": t}``; the preview is the 28x28 image the model saw (row-major). Every
error is a JSON ``{"error": message}`` with a 4xx status (500 only if the predictor
itself fails); no stack trace is ever sent.
"""
from __future__ import annotations

import ipaddress
import os
import sys
import threading
from typing import Optional, Sequence, Union

import numpy as np

from .app import STATIC_FILES, DigitServer, MicroBatcher, build_app, make_server
from .contract import (EMPTY_DRAWING, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_SIDE,
                       REQUEST_TIMEOUT, Predictor, RequestError, parse_request,
                       predict_drawing)

__all__ = ["make_server", "serve", "serve_run", "load_predictor", "DigitServer", "Predictor",
           "parse_request", "predict_drawing", "RequestError", "MicroBatcher", "build_app",
           "EMPTY_DRAWING", "MAX_SIDE", "MAX_BODY_BYTES", "MAX_HEADER_BYTES",
           "REQUEST_TIMEOUT", "STATIC_FILES", "is_loopback"]


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_predictor(run_dir: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
                   top_k: Optional[int] = None) -> Predictor:
    """The ``predict_proba`` of a run directory's best model (or an ``.npz`` checkpoint);
    given several, or a sweep directory (its best `top_k` runs), of their ensemble (the
    mean of the models' probabilities).

    The server calls it from its one model thread; a lock serialises calls from other
    threads too (the framework's grad mode is process-wide, so two threads inside
    ``no_grad()`` at once could leave it switched off or on)."""
    from ...data import DIGITS
    from ...errors import UsageError
    from ..inference import load_models
    trained = load_models(run_dir, top_k)
    if (tuple(trained.classes), tuple(trained.image_shape)) != (DIGITS, (1, 28, 28)):
        c, h, w = trained.image_shape
        raise UsageError(f"serve is a page for drawing digits; this model classifies "
                         f"{c}x{h}x{w} images into {len(trained.classes)} classes "
                         f"({', '.join(trained.classes[:3])}, ...), not 1x28x28 digits: "
                         f"use predict for it")
    lock = threading.Lock()

    def predict_proba(images: np.ndarray) -> np.ndarray:
        with lock:
            return trained.predict_proba(images)
    return predict_proba


def serve_run(run_dir: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
              host: str = "127.0.0.1", port: int = 8000,
              top_k: Optional[int] = None, *, log_requests: bool = True) -> None:
    """``tinygrad-mnist serve RUN_DIR [RUN_DIR ...]``: load the run's model (or the
    ensemble of several runs) and serve it until Ctrl+C."""
    serve(load_predictor(run_dir, top_k), host, port, log_requests=log_requests)


def serve(predict_proba: Predictor, host: str = "127.0.0.1", port: int = 8000, *,
          log_requests: bool = True) -> None:
    """Run the app until Ctrl+C, printing its address (and, with `log_requests`, one line
    per request). Raises OSError (with the address in its message) when the port cannot
    be bound."""
    def ready() -> None:  # printed once it runs: Ctrl+C is handled from then on
        print(f"Serving the digit demo on {server.url} (Ctrl+C to stop)", file=sys.stderr,
              flush=True)

    try:
        server = make_server(predict_proba, host, port, log_requests=log_requests,
                             on_ready=ready)
    except OSError as e:
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror or e}; choose "
                               f"another --port") from None
    if not is_loopback(host):
        print(f"warning: listening on {host}, reachable from other machines; "
              "there is no authentication", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
