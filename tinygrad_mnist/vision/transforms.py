"""Sample transforms, as torchvision's: `Compose`, `ToTensor`, `Normalize`, `Lambda`, and
the random distortions `RandomRotation`, `RandomAffine` and `RandomCrop`.

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.1307,), (0.3081,))])

`ToTensor` takes what `datasets.MNIST` gives (a uint8 array of shape (H, W)), an
(H, W, C) array or a PIL image, and returns a float32 (C, H, W) Tensor, scaled to
[0, 1] when the input holds uint8 pixels.
"""
from __future__ import annotations

import enum
import math
import numbers
from typing import Any, Callable, Optional, Sequence, Tuple

import numpy as np

from ..data.augment import bilinear_sample
from ..random import generator_or_default
from ..tensor import Tensor


class Compose:
    """Apply `transforms` in order."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]):
        self.transforms = list(transforms)

    def __call__(self, x: Any) -> Any:
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"Compose({inner}\n)"


class ToTensor:
    """An image (H, W) or (H, W, C) as a float32 (C, H, W) Tensor; uint8 pixels are
    divided by 255."""

    def __call__(self, pic: Any) -> Tensor:
        image = np.asarray(pic)
        if image.ndim not in (2, 3):
            raise ValueError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), "
                             f"got {image.shape}")
        if image.ndim == 2:
            image = image[:, :, None]
        chw = np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32)
        if image.dtype == np.uint8:
            chw /= 255
        return Tensor(chw)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel of a (..., C, H, W) Tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False):
        self.mean, self.std = tuple(mean), tuple(std)
        if any(s == 0 for s in self.std):
            raise ValueError(f"Normalize: std {self.std} contains a zero")
        self._mean = np.asarray(self.mean, np.float32).reshape(-1, 1, 1)
        self._std = np.asarray(self.std, np.float32).reshape(-1, 1, 1)

    def __call__(self, tensor: Tensor) -> Tensor:
        if tensor.ndim < 3 or len(self.mean) not in (1, tensor.shape[-3]):
            raise ValueError(f"Normalize: {len(self.mean)} channel mean(s) do not fit a "
                             f"tensor of shape {tensor.shape} (expected (..., C, H, W))")
        return (tensor - self._mean) / self._std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a function."""

    def __init__(self, lambd: Callable[[Any], Any]):
        self.lambd = lambd

    def __call__(self, x: Any) -> Any:
        return self.lambd(x)

    def __repr__(self) -> str:
        return "Lambda()"


class InterpolationMode(enum.Enum):
    """How a distortion reads between pixels (torchvision's names)."""
    NEAREST = "nearest"
    BILINEAR = "bilinear"


def _planes(image: Any) -> Tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """The image as float (P, H, W) planes, and how to turn (P, H', W') planes back into
    the input's kind: a Tensor (..., H, W), or an array (H, W) or (H, W, C) as
    `datasets.MNIST` and PIL give (integer pixels are rounded back)."""
    is_tensor = isinstance(image, Tensor)
    a = image.data if is_tensor else np.asarray(image)
    if a.ndim < 2 or (not is_tensor and a.ndim > 3):
        raise ValueError(f"expected an image: a Tensor (..., H, W) or an array (H, W) or "
                         f"(H, W, C), got shape {a.shape}")
    chw = a if is_tensor or a.ndim == 2 else np.moveaxis(a, -1, 0)
    planes = chw.reshape((-1,) + chw.shape[-2:]).astype(np.float32)

    def back(out: np.ndarray) -> Any:
        if a.dtype.kind in "iub":
            out = np.clip(np.rint(out), *_limits(a.dtype))
        out = out.astype(a.dtype).reshape(chw.shape[:-2] + out.shape[-2:])
        out = out if is_tensor or a.ndim == 2 else np.moveaxis(out, 0, -1)
        return Tensor(out) if is_tensor else out
    return planes, back


def _limits(dtype: np.dtype) -> Tuple[float, float]:
    return (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)


