"""The ``/predict`` contract of the digit app, apart from any HTTP server: the limits,
validating a request body into a drawing, and the answer for a drawing.

A body is ``{"width": W, "height": H, "pixels": [W*H greys 0..255]}`` (row-major, any
background); the answer is ``{"digit": d, "probabilities": [10 floats], "preview": [784
greys 0..255]}``, the preview being the 28x28 image the model saw. A bad body raises
:class:`RequestError` with the 4xx status to answer and a message naming the problem.

Every drawing gets the steps ``tinygrad-mnist predict`` gives a picture,
:func:`tinygrad_mnist.data.mnist_style`: a drawing from the page is a clean page, which
takes its quick path; a photo's pixels take the photo steps.
"""
from __future__ import annotations

import json
from typing import Any, Callable, Dict

import numpy as np

from ...data import mnist_style

try:  # five times faster on the page's 60 kB bodies; json is the fallback
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = None

#: ``images (N, 28, 28) float32 in [0, 1] -> (N, 10)`` class probabilities.
Predictor = Callable[[np.ndarray], np.ndarray]

MAX_SIDE = 512                             #: largest accepted width or height, in pixels
MAX_BODY_BYTES = 4 * MAX_SIDE ** 2 + 4096  #: room for MAX_SIDE**2 values of "255,"
MAX_HEADER_BYTES = 16 * 1024               #: request line and headers together
REQUEST_TIMEOUT = 10.0  #: seconds a client has for a request's headers, and again for its body
KEEP_ALIVE_TIMEOUT = 5.0                   #: seconds an idle connection is kept open
EMPTY_DRAWING = "Draw a digit first."
MODEL_FAILED = "the model failed to make a prediction"
NUM_CLASSES = 10


class RequestError(Exception):
    """A request the client must fix; ``status`` is the 4xx code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


_NUMBER_TYPES = {int, float}


def parse_request(body: bytes) -> np.ndarray:
    """Validate a ``/predict`` body and return the drawing as ``uint8 (height, width)``.

    Raises :class:`RequestError` (400) naming what is wrong: not UTF-8 JSON, not an
    object, width/height not integers in 1..MAX_SIDE, pixels not a flat list of
    ``width*height`` numbers in 0..255."""
    try:
        text = body.decode("utf-8")
        payload = (_loads(text) if _loads is not None else
                   json.loads(text, parse_constant=_reject_constant))
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
    grey = _numbers(pixels, body)
    if grey.size and not (grey.min() >= 0 and grey.max() <= 255):
        raise RequestError(400, f'"pixels" must be greys in 0..255, got values from '
                                f"{grey.min():g} to {grey.max():g}")
    if grey.dtype.kind == "f":
        grey = np.rint(grey)
    return grey.astype(np.uint8).reshape(height, width)


def _numbers(pixels: list, body: bytes) -> np.ndarray:
    """`pixels` as an int64 or float64 array, or RequestError naming the first item that
    is not a number. One pass in C for the usual body; the item-by-item look only when
    that pass finds something else, or the body holds a `true` or `false` (NumPy would
    take a boolean for 0 or 1)."""
    try:
        grey = np.array(pixels)
    except (ValueError, OverflowError):  # nested lists of different lengths
        grey = None
    if (grey is None or grey.ndim != 1 or grey.dtype.kind not in "if"
            or b"true" in body or b"false" in body):
        bad = next((v for v in pixels if type(v) not in _NUMBER_TYPES), None)
        if bad is not None:
            raise RequestError(400, f'"pixels" must hold only numbers, found {_describe(bad)}')
        try:
            grey = np.array(pixels, dtype=np.float64)
        except OverflowError:
            raise RequestError(400, '"pixels" must be greys in 0..255, found a huge '
                                    'number') from None
    return grey


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = json.dumps(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


def prepare_drawing(drawing: np.ndarray) -> np.ndarray:
    """The 28x28 image the model sees (``data.mnist_style``, as ``predict`` gives a
    picture); RequestError (422) without ink."""
    try:
        return mnist_style(drawing)
    except ValueError:
        raise RequestError(422, EMPTY_DRAWING) from None


def check_probabilities(proba: Any, count: int) -> np.ndarray:
    """`proba` as float64 (count, 10) finite probabilities, or RuntimeError (the
    predictor is broken: the server answers 500)."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.shape != (count, NUM_CLASSES) or not np.isfinite(proba).all():
        raise RuntimeError(f"the predictor returned {proba.dtype} {proba.shape}; "
                           f"expected finite ({count}, {NUM_CLASSES}) probabilities")
    return proba


def answer(image: np.ndarray, proba: np.ndarray) -> Dict[str, Any]:
    """The JSON answer for one drawing's model image and its 10 probabilities."""
    return {"digit": int(np.argmax(proba)),
            "probabilities": [round(float(p), 6) for p in proba],
            "preview": np.rint(image * 255).astype(np.uint8).ravel().tolist()}


def predict_drawing(predict_proba: Predictor, drawing: np.ndarray) -> Dict[str, Any]:
    """Preprocess one drawing (:func:`prepare_drawing`) and run the predictor on it.

    Raises :class:`RequestError` (422) when the drawing has no ink, RuntimeError when
    the predictor's answer is not finite (1, 10) probabilities."""
    image = prepare_drawing(drawing)
    proba = check_probabilities(predict_proba(image[None]), 1)
    return answer(image, proba[0])
