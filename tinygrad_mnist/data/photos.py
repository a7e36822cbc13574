"""Turning a photo, scan or drawing of one handwritten digit into what MNIST looks like:
light ink on black, fitted into 20x20 and centred by its centre of mass in 28x28.

:func:`mnist_style` is the one preprocessing of ``predict``, ``serve`` and the library.
On a working copy of at most ``WORK_SIDE`` pixels on its longer side, it first tells a
clean scan or drawing from a photo (:func:`is_photo`: an uneven page, noise, or low
contrast make a photo), then:

* **A clean scan or drawing** (:func:`clean_ink`) keeps its grey levels: soft strokes
  stay soft. The paper is the median of the border, the ink what differs from it,
  scaled to a strongest ink of 1; only the faint halo around the strokes (under a fifth
  of the strongest ink: what upscaling or a scanner's blur adds) counts as paper.
* **A photo** (:func:`photo_ink`) gets the steps below, which flatten the background
  and threshold the ink: right for uneven light, shadows and specks, wrong for soft
  strokes on a clean page (they lose ink):

1. **Size and colour.** The image is reduced to at most ``WORK_SIDE`` pixels on its longer
   side. Of its grey value and its red, green and blue channels, the one in which the ink
   stands out most is used (blue ink on yellow paper, red on green), and whether the ink
   is darker or lighter than the paper: on a small copy, each pixel is compared with the
   median around it (the paper there, shadows included); the ink's side is the long one.
2. **Uneven lighting and shadows.** The paper is estimated by a morphological opening of
   the (light-ink) image with a square about a quarter of the image wide: it removes
   anything narrower than that (the strokes) and keeps what is broader (gradients,
   shadows, the paper's own tone); the ink is what stands above it, and for dark ink on
   paper it is taken relative to the paper's brightness there (ink in a shadow reflects
   less light, like the paper around it).
3. **Noise and specks.** A small blur first; then Otsu's threshold on the ink separates
   strokes from paper, the connected pieces (8-neighbours) are found, and only the largest
   (preferring one clear of the image's border: a shadow's sliver comes in from there),
   the pieces close to it that are at least a tenth of its size and the smaller pieces
   within its bounds (a stroke broken in two) are kept. A picture under 64 pixels is
   taken to be cropped to its digit: its paper is one grey (its median) and all its
   ink is kept.
4. **Thick and thin strokes.** Ink intensity is normalised (a faint pencil line counts as
   much as a marker), and strokes thinner than MNIST's after scaling are thickened.

Strokes thinner than MNIST's once scaled are thickened on both paths. :func:`load_image`
reads a file with its EXIF orientation applied (a phone's portrait photo stands upright).
Everything here is NumPy and Pillow.
"""
from __future__ import annotations

import os
from typing import BinaryIO, Tuple, Union

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

IMAGE_SIZE = 28
#: The largest picture read by ``predict`` and ``serve``, in pixels (a decompression
#: bomb declares far more).
MAX_IMAGE_PIXELS = 50_000_000
WORK_SIDE = 256        # longer side of the working copy of a photo, in pixels
_MIN_CONTRAST = 0.1    # ink must be this much darker/brighter than the paper (0..1)
_INK_THRESHOLD = 0.2   # fraction of full ink that counts for the bounding box
_BOX = 20              # MNIST fits each digit into 20x20, then centres it in 28x28
_KEEP_FRACTION = 0.1   # pieces smaller than this fraction of the largest are specks
_STROKE = 2.0          # thinnest stroke (pixels, in the 20x20 box) left as it is
_POLARITY_SIDE = 64    # longer side of the copy on which the ink's channel is chosen
_TIGHT_CROP = 64       # pictures with a shorter side below this are cropped to the digit
_CLEAN_SPREAD = 0.01   # a clean page's border: median deviation from its median (0..1)
_CLEAN_CORNERS = 0.03  # a clean page's three most paper-like corners: their range (0..1)
_CLEAN_NOISE = 0.01    # a clean page's border: median |difference of neighbours| (0..1)
_CLEAN_CONTRAST = 0.25  # a clean page's ink differs at least this much from the paper
_HALO = 0.2            # on a clean page, ink fainter than this (of the strongest) is paper
_LANCZOS = getattr(Image, "Resampling", Image).LANCZOS
_BOX_FILTER = getattr(Image, "Resampling", Image).BOX