def _inverse_affine(angle: float, translate: Tuple[float, float], scale: float,
                    shear: Tuple[float, float]) -> np.ndarray:
    """The 2x3 map from an output pixel to the input point it shows, in coordinates
    centred on the image (x right, y down): the inverse of translate · rotate(angle,
    clockwise) · scale · shear, with torchvision's shear convention."""
    rot, sx, sy = math.radians(angle), math.radians(shear[0]), math.radians(shear[1])
    a = math.cos(rot - sy) / math.cos(sy)
    b = -(a * math.tan(sx) + math.sin(rot))
    c = math.sin(rot - sy) / math.cos(sy)
    d = math.cos(rot) - c * math.tan(sx)
    m = np.array([[d, -b], [-c, a]]) / scale
    return np.hstack([m, -(m @ np.asarray(translate, float))[:, None]])


def _warp(planes: np.ndarray, inverse: np.ndarray, interpolation: InterpolationMode,
          fill: float) -> np.ndarray:
    """Each output pixel reads the input at `inverse` of its centred position; points
    outside the image read `fill`."""
    p, h, w = planes.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    y, x = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    src_x = inverse[0, 0] * x + inverse[0, 1] * y + inverse[0, 2] + cx
    src_y = inverse[1, 0] * x + inverse[1, 1] * y + inverse[1, 2] + cy
    if interpolation is InterpolationMode.NEAREST:
        iy, ix = np.rint(src_y).astype(np.int64), np.rint(src_x).astype(np.int64)
        inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        out = planes[:, np.clip(iy, 0, h - 1), np.clip(ix, 0, w - 1)]
        return np.where(inside, out, np.float32(fill))
    shifted = planes[None] - np.float32(fill)      # zeros outside, then fill added back
    return bilinear_sample(shifted, src_y[None], src_x[None])[0] + np.float32(fill)


def _interpolation(value: Any, name: str) -> InterpolationMode:
    try:
        return InterpolationMode(getattr(value, "value", value))
    except ValueError:
        raise ValueError(f"{name}: interpolation must be InterpolationMode.NEAREST or "
                         f"BILINEAR, got {value!r}") from None


def _range(value: Any, name: str, what: str, center: float = 0.0) -> Tuple[float, float]:
    """A number v as (center - v, center + v), or a (low, high) pair."""
    if isinstance(value, numbers.Real):
        if value < 0:
            raise ValueError(f"{name}: {what} must be >= 0 if a single number, got {value}")
        return center - float(value), center + float(value)
    low, high = (float(v) for v in value)
    if low > high:
        raise ValueError(f"{name}: {what} must be (low, high) with low <= high, got {value}")
    return low, high


class RandomRotation:
    """Rotate by an angle drawn from `degrees` (a number d: [-d, d]; or (low, high)),
    counter-clockwise for positive angles, about the image centre; what comes in from
    outside is `fill`. Only expand=False and center=None (torchvision's defaults)."""

    def __init__(self, degrees: Any, interpolation: Any = InterpolationMode.NEAREST,
                 expand: bool = False, center: Optional[Sequence[float]] = None,
                 fill: float = 0, *, generator: Optional[np.random.Generator] = None):
        if expand or center is not None:
            raise ValueError("RandomRotation: only expand=False and center=None are "
                             "supported")
        self.degrees = _range(degrees, "RandomRotation", "degrees")
        self.interpolation = _interpolation(interpolation, "RandomRotation")
        self.fill, self.generator = float(fill), generator

    def __call__(self, image: Any) -> Any:
        angle = generator_or_default(self.generator).uniform(*self.degrees)
        planes, back = _planes(image)
        inverse = _inverse_affine(-angle, (0.0, 0.0), 1.0, (0.0, 0.0))
        return back(_warp(planes, inverse, self.interpolation, self.fill))

    def __repr__(self) -> str:
        return (f"RandomRotation(degrees={list(self.degrees)}, "
                f"interpolation={self.interpolation.value}, fill={self.fill})")


