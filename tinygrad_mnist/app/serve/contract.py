"""The ``/predict`` contract of the digit app, apart from any HTTP server: the limits,
validating a request body into a picture, and the answer for a picture.

A body is one of:

* ``application/json``: ``{"width": W, "height": H, "pixels": [W*H greys 0..255]}``
  (row-major, any background), what the page sends (:func:`parse_request`);
* ``image/png`` or ``image/jpeg``: the file itself (:func:`parse_image`);
* ``multipart/form-data`` with the file in the field ``image``, as ``curl -F
  image=@seven.png`` and HTML forms send it (:func:`parse_form`).

Every picture then gets the steps ``tinygrad-mnist predict`` gives a file: a file is read
as ``predict`` reads it (EXIF orientation applied, transparency onto white, at most
``MAX_IMAGE_PIXELS``), and every picture goes through
:func:`tinygrad_mnist.data.mnist_style` (:func:`prepare_drawing`). The answer is
``{"digit": d, "probabilities": [10 floats], "preview": [784 greys 0..255]}``, the
preview being the 28x28 image the model saw. A bad body raises :class:`RequestError` with
the 4xx status to answer and a one-line message naming the problem.
"""
from __future__ import annotations

import io
import json
import warnings
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from typing import Any, Callable, Dict, List

import numpy as np
from PIL import Image, UnidentifiedImageError

from ...data import MAX_IMAGE_PIXELS, load_image, mnist_style

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
EMPTY_IMAGE = "no digit found: the image is empty (one uniform background)"
JSON_TYPE = "application/json"
FORM_TYPE = "multipart/form-data"
IMAGE_TYPES = ("image/png", "image/jpeg")  #: the Content-Types of a file sent as the body
IMAGE_FORMATS = ("PNG", "JPEG")            #: what Pillow may decode here
IMAGE_FIELD = "image"                      #: the form field that holds the file
BODY_TYPES = (JSON_TYPE, *IMAGE_TYPES, FORM_TYPE)
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


def parse_image(data: bytes, what: str = "the body") -> np.ndarray:
    """A PNG or JPEG file's bytes as ``predict`` reads the file: ``uint8 (H, W, 3)``, its
    EXIF orientation applied, transparent areas onto white.

    Raises :class:`RequestError`: 400 when `data` (called `what` in the message) is empty,
    not a PNG or JPEG, or broken; 413 when the image declares more than
    ``MAX_IMAGE_PIXELS`` (checked from its header, before its pixels are decoded)."""
    if not data:
        raise RequestError(400, f"{what} is empty: send a PNG or JPEG image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=IMAGE_FORMATS) as im:
                width, height = im.size
    except Image.DecompressionBombError:
        width = height = MAX_IMAGE_PIXELS  # more than Pillow's own limit
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise RequestError(400, f"{what} is not a PNG or JPEG image") from None
    if width * height > MAX_IMAGE_PIXELS:
        size = f"{width}x{height} pixels" if width < MAX_IMAGE_PIXELS else "too many pixels"
        raise RequestError(413, f"the image has {size}, over the limit of "
                                f"{MAX_IMAGE_PIXELS:,}; scale it down")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return load_image(io.BytesIO(data), color=True)
    except (ValueError, OSError, MemoryError, Image.DecompressionBombWarning,
            Image.DecompressionBombError):
        raise RequestError(400, f"{what} is a broken image (truncated or corrupt); "
                                "send a whole PNG or JPEG file") from None


def parse_form(body: bytes, content_type: str) -> bytes:
    """The bytes of the file in the ``image`` field of a ``multipart/form-data`` body
    (RFC 7578); `content_type` is the request's whole Content-Type header, with its
    boundary. The body is split at its boundary lines by hand (it is at most
    ``MAX_BODY_BYTES``); each part's headers are read with the standard library's email
    parser. Raises :class:`RequestError` (400) for a missing boundary, a malformed body,
    or no ``image`` field (naming the fields there are)."""
    header = Message()
    header["content-type"] = content_type
    boundary = header.get_param("boundary")
    if not isinstance(boundary, str) or not 1 <= len(boundary) <= 70:
        raise RequestError(400, "multipart/form-data needs a boundary parameter of 1 to 70 "
                                "characters in its Content-Type")
    delimiter = b"\r\n--" + boundary.encode("latin-1", "replace")
    pieces = (b"\r\n" + body).split(delimiter)   # the preamble, the parts, the epilogue
    closing = next((i for i, piece in enumerate(pieces) if i and piece.startswith(b"--")), 0)
    if closing < 2:
        raise RequestError(400, "malformed multipart/form-data body: no part between "
                                "boundary lines, or no closing boundary line")
    fields: List[str] = []
    for piece in pieces[1:closing]:
        padding, newline, part = piece.partition(b"\r\n")
        if padding.strip(b" \t") or not newline:
            raise RequestError(400, "malformed multipart/form-data body: a boundary line "
                                    "is not followed by a line break")
        if part.startswith(b"\r\n"):
            head, content = b"", part[2:]
        else:
            head, separator, content = part.partition(b"\r\n\r\n")
            if not separator:
                raise RequestError(400, "malformed multipart/form-data body: a part's headers "
                                        "do not end with an empty line")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        name = headers.get_param("name", header="content-disposition")
        name = collapse_rfc2231_value(name) if name is not None else ""
        if name == IMAGE_FIELD:
            return content
        fields.append(json.dumps(name)[:40])
    raise RequestError(400, f'expected the picture in a form field named "{IMAGE_FIELD}" '
                            f"(curl -F {IMAGE_FIELD}=@digit.png); the fields sent: "
                            f"{', '.join(fields) or 'none'}")


def body_kind(content_type: str) -> str:
    """The media type of a Content-Type header (lower case, without parameters), if it is
    one of ``BODY_TYPES``; else :class:`RequestError` (415) listing them."""
    kind = content_type.split(";")[0].strip().lower()
    if kind not in BODY_TYPES:
        raise RequestError(415, f"Content-Type must be {', '.join(BODY_TYPES[:-1])} or "
                                f"{BODY_TYPES[-1]}, got {kind[:60] or 'none'}")
    return kind


def parse_body(body: bytes, content_type: str) -> np.ndarray:
    """The picture of a ``/predict`` body of any accepted type (`content_type` is the
    request's whole Content-Type header): ``uint8 (H, W)`` for JSON, ``(H, W, 3)`` for a
    file. Raises :class:`RequestError` (4xx) naming what is wrong."""
    kind = body_kind(content_type)
    if kind == JSON_TYPE:
        return parse_request(body)
    if kind == FORM_TYPE:
        return parse_image(parse_form(body, content_type), f'the "{IMAGE_FIELD}" field')
    return parse_image(body)


def prepare_drawing(drawing: np.ndarray) -> np.ndarray:
    """The 28x28 image the model sees: ``data.mnist_style``, as ``predict`` gives a file;
    RequestError (422) without ink (the page's message for a 2-D drawing, a plainer one
    for a file's picture)."""
    try:
        return mnist_style(drawing)
    except ValueError:
        raise RequestError(422, EMPTY_DRAWING if drawing.ndim == 2 else EMPTY_IMAGE) from None


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