# ------------------------------------------------------------------ morphology helpers
def _run_extreme(a: np.ndarray, k: int, axis: int, op: np.ufunc) -> np.ndarray:
    """Running max (``np.maximum``) or min (``np.minimum``) over windows of ``k`` pixels
    centred on each pixel along ``axis``, edges extended: van Herk/Gil-Werman, two
    cumulative passes per block of ``k``, whatever ``k`` is."""
    if k <= 1:
        return a
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    r = k // 2
    padded = np.concatenate([np.repeat(a[..., :1], r, -1), a,
                             np.repeat(a[..., -1:], k - 1 - r + (-(n + k - 1) % k), -1)], -1)
    blocks = padded.reshape(*a.shape[:-1], -1, k)
    forward = op.accumulate(blocks, axis=-1).reshape(padded.shape)
    backward = op.accumulate(blocks[..., ::-1], axis=-1)[..., ::-1].reshape(padded.shape)
    out = op(backward[..., :n], forward[..., k - 1:k - 1 + n])
    return np.moveaxis(out, -1, axis)


def _filter2d(a: np.ndarray, k: int, op: np.ufunc) -> np.ndarray:
    return _run_extreme(_run_extreme(a, k, 0, op), k, 1, op)


def opening(a: np.ndarray, k: int) -> np.ndarray:
    """Grey opening with a ``k`` x ``k`` square: erosion (min) then dilation (max)."""
    return _filter2d(_filter2d(a, k, np.minimum), k, np.maximum)


def dilation(a: np.ndarray, k: int) -> np.ndarray:
    """Grey dilation with a ``k`` x ``k`` square (running max)."""
    return _filter2d(a, k, np.maximum)


def box_blur(a: np.ndarray, k: int = 3) -> np.ndarray:
    """Mean over ``k`` x ``k`` windows (edges extended)."""
    r = k // 2
    p = np.pad(a, r, mode="edge")
    c = np.cumsum(np.cumsum(np.pad(p, ((1, 0), (1, 0))), 0), 1)
    h, w = a.shape
    return (c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]) / (k * k)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut between two classes of ``values`` that maximises the
    variance between their means."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist).astype(np.float64)
    w1 = w0[-1] - w0
    s0 = np.cumsum(hist * centres)
    with np.errstate(divide="ignore", invalid="ignore"):
        m0, m1 = s0 / w0, (s0[-1] - s0) / w1
        between = w0 * w1 * (m0 - m1) ** 2
    between[~np.isfinite(between)] = -1
    return float(edges[int(np.argmax(between)) + 1])


def components(mask: np.ndarray) -> np.ndarray:
    """Labels of the 8-connected pieces of ``mask`` (0 outside it): each pixel's label is
    one more than the smallest flat index in its piece. Minimum-label propagation with
    pointer jumping, vectorised over the image."""
    h, w = mask.shape
    big = h * w + 1
    labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        p = np.pad(labels, 1, constant_values=big)
        m = labels
        for dy in (0, 1, 2):
            for dx in (0, 1, 2):
                m = np.minimum(m, p[dy:dy + h, dx:dx + w])
        m = np.where(mask, m, big)
        flat = m.ravel()
        inside = flat < big
        while True:  # pointer jumping: follow each label to its pixel's label
            jumped = flat.copy()
            jumped[inside] = flat[flat[inside] - 1]
            if np.array_equal(jumped, flat):
                break
            flat = jumped
        m = flat.reshape(h, w)
        if np.array_equal(m, labels):
            return np.where(mask, labels, 0)
        labels = m


