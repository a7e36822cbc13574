"""Training-time distortions that teach a model digits rather than one scanner's style:
random affine maps (rotation, scale, shear, translation) and elastic distortion
(Simard, Steinkraus and Platt, "Best practices for convolutional neural networks applied to
visual document analysis", ICDAR 2003), vectorised over a batch.

Every image of a batch gets its own sampling grid: for each output pixel, the point of the
input it is read from (inverse affine map plus a smooth random displacement field), read
with bilinear interpolation and zeros outside the image. The randomness comes from the
generator passed in, so a seeded generator gives the same batch (the ``DataLoader`` seeds
one per batch, which makes this resumable).

Magnitudes are given for 28x28 images and scale with the image side: translations and
the elastic strength in pixels grow with ``side / 28``, the elastic smoothness too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np

#: What ``--augment`` accepts: no augmentation, the original integer shifts of up to 2
#: pixels, those shifts and random left-right mirroring (for pictures of things, not for
#: digits), random affine maps, or random affine maps followed by elastic distortion.
KINDS = ("none", "shift", "flip", "affine", "elastic")


@dataclass(frozen=True)
class Distortion:
    """Ranges of the random distortion (for a 28x28 image; see the module docstring).

    ``degrees``: rotation drawn uniformly from [-degrees, degrees]; ``scale``: zoom factor
    from [1 - scale, 1 + scale]; ``shear``: horizontal shear angle in degrees from
    [-shear, shear]; ``translate``: shift in pixels from [-translate, translate] on each
    axis; ``alpha`` and ``sigma``: strength (pixels) and smoothness (Gaussian standard
    deviation, pixels) of the elastic field, ``alpha=0`` for none."""
    degrees: float = 12.0
    scale: float = 0.10
    shear: float = 10.0
    translate: float = 2.0
    alpha: float = 0.0
    sigma: float = 4.0


#: The distortion each ``--augment`` kind applies (``shift`` is handled by ``shift_images``).
PRESETS: Dict[str, Distortion] = {
    "affine": Distortion(),
    # Simard et al. used alpha 34, sigma 4 on 29x29 images, with their field drawn from
    # U(-1, 1) and a Gaussian of total weight 1: displacements of about 1 to 2 pixels.
    "elastic": Distortion(alpha=34.0, sigma=4.0),
}


def loader_options(kind: str) -> Dict[str, Any]:
    """The ``DataLoader`` arguments of an ``--augment`` kind: ``augment_shift`` (pixels),
    ``flip`` and ``distortion``."""
    return {"augment_shift": 2 if kind in ("shift", "flip") else 0, "flip": kind == "flip",
            "distortion": PRESETS.get(kind)}


def gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """``(n, n)`` matrix ``G`` such that ``G @ v`` is ``v`` convolved with a normalised
    Gaussian of standard deviation ``sigma`` (zeros outside), truncated at 3 sigma."""
    i = np.arange(n)
    d = i[:, None] - i[None, :]
    g = np.exp(-0.5 * (d / sigma) ** 2) * (np.abs(d) <= max(1.0, 3 * sigma))
    return (g / np.exp(-0.5 * (np.arange(-int(3 * sigma), int(3 * sigma) + 1) / sigma) ** 2)
            .sum()).astype(np.float32)


def _affine_sources(b: int, h: int, w: int, dist: Distortion,
                    rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Source coordinates ``(B, H, W)`` (rows, cols) of an output grid under random
    affine maps about the image centre."""
    k = max(h, w) / 28.0
    angle = np.deg2rad(rng.uniform(-dist.degrees, dist.degrees, b))
    zoom = rng.uniform(1 - dist.scale, 1 + dist.scale, b)
    shear = np.deg2rad(rng.uniform(-dist.shear, dist.shear, b))
    ty, tx = rng.uniform(-dist.translate, dist.translate, (2, b)) * k
    # forward map in (x, y): A = R(angle) @ [[1, tan(shear)], [0, 1]] * zoom; written
    # below in (row, column) = (y, x) order. Sources: A^-1 (out - centre - t) + centre.
    cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
    a = np.empty((b, 2, 2))
    a[:, 0, 0], a[:, 0, 1] = (sin * tan + cos) * zoom, sin * zoom
    a[:, 1, 0], a[:, 1, 1] = (cos * tan - sin) * zoom, cos * zoom
    inv = np.linalg.inv(a)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy, xx = np.meshgrid(np.arange(h) - cy, np.arange(w) - cx, indexing="ij")
    oy, ox = yy[None] - ty[:, None, None], xx[None] - tx[:, None, None]
    src_y = inv[:, 0, 0, None, None] * oy + inv[:, 0, 1, None, None] * ox + cy
    src_x = inv[:, 1, 0, None, None] * oy + inv[:, 1, 1, None, None] * ox + cx
    return src_y, src_x