class RandomAffine:
    """A random affine map about the image centre, as torchvision's: an angle from
    `degrees` (clockwise), a shift of up to `translate` = (a, b) of the width and height
    (whole pixels), a zoom from `scale` = (low, high), and a shear from `shear` (a number
    s: along x in [-s, s]; 2 values: along x; 4 values: along x, then y), in degrees."""

    def __init__(self, degrees: Any, translate: Optional[Sequence[float]] = None,
                 scale: Optional[Sequence[float]] = None, shear: Any = None,
                 interpolation: Any = InterpolationMode.NEAREST, fill: float = 0,
                 center: Optional[Sequence[float]] = None, *,
                 generator: Optional[np.random.Generator] = None):
        name = "RandomAffine"
        if center is not None:
            raise ValueError("RandomAffine: only center=None is supported")
        self.degrees = _range(degrees, name, "degrees")
        if translate is not None and not all(0 <= t <= 1 for t in translate):
            raise ValueError(f"{name}: translate values must be in [0, 1], got {translate}")
        if scale is not None and not 0 < scale[0] <= scale[1]:
            raise ValueError(f"{name}: scale must be (low, high) with 0 < low <= high, got "
                             f"{scale}")
        if shear is None or isinstance(shear, numbers.Real) or len(shear) == 2:
            self.shear = (_range(shear or 0, name, "shear"), (0.0, 0.0))
        elif len(shear) == 4:
            self.shear = (_range(shear[:2], name, "shear"), _range(shear[2:], name, "shear"))
        else:
            raise ValueError(f"{name}: shear must be a number, or 2 or 4 values, got {shear}")
        self.translate, self.scale = translate, scale
        self.interpolation = _interpolation(interpolation, name)
        self.fill, self.generator = float(fill), generator

    def __call__(self, image: Any) -> Any:
        rng = generator_or_default(self.generator)
        planes, back = _planes(image)
        h, w = planes.shape[-2:]
        angle = rng.uniform(*self.degrees)
        shift = (0.0, 0.0)
        if self.translate is not None:
            shift = (float(np.rint(rng.uniform(-1, 1) * self.translate[0] * w)),
                     float(np.rint(rng.uniform(-1, 1) * self.translate[1] * h)))
        zoom = rng.uniform(*self.scale) if self.scale is not None else 1.0
        shear = (rng.uniform(*self.shear[0]), rng.uniform(*self.shear[1]))
        inverse = _inverse_affine(angle, shift, zoom, shear)
        return back(_warp(planes, inverse, self.interpolation, self.fill))

    def __repr__(self) -> str:
        return (f"RandomAffine(degrees={list(self.degrees)}, translate={self.translate}, "
                f"scale={self.scale}, shear={[list(r) for r in self.shear]})")


class RandomCrop:
    """A random `size` (an int, or (h, w)) window of the image after `padding` (an int
    for every side, (left/right, top/bottom), or (left, top, right, bottom)) in
    `padding_mode` constant (with `fill`), edge, reflect or symmetric."""

    def __init__(self, size: Any, padding: Any = None, pad_if_needed: bool = False,
                 fill: float = 0, padding_mode: str = "constant", *,
                 generator: Optional[np.random.Generator] = None):
        self.size = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
        pads = (0,) if padding is None else \
            (padding,) if isinstance(padding, numbers.Integral) else tuple(padding)
        if len(pads) not in (1, 2, 4) or min(pads) < 0:
            raise ValueError(f"RandomCrop: padding must be one, 2 or 4 non-negative ints, "
                             f"got {padding!r}")
        self.padding = pads * 4 if len(pads) == 1 else pads * 2 if len(pads) == 2 else pads
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"RandomCrop: padding_mode must be constant, edge, reflect or "
                             f"symmetric, got {padding_mode!r}")
        self.pad_if_needed, self.fill, self.padding_mode = pad_if_needed, fill, padding_mode
        self.generator = generator

    def __call__(self, image: Any) -> Any:
        planes, back = _planes(image)
        left, top, right, bottom = self.padding
        th, tw = self.size
        if self.pad_if_needed:
            h, w = planes.shape[-2] + top + bottom, planes.shape[-1] + left + right
            extra_h, extra_w = max(th - h, 0), max(tw - w, 0)
            left, right, top, bottom = left + extra_w, right + extra_w, top + extra_h, \
                bottom + extra_h
        widths = ((0, 0), (top, bottom), (left, right))
        options = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
        padded = np.pad(planes, widths, mode=self.padding_mode, **options)
        h, w = padded.shape[-2:]
        if th > h or tw > w:
            raise ValueError(f"RandomCrop: the crop {(th, tw)} is larger than the (padded) "
                             f"image {(h, w)}")
        rng = generator_or_default(self.generator)
        i, j = int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1))
        return back(padded[:, i:i + th, j:j + tw])

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"