# ------------------------------------------------------------------------ the pipeline
def float_planes(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> float64 channels ``(C, H, W)`` in [0, 1], reduced to
    at most ``WORK_SIDE`` on the longer side (area averaging)."""
    raw = np.asarray(image)
    if raw.ndim == 3 and raw.shape[2] in (3, 4):
        planes = raw[..., :3].transpose(2, 0, 1)
    elif raw.ndim == 2:
        planes = raw[None]
    else:
        raise ValueError(f"expected a non-empty 2-D greyscale (H, W) or colour (H, W, 3) image, "
                         f"got shape {raw.shape}")
    if raw.size == 0:
        raise ValueError(f"expected a non-empty 2-D greyscale image, got shape {raw.shape}")
    if raw.dtype == np.uint8 and max(raw.shape[:2]) > 4 * WORK_SIDE:  # a phone photo:
        factor = -(-max(raw.shape[:2]) // (4 * WORK_SIDE))             # shrink it first
        planes = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p)).reduce(factor))
                           for p in planes])
    a = planes.astype(np.float64)
    if raw.dtype.kind in "iub" or a.max() > 1:
        a = a / 255.0
    h, w = a.shape[1:]
    if max(h, w) > WORK_SIDE:
        f = WORK_SIDE / max(h, w)
        size = (max(1, round(w * f)), max(1, round(h * f)))
        a = np.stack([np.asarray(Image.fromarray(p.astype(np.float32)).resize(size, _BOX_FILTER),
                                 dtype=np.float64) for p in a])
    return a


def _local_median(a: np.ndarray, k: int) -> np.ndarray:
    """Median over ``k`` x ``k`` windows (edges extended), from every other pixel of each
    window: the paper around each pixel, whatever strokes, loops or shadow edges are
    there (a median keeps a step where it is, and the strokes are the minority)."""
    r = k // 2
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(a, r, mode="edge"), (k, k))
    return np.median(windows[:, :, ::2, ::2], axis=(2, 3))


def _ink_channel(planes: np.ndarray) -> Tuple[np.ndarray, bool]:
    """The plane (grey, or one colour channel) in which the ink stands out most, turned
    into light ink on dark paper, and whether the ink was the darker (it is inverted).

    Judged on a small copy (at most ``_POLARITY_SIDE`` pixels), where the ink's tails are
    the long ones: of the histogram (the paper is the majority), and of each pixel's
    difference from the median around it (the ink where there is ink, about zero
    elsewhere: gradients, shadows and the paper inside loops included; this one still
    tells when a shadow covers half the page). The signed lengths are added up. Raises
    ValueError when there is no ink."""
    grey = len(planes) == 1 or (np.array_equal(planes[0], planes[1])
                                and np.array_equal(planes[0], planes[2]))
    candidates = [planes[0]] if grey else [
        0.299 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2], *planes]
    h, w = planes.shape[1:]
    f = min(1.0, _POLARITY_SIDE / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    k = max(3, int(0.25 * min(size)) | 1)
    best, best_score, best_contrast = candidates[0], 0.0, 0.0
    for plane in candidates:
        small = np.asarray(Image.fromarray(plane.astype(np.float32)).resize(size, _BOX_FILTER),
                           dtype=np.float64)
        low, mid, high = np.percentile(small, [0.5, 50, 99.5])
        d_low, d_high = np.percentile(small - _local_median(small, k), [0.5, 99.5])
        score = (mid - low) - (high - mid) - d_low - d_high   # > 0: dark tails are longer
        if abs(score) > abs(best_score):
            best, best_score = plane, score
            best_contrast = max(mid - low, high - mid, -d_low, d_high)
    if best_contrast < _MIN_CONTRAST / 2 or abs(best_score) < _MIN_CONTRAST / 4:
        raise ValueError("no ink found: the image is empty (uniform background)")
    return (1.0 - best if best_score > 0 else best), best_score > 0


def _keep_digit(mask: np.ndarray) -> np.ndarray:
    """The digit's pieces of ``mask``: the largest piece (one that does not lie along the
    image's border if such a piece is at least a fifth as large: a shadow's sliver comes
    in from the border along a long stretch of it, a digit seldom does) and the pieces
    near it that are not specks."""
    if min(mask.shape) < _TIGHT_CROP:   # a tight crop, not a photo: all its ink is the digit
        return mask
    labels = components(mask)
    ids, areas = np.unique(labels[labels > 0], return_counts=True)
    if not len(ids):
        return mask
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]])
    along = np.bincount(edge, minlength=labels.max() + 1)[ids]   # border pixels per piece
    inside = along < 0.3 * min(mask.shape)
    main = ids[np.argmax(areas)]
    if inside.any() and areas[inside].max() >= 0.2 * areas.max():
        main = ids[inside][np.argmax(areas[inside])]
    main_area = areas[ids == main][0]
    ys, xs = np.nonzero(labels == main)
    h, w = np.ptp(ys) + 1, np.ptp(xs) + 1
    top, bottom = ys.min() - h / 4, ys.max() + h / 4
    left, right = xs.min() - w / 4, xs.max() + w / 4
    keep = labels == main
    for i, area, within in zip(ids, areas, inside):
        if i == main or area < _KEEP_FRACTION / 5 * main_area or (not within and inside.any()):
            continue
        py, px = np.nonzero(labels == i)
        near = (py.max() >= top and py.min() <= bottom and px.max() >= left
                and px.min() <= right)
        enclosed = (py.min() >= ys.min() and py.max() <= ys.max() and px.min() >= xs.min()
                    and px.max() <= xs.max())   # a piece of a broken stroke, inside the digit
        if (near and area >= _KEEP_FRACTION * main_area) or enclosed:
            keep |= labels == i
    return keep


def isolate_ink(image: np.ndarray) -> np.ndarray:
    """The digit's ink as ``float64 (h, w)`` in [0, 1] on a black background, at
    working resolution (at most ``WORK_SIDE`` pixels on the longer side), by the steps
    :func:`is_photo` chooses: :func:`clean_ink` for a clean scan or drawing,
    :func:`photo_ink` for a photo. Raises ValueError without ink."""
    planes = float_planes(image)
    return photo_ink(planes) if is_photo(planes) else clean_ink(planes)


def is_photo(planes: np.ndarray) -> bool:
    """Whether ``planes`` (from :func:`float_planes`) look like a photo rather than a
    clean scan or drawing. On the grey image, a photo's page is

    * uneven: the border's median absolute deviation from its median exceeds
      ``_CLEAN_SPREAD`` (a gradient), or the medians of the three corners (an eighth of
      the picture wide) most like paper differ by more than ``_CLEAN_CORNERS`` (a
      shadow over part of the page; the fourth corner may hold ink);
    * noisy: the median difference between neighbours along the border exceeds
      ``_CLEAN_NOISE`` (sensor noise, JPEG artefacts on a textured page);
    * or of low contrast: no pixel differs from the paper by ``_CLEAN_CONTRAST`` (faint
      ink, or ink that only shows in one colour channel)."""
    grey = _grey(planes)
    ring = (np.concatenate([grey[0, :-1], grey[:-1, -1], grey[-1, :0:-1], grey[:0:-1, 0]])
            if min(grey.shape) >= 3 else grey.ravel())    # the border, clockwise
    paper = np.median(ring)
    spread = np.median(np.abs(ring - paper))
    noise = np.median(np.abs(np.diff(ring))) if len(ring) > 1 else 0.0
    c = max(1, min(grey.shape) // 8)
    corners = np.sort(np.median([grey[:c, :c], grey[:c, -c:], grey[-c:, :c], grey[-c:, -c:]],
                                axis=(1, 2)))
    shadow = corners[3] - corners[1] if paper > 0.5 else corners[2] - corners[0]
    contrast = max(paper - grey.min(), grey.max() - paper)
    return bool(spread > _CLEAN_SPREAD or shadow > _CLEAN_CORNERS or noise > _CLEAN_NOISE
                or contrast < _CLEAN_CONTRAST)


def clean_ink(planes: np.ndarray) -> np.ndarray:
    """A clean scan's or drawing's ink, its grey levels kept: a small blur (pictures of 48
    pixels or more), the paper is the median of the picture's border, the ink is what
    differs from it on the side where it differs most (dark ink on light paper or light
    on dark), scaled so that the strongest ink is 1; the faint halo around the strokes
    (below ``_HALO`` of the strongest ink: what upscaling and a scanner's blur add, much
    wider than MNIST's rim) is taken as paper. Strokes thinner than MNIST's once scaled
    are thickened (grey dilation). Raises ValueError without ink."""
    grey = _grey(planes)
    if min(grey.shape) >= 48:
        grey = box_blur(grey, 3)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    paper = float(np.median(border))
    if paper - grey.min() > grey.max() - paper:   # dark ink on light paper
        grey, paper = 1.0 - grey, 1.0 - paper
    ink = np.clip(grey - paper, 0.0, None)
    if ink.max() < _MIN_CONTRAST:
        raise ValueError("no ink found: the image is empty (uniform background)")
    ink /= ink.max()
    core = ink > 0.5
    return _thicken(np.clip((ink - _HALO) / (1.0 - _HALO), 0.0, 1.0), core)


def _grey(planes: np.ndarray) -> np.ndarray:
    """The grey image of ``planes``: the one plane, or the luma of red, green, blue."""
    if len(planes) == 1:
        return planes[0]
    return 0.299 * planes[0] + 0.587 * planes[1] + 0.114 * planes[2]


def _thicken(soft: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``soft`` ink dilated if the strokes of ``mask`` (the ink's core) are thinner than
    ``_STROKE`` pixels once the digit is fitted into the 20x20 box."""
    boundary = mask & ~_erode3(mask)
    width = 2 * mask.sum() / max(boundary.sum(), 1)
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return soft
    factor = _BOX / max(np.ptp(ys) + 1, np.ptp(xs) + 1)
    if width * factor < _STROKE:
        grow = int(round((_STROKE / factor - width)))
        if grow >= 1:
            soft = dilation(soft, grow + 1)
    return soft


def _erode3(mask: np.ndarray) -> np.ndarray:
    """Binary erosion of ``mask`` with a 3x3 square (edges extended)."""
    p = np.pad(mask, 1, mode="edge")
    rows = p[:-2] & p[1:-1] & p[2:]
    return rows[:, :-2] & rows[:, 1:-1] & rows[:, 2:]


def photo_ink(planes: np.ndarray) -> np.ndarray:
    """Steps 1 to 4 of the module docstring for a photo: the digit's ink as ``float64
    (h, w)`` in [0, 1] on a black background. Raises ValueError without ink."""
    a, inverted = _ink_channel(planes)
    h, w = a.shape
    if min(h, w) >= 48:
        a = box_blur(a, 3)
    k = max(3, int(0.25 * min(h, w)) | 1)
    if min(h, w) < _TIGHT_CROP:   # cropped to the digit: its strokes may be as wide as k
        background = np.full_like(a, np.median(a))
    else:
        background = opening(a, k)
    ink = np.clip(a - background, 0.0, None)
    if inverted:  # dark ink reflects a fixed share of the light on it: divide the light out
        ink = ink / np.maximum(1.0 - background, 0.2) * (1.0 - np.median(background))
    if ink.max() < _MIN_CONTRAST:
        raise ValueError("no ink found: the image is empty (uniform background)")
    mask = ink > max(otsu_threshold(ink), 0.25 * ink.max())
    mask = _keep_digit(mask)
    full = np.percentile(ink[mask], 90)
    soft = np.clip(ink / full, 0.0, 1.0) * (dilation(mask.astype(np.float64), 5) > 0)
    return _thicken(soft, mask)   # strokes thinner than MNIST's once scaled


def mnist_style(image: np.ndarray) -> np.ndarray:
    """Make an image of one handwritten digit look like MNIST: light ink on black, cropped
    to the ink, fitted into 20x20 keeping the aspect ratio (antialiased), pasted into 28x28
    with its centre of mass at the centre. ``image`` is greyscale ``(H, W)`` or colour
    ``(H, W, 3)`` (any size; uint8 0..255, or float in [0, 1]). A clean scan or drawing
    keeps its grey levels (:func:`clean_ink`); a photo's uneven light, shadows, noise,
    coloured ink or paper and stray specks are handled (:func:`photo_ink`; which one is
    :func:`is_photo`'s call). Returns ``float32 (28, 28)`` in [0, 1]; raises ValueError
    if there is no ink."""
    return fit_to_mnist_box(isolate_ink(image))


def fit_longer_side(crop: np.ndarray, side: int) -> np.ndarray:
    """`crop` (2-D floats) resized, antialiased, so that its longer side is `side`
    pixels, keeping its aspect ratio (float32)."""
    h, w = crop.shape
    factor = side / max(h, w)
    size = (max(1, round(w * factor)), max(1, round(h * factor)))  # Pillow wants (w, h)
    return np.asarray(Image.fromarray(crop.astype(np.float32)).resize(size, _LANCZOS))


def fit_to_mnist_box(ink: np.ndarray) -> np.ndarray:
    """MNIST's own steps for an image of ink (2-D, >= 0, strongest ink 1, background 0):
    crop to the ink, fit it into 20x20 keeping the aspect ratio (antialiased), paste it
    into 28x28 with its centre of mass at the centre. Returns ``float32 (28, 28)`` in
    [0, 1]."""
    rows = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > _INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    small = np.clip(fit_longer_side(crop, _BOX), 0.0, None)
    small /= small.max()
    total = small.sum()
    cy = (small.sum(axis=1) @ np.arange(small.shape[0])) / total
    cx = (small.sum(axis=0) @ np.arange(small.shape[1])) / total
    centre = IMAGE_SIZE / 2  # MNIST's centres of mass average (14.0, 14.0) in index coordinates
    top = int(np.clip(round(centre - cy), 0, IMAGE_SIZE - small.shape[0]))
    left = int(np.clip(round(centre - cx), 0, IMAGE_SIZE - small.shape[1]))
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    out[top:top + small.shape[0], left:left + small.shape[1]] = small
    return np.clip(out, 0.0, 1.0)


def load_image(path: Union[str, os.PathLike, BinaryIO], color: bool = False) -> np.ndarray:
    """Read a PNG/JPEG (or any Pillow format) as ``uint8``: greyscale ``(H, W)``, or
    ``(H, W, 3)`` with ``color``. ``path`` is a file name or a binary file object. The
    EXIF orientation is applied; transparent areas are flattened onto white. Raises
    FileNotFoundError/ValueError naming the file."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"cannot read image {path}: {e}") from e
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(im.convert("RGB" if color else "L"), dtype=np.uint8)


def side_by_side(original: np.ndarray, seen: np.ndarray, caption: str = "",
                 height: int = 224) -> Image.Image:
    """A picture of ``original`` (as read, scaled to ``height``) beside ``seen``, the 28x28
    image a model was given (scaled up without smoothing), with ``caption`` below."""
    src = Image.fromarray(np.asarray(original, dtype=np.uint8)).convert("RGB")
    src = src.resize((max(1, round(src.width * height / src.height)), height), _LANCZOS)
    model_in = Image.fromarray(np.rint(np.clip(seen, 0, 1) * 255).astype(np.uint8))
    model_in = model_in.resize((height, height), Image.NEAREST).convert("RGB")
    gap, text_h = 8, 22 if caption else 0
    canvas = Image.new("RGB", (src.width + gap + height, height + text_h), (255, 255, 255))
    canvas.paste(src, (0, 0))
    canvas.paste(model_in, (src.width + gap, 0))
    if caption:
        ImageDraw.Draw(canvas).text((4, height + 5), caption, fill=(0, 0, 0))
    return canvas