def _elastic_field(b: int, h: int, w: int, dist: Distortion,
                   rng: np.random.Generator) -> np.ndarray:
    """Smooth random displacements ``(2, B, H, W)`` in pixels: U(-1, 1) noise convolved
    with a Gaussian (two matrix products per field), times ``alpha``."""
    k = max(h, w) / 28.0
    noise = rng.uniform(-1.0, 1.0, (2, b, h, w)).astype(np.float32)
    gh, gw = gaussian_matrix(h, dist.sigma * k), gaussian_matrix(w, dist.sigma * k)
    return (gh @ noise @ gw.T) * np.float32(dist.alpha * k)


def bilinear_sample(images: np.ndarray, src_y: np.ndarray, src_x: np.ndarray) -> np.ndarray:
    """Read ``images (B, C, H, W)`` at the real coordinates ``src_y, src_x (B, H, W)`` with
    bilinear interpolation; points outside the image read zeros."""
    b, c, h, w = images.shape
    padded = np.pad(images, ((0, 0), (0, 0), (1, 2), (1, 2)))  # zeros around the image
    # Beyond one pixel outside, every neighbour read is in the zero border: clipping
    # there changes nothing and keeps the indices inside the padded frame.
    src_y, src_x = np.clip(src_y, -1.0, float(h)), np.clip(src_x, -1.0, float(w))
    y0, x0 = np.floor(src_y), np.floor(src_x)
    fy = (src_y - y0).astype(np.float32).reshape(b, 1, -1)
    fx = (src_x - x0).astype(np.float32).reshape(b, 1, -1)
    stride = w + 3
    plane = (h + 3) * stride                      # one padded channel, flattened
    base = ((y0.astype(np.int64) + 1) * stride + x0.astype(np.int64) + 1).reshape(b, 1, -1)
    index = base + (np.arange(b * c).reshape(b, c, 1) * plane)   # into padded.ravel()
    flat = padded.ravel()

    def at(offset: int) -> np.ndarray:
        return np.take(flat, index + offset)

    top = at(0) * (1 - fx) + at(1) * fx
    bottom = at(stride) * (1 - fx) + at(stride + 1) * fx
    return (top * (1 - fy) + bottom * fy).reshape(b, c, h, w).astype(images.dtype, copy=False)


def distort(images: np.ndarray, dist: Distortion, rng: np.random.Generator,
            shape: Tuple[int, int, int], fill: float = 0.0) -> np.ndarray:
    """Randomly distort a batch: ``images`` are ``(B, C*H*W)`` or ``(B, [C,] H, W)`` of one
    image ``shape`` ``(C, H, W)``; returns the same shape and dtype. ``fill`` is the value
    of a blank pixel (0 for raw images, the standardised value of black after
    standardisation): what the distortion brings in from outside the image is blank."""
    c, h, w = shape
    b = len(images)
    x = np.asarray(images).reshape(b, c, h, w)
    src_y, src_x = _affine_sources(b, h, w, dist, rng)
    if dist.alpha:
        dy, dx = _elastic_field(b, h, w, dist, rng)
        src_y, src_x = src_y + dy, src_x + dx
    f = np.float32(fill)
    out = bilinear_sample(x - f if fill else x, src_y, src_x)
    if fill:
        out += f
    return out.reshape(np.shape(images))
