"""Export a trained model (or an ensemble) as an installable web app that recognises
digits offline, in the browser, with no server.

    export_web("runs/RUN", "site")             # tinygrad-mnist export RUN --web site

The folder holds a static site (flat, no subfolders):

* the draw-a-digit page of ``serve`` (``index.html``, ``app.js``, ``style.css``: the same
  files; the page runs the model itself when it finds ``model.json`` beside it),
* ``infer.js``, the forward pass, one small function per layer, and ``preprocess.js``,
  the drawing and photo steps of ``serve`` and ``predict``,
* ``model.json``, the layers (the same walk over the model as the ONNX export:
  `export.walk`), and ``weights.bin``, their weights as little-endian float32,
* ``manifest.webmanifest`` and two icons, and ``sw.js``, a service worker that caches
  every file for offline use.

Nothing in it is fetched from another host. Layers without a web form, or a model
whose pictures are not handwriting, raise :class:`ExportError` naming the problem.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np
from PIL import Image, ImageDraw

from .. import nn
from ..atomic import staged_directory
from ..data import mnist_style
from ..errors import UsageError
from ..nn import Module
from ..tensor import Tensor
from .export import (ExportError, batch_norm_arrays, conv_attrs, handler_of,
                     pool_attrs, require_defaults, walk)
from .inference import Ensemble, Trained, load_models
from .predict import picture_steps

PathLike = Union[str, os.PathLike]
STATIC_DIR = Path(__file__).resolve().parent / "serve" / "static"
#: The page's own files, copied as they are.
PAGE_FILES = ("index.html", "app.js", "style.css", "infer.js", "preprocess.js")
FORMAT = "tinygrad_mnist.web/1"
THEME = "#3358d4"        # the page's accent colour (style.css)
BACKGROUND = "#f3f5f9"   # the page's background
ICON_SIDES = (192, 512)


class Weights:
    """The arrays of `weights.bin`, in order: each added one is described by its byte
    offset and shape."""

    def __init__(self) -> None:
        self.chunks: List[bytes] = []
        self.size = 0

    def add(self, value: Any) -> Dict[str, Any]:
        array = np.asarray(value.data if isinstance(value, Tensor) else value)
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        entry = {"offset": self.size, "shape": list(array.shape)}
        self.chunks.append(data)
        self.size += len(data)
        return entry


# ------------------------------------------------------------------------ layers
#: A layer -> its entry in model.json (its weights go to `Weights`), given its input
#: shape without the batch dimension.
Describe = Callable[[Module, Tuple[int, ...], Weights], Dict[str, Any]]


def _linear(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    bias = getattr(m, "bias", None)
    return {"type": "linear", "weight": w.add(m.weight),
            "bias": None if bias is None else w.add(bias)}


def _conv(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    attrs = conv_attrs(m)
    bias = getattr(m, "bias", None)
    return {"type": "conv2d", "weight": w.add(m.weight),
            "bias": None if bias is None else w.add(bias),
            "stride": attrs["strides"], "padding": attrs["pads"][:2]}


def _pool(kind: str) -> Describe:
    def describe(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
        if kind == "avgpool2d":
            require_defaults(m, count_include_pad=True)
        attrs = pool_attrs(m)
        return {"type": kind, "kernel": attrs["kernel_shape"], "stride": attrs["strides"],
                "padding": attrs["pads"][:2]}
    return describe


def _adaptive_avg_pool(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    size = nn.functional.adaptive_output_size(m.output_size, *shape[-2:])
    return {"type": "adaptiveavgpool2d", "output": list(size)}


def _batch_norm(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    scale, bias, mean, var = batch_norm_arrays(m)
    return {"type": "batchnorm", "weight": w.add(scale), "bias": w.add(bias),
            "mean": w.add(mean), "var": w.add(var), "eps": float(m.eps)}


def _layer_norm(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    normalized = tuple(m.normalized_shape)
    return {"type": "layernorm", "size": int(np.prod(normalized)), "eps": float(m.eps),
            "weight": None if m.weight is None else w.add(m.weight),
            "bias": None if m.bias is None else w.add(m.bias)}


def _flatten(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
    full = (1, *shape)                       # the dims as the layer counts them
    start, end = m.start_dim % len(full), m.end_dim % len(full)
    merged = full[:start] + (int(np.prod(full[start:end + 1])),) + full[end + 1:]
    return {"type": "flatten", "shape": list(merged[1:])}


def _activation(kind: str, **attrs: str) -> Describe:
    def describe(m: Module, shape: Tuple[int, ...], w: Weights) -> Dict[str, Any]:
        return {"type": kind, **{k: getattr(m, v) for k, v in attrs.items()}}
    return describe


#: Layer class -> its entry in model.json; the same classes as the ONNX export's.
LAYERS: Dict[Type[Module], Describe] = {
    nn.Linear: _linear,
    nn.Conv2d: _conv,
    nn.ReLU: _activation("relu"),
    nn.LeakyReLU: _activation("leakyrelu", slope="negative_slope"),
    nn.Tanh: _activation("tanh"),
    nn.Sigmoid: _activation("sigmoid"),
    nn.GELU: _activation("gelu", approximate="approximate"),
    nn.SiLU: _activation("silu"),
    nn.ELU: _activation("elu", alpha="alpha"),
    nn.Softplus: _activation("softplus", beta="beta", threshold="threshold"),
    nn.LayerNorm: _layer_norm,
    nn.AdaptiveAvgPool2d: _adaptive_avg_pool,
    nn.MaxPool2d: _pool("maxpool2d"),
    nn.AvgPool2d: _pool("avgpool2d"),
    nn.Flatten: _flatten,
    nn.BatchNorm1d: _batch_norm,
    nn.BatchNorm2d: _batch_norm,
    nn.Dropout: _activation("identity"),
}


def describe_model(model: Module, input_shape: Tuple[int, ...],
                   weights: Weights) -> List[Dict[str, Any]]:
    """`model`'s layers as model.json lists them, for one input of `input_shape` (no
    batch dimension); their weights are added to `weights`."""
    layers: List[Dict[str, Any]] = []

    def visit(where: str, layer: Module, shape: Tuple[int, ...]) -> None:
        entry = handler_of(layer, where, LAYERS)(layer, shape[1:], weights)
        layers.append({"name": where, "input": list(shape[1:]), **entry})
    walk(model, (1, *input_shape), visit)
    return layers


def describe(trained: Union[Trained, Ensemble]) -> Tuple[Dict[str, Any], bytes]:
    """model.json's content and weights.bin's bytes for a trained model or an ensemble
    (each member standardises the pixels with its own training statistics; the page
    averages their probabilities)."""
    members = trained.members if isinstance(trained, Ensemble) else [trained]
    if tuple(trained.image_shape) != (1, 28, 28):
        raise ExportError(f"the web app draws 28x28 grey digits; this model takes images of "
                          f"shape {tuple(trained.image_shape)}")
    if picture_steps(trained) is not mnist_style:
        raise ExportError("the web app prepares pictures of handwriting; this model was "
                          "trained on photos of objects")
    weights = Weights()
    entries = []
    for member in members:
        shape = tuple(member.prepare(np.zeros((1, 28, 28), np.float32)).shape[1:])
        entries.append({"mean": member.stats.mean, "std": member.stats.std,
                        "input": list(shape),
                        "layers": describe_model(member.model, shape, weights)})
    data = b"".join(weights.chunks)
    return {"format": FORMAT, "classes": list(trained.classes), "image_shape": [1, 28, 28],
            "weights": {"file": "weights.bin", "bytes": len(data),
                        "sha256": hashlib.sha256(data).hexdigest()},
            "members": entries}, data


# ------------------------------------------------------------------------ the site
def icon(side: int) -> bytes:
    """The app's icon as a PNG: a white handwritten-looking 7 on the page's accent
    colour, filling the square (safe for the round and squircle masks of launchers)."""
    big = 4 * side  # drawn large and reduced: smooth edges
    im = Image.new("RGB", (big, big), THEME)
    draw = ImageDraw.Draw(im)
    width = big // 11
    points = [(0.33, 0.30), (0.68, 0.29), (0.50, 0.72)]
    draw.line([(x * big, y * big) for x, y in points], fill="white", width=width,
              joint="curve")
    for x, y in (points[0], points[-1]):
        r = width / 2
        draw.ellipse([x * big - r, y * big - r, x * big + r, y * big + r], fill="white")
    out = io.BytesIO()
    im.resize((side, side), Image.LANCZOS).save(out, format="PNG", optimize=True)
    return out.getvalue()


def manifest(name: str) -> Dict[str, Any]:
    return {"name": name, "short_name": "Digits", "description":
            "Draw or photograph a digit; a neural network trained with tinygrad_mnist "
            "reads it, offline on this device.",
            "start_url": "./", "scope": "./", "display": "standalone",
            "background_color": BACKGROUND, "theme_color": THEME,
            "icons": [{"src": f"icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png",
                       "purpose": "any"} for s in ICON_SIDES]}


def site_files(trained: Union[Trained, Ensemble]) -> Dict[str, bytes]:
    """Every file of the site by name."""
    model, data = describe(trained)
    files = {name: (STATIC_DIR / name).read_bytes() for name in PAGE_FILES}
    files["model.json"] = json.dumps(model, separators=(",", ":")).encode()
    files["weights.bin"] = data
    files["manifest.webmanifest"] = json.dumps(
        manifest("Draw a digit · tinygrad_mnist"), indent=1).encode()
    for side in ICON_SIDES:
        files[f"icon-{side}.png"] = icon(side)
    # The service worker caches the site under a name that changes with any file, so an
    # updated site replaces the old one's cache; "./" is the page as the folder's index.
    version = hashlib.sha256(b"".join(hashlib.sha256(files[k]).digest()
                                      for k in sorted(files))).hexdigest()[:16]
    site = {"version": version, "files": ["./", *sorted(files)]}
    files["sw.js"] = (f"const SITE = {json.dumps(site)};\n".encode()
                      + (STATIC_DIR / "sw.js").read_bytes())
    return files


def export_web(path: Union[PathLike, Sequence[PathLike]], directory: PathLike,
               top_k: Optional[int] = None) -> List[Path]:
    """Write the web app of a run's best model (or of an ensemble: several paths, or a
    sweep directory's best `top_k` runs) into the new folder `directory`, all files or
    none. Returns the files written. UsageError if `directory` exists."""
    target = Path(directory)
    exists = UsageError(f"--web {target}: it already exists; give a new folder for the "
                        f"site (or remove this one)", option="--web")
    if target.exists():
        raise exists
    files = site_files(load_models(path, top_k))
    try:
        target.mkdir()
    except FileExistsError:
        raise exists from None
    try:
        with staged_directory(target) as stage:
            for name, content in files.items():
                (stage / name).write_bytes(content)
    except BaseException:
        for name in files:
            (target / name).unlink(missing_ok=True)  # staging renames nothing on error
        target.rmdir()
        raise
    return [target / name for name in files]
