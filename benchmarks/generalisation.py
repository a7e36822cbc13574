#!/usr/bin/env python
"""How well trained digit models do on digits that are not MNIST's test set.

Three test sets, each built on the fly and written to --out so that it can be looked at:

* ``photos``: synthetic photos of digits on paper. Each is an MNIST *test* digit drawn as
  dark ink (black, blue, red or green) on paper of a random tint, scaled up, rotated a
  little and placed off-centre, then lit unevenly: a linear gradient of +-25 to +-60 grey
  levels, in half of them a shadow with a soft edge across the page, noise, a few specks,
  saved as a JPEG; a quarter are stored turned by 90 or 270 degrees with the EXIF
  orientation that turns them back, as phones do. The ``gradient+shadow`` subset is the
  issue's target.
* ``fonts``: the digits 0-9 rendered with every TrueType/OpenType font the machine has
  (``fc-list``; symbol fonts, whose digits all look alike, are left out), at three
  rotations and two stroke widths, dark on white.
* ``uci``: the UCI optical handwritten digits (43 writers, 8x8 counts of 4x4 blocks),
  read from the ``digits.csv.gz`` that scikit-learn ships, given with --uci FILE.

Every image goes through the same path as ``tinygrad-mnist predict``: ``load_image``,
``mnist_style``, the model. Usage::

    python benchmarks/generalisation.py RUN_DIR [RUN_DIR ...] --out gen/ [--uci digits.csv.gz]

The preprocessed sets are kept in --out (``photos.npz``, ...) and reused; delete them to
build the sets again. ``--record`` adds every accuracy to ``benchmarks/results.json``,
from which the tables of docs/ are drawn.
"""
from __future__ import annotations

import argparse
import gzip
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tinygrad_mnist import threads
from tinygrad_mnist.data import load_image, load_mnist, mnist_style
from tinygrad_mnist.app.inference import load_trained

EXIF_ORIENTATION = 0x0112


# ------------------------------------------------------------------------- photos
def synthetic_photo(digit: np.ndarray, rng: np.random.Generator, shadow: bool
                    ) -> Tuple[Image.Image, Dict[str, float]]:
    """One synthetic phone photo (RGB) of an MNIST digit ``(28, 28) uint8``."""
    w, h = int(rng.integers(320, 480)), int(rng.integers(260, 400))
    side = int(rng.integers(int(0.45 * min(w, h)), int(0.8 * min(w, h))))
    big = Image.fromarray(digit).resize((side, side), Image.BICUBIC)
    big = big.rotate(float(rng.uniform(-10, 10)), Image.BICUBIC)
    ink = np.clip(np.asarray(big, np.float64) / 255 * 1.3, 0, 1)       # stroke coverage
    coverage = np.zeros((h, w))
    top, left = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
    coverage[top:top + side, left:left + side] = ink
    for _ in range(int(rng.integers(0, 5))):                          # specks
        y, x, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(1, 3))
        coverage[max(0, y - r):y + r, max(0, x - r):x + r] = 1.0
    paper = np.array([255, 255, 255]) - rng.uniform(0, 45, 3)        # a tinted paper
    ink_colour = [np.array([20, 20, 25]), np.array([20, 40, 150]), np.array([170, 20, 25]),
                  np.array([20, 110, 40])][int(rng.integers(0, 4))]
    rgb = paper * (1 - coverage[..., None]) + ink_colour * coverage[..., None]
    amplitude = rng.uniform(25, 60)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w]
    ramp = ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / (max(w, h) / 2)
    light = amplitude * ramp
    if shadow:
        a, b = rng.uniform(-1, 1, 2)
        edge = (xx - w / 2) * a + (yy - h / 2) * b - rng.uniform(-0.3, 0.3) * max(w, h)
        soft = np.asarray(Image.fromarray((edge > 0).astype(np.uint8) * 255).filter(
            ImageFilter.GaussianBlur(rng.uniform(1, 8))), np.float64) / 255
        rgb = rgb * (1 - soft[..., None] * rng.uniform(0.25, 0.45))
    rgb = rgb + light[..., None] + rng.normal(0, rng.uniform(2, 10), rgb.shape)
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    return image, {"gradient": amplitude, "shadow": float(shadow)}


def save_photo(image: Image.Image, path: Path, rng: np.random.Generator) -> None:
    """Save as a JPEG; a quarter turned by 90/270 degrees with the EXIF tag that undoes it."""
    exif = Image.Exif()
    turn = rng.random()
    if turn < 0.125:
        image, exif[EXIF_ORIENTATION] = image.transpose(Image.ROTATE_90), 6   # view: 270
    elif turn < 0.25:
        image, exif[EXIF_ORIENTATION] = image.transpose(Image.ROTATE_270), 8
    image.save(path, quality=int(rng.integers(70, 92)), exif=exif)


def build_photos(out: Path, n: int, seed: int = 0) -> List[Tuple[Path, int, str]]:
    mnist = load_mnist(download=False, quiet=True)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(mnist.test_labels), n, replace=False)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for j, i in enumerate(pick):
        shadow = j % 2 == 1
        image, _ = synthetic_photo(mnist.test_images[i], rng, shadow)
        path = out / f"{j:04d}_{mnist.test_labels[i]}.jpg"
        save_photo(image, path, rng)
        items.append((path, int(mnist.test_labels[i]),
                      "gradient+shadow" if shadow else "gradient"))
    return items


# -------------------------------------------------------------------------- fonts
def machine_fonts() -> List[str]:
    listing = subprocess.run(["fc-list", ":", "file"], capture_output=True, text=True).stdout
    paths = {line.split(":")[0].strip() for line in listing.splitlines()}
    return sorted(p for p in paths if p.lower().endswith((".ttf", ".otf")))


def build_fonts(out: Path) -> List[Tuple[Path, int, str]]:
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for f, font_path in enumerate(machine_fonts()):
        glyphs = []
        for size in (64,):
            try:
                font = ImageFont.truetype(font_path, size)
            except OSError:
                break
            for d in range(10):
                for angle in (-10, 0, 10):
                    for stroke in (0, max(1, size // 32)):
                        canvas = Image.new("L", (3 * size, 3 * size), 255)
                        ImageDraw.Draw(canvas).text((size, size // 2), str(d), font=font,
                                                    fill=0, stroke_width=stroke, stroke_fill=0)
                        glyphs.append((canvas.rotate(angle, fillcolor=255), d, size, angle,
                                       stroke))
        # skip symbol fonts: their ten digits must differ from each other
        if not glyphs or len({g[0].tobytes() for g in glyphs[:60:6]}) < 10:
            continue
        for canvas, d, size, angle, stroke in glyphs:
            path = out / f"f{f:03d}_{d}_{size}_{angle}_{stroke}.png"
            canvas.save(path)
            items.append((path, d, "fonts"))
    return items


# ---------------------------------------------------------------------------- UCI
def build_uci(out: Path, csv_gz: Path) -> List[Tuple[Path, int, str]]:
    out.mkdir(parents=True, exist_ok=True)
    rows = np.loadtxt(gzip.open(csv_gz, "rt"), delimiter=",")
    items = []
    for i, row in enumerate(rows):
        grid = (row[:64].reshape(8, 8) / 16 * 255).astype(np.uint8)
        big = Image.fromarray(grid).resize((32, 32), Image.BILINEAR)  # light ink on black
        path = out / f"{i:04d}_{int(row[64])}.png"
        big.save(path)
        items.append((path, int(row[64]), "uci"))
    return items


# -------------------------------------------------------------------------- evaluate
def preprocess(items: List[Tuple[Path, int, str]]) -> np.ndarray:
    """Every image as ``predict`` gives it to the model (a blank one where it finds no
    ink: counted as a miss)."""
    images = []
    for path, _, _ in items:
        try:
            images.append(mnist_style(load_image(path, color=True)))
        except ValueError:
            images.append(np.zeros((28, 28), np.float32))
    return np.stack(images)


def evaluate(run: Path, items: List[Tuple[Path, int, str]],
             images: np.ndarray) -> Dict[str, Tuple[int, int]]:
    trained = load_trained(run)
    labels = [label for _, label, _ in items]
    groups = [group for _, _, group in items]
    pred = trained.predict_proba(images).argmax(1)
    right = pred == np.array(labels)
    result = {"all": (int(right.sum()), len(right))}
    for g in sorted(set(groups)):
        sel = np.array(groups) == g
        result[g] = (int(right[sel].sum()), int(sel.sum()))
    result["predicted_1"] = (int((pred == 1).sum()), len(pred))
    return result


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories to evaluate")
    parser.add_argument("--out", type=Path, default=Path("generalisation"))
    parser.add_argument("--photos", type=int, default=400, help="synthetic photos to make")
    parser.add_argument("--uci", type=Path, help="scikit-learn's digits.csv.gz")
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (default 1, as the other benchmarks)")
    parser.add_argument("--record", action="store_true",
                        help="add the accuracies to benchmarks/results.json")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    with threads.limited(args.threads):
        return _evaluate_all(args)


def _evaluate_all(args: argparse.Namespace) -> int:
    builders = {"photos": lambda: build_photos(args.out / "photos", args.photos),
                "fonts": lambda: build_fonts(args.out / "fonts")}
    if args.uci:
        builders["uci"] = lambda: build_uci(args.out / "uci", args.uci)
    sets, seen = {}, {}
    for name, build in builders.items():
        cache = args.out / f"{name}.npz"    # what the models see, kept for the next run
        if cache.exists():
            with np.load(cache) as saved:
                seen[name] = saved["images"]
                sets[name] = [(Path(p), int(y), str(g)) for p, y, g in
                              zip(saved["paths"], saved["labels"], saved["groups"])]
        else:
            sets[name] = build()
            seen[name] = preprocess(sets[name])
            np.savez(cache, images=seen[name], paths=[str(p) for p, _, _ in sets[name]],
                     labels=[y for _, y, _ in sets[name]], groups=[g for _, _, g in sets[name]])
        print(f"{name}: {len(sets[name])} images", flush=True)
    for run in args.runs:
        for name, items in sets.items():
            result = evaluate(run, items, seen[name])
            parts = [f"{g} {r / n:.2%} ({r}/{n})" for g, (r, n) in result.items()
                     if g not in ("predicted_1",)]
            ones = result["predicted_1"]
            print(f"{run} {name}: " + ", ".join(parts) +
                  f"; predicted '1': {ones[0] / ones[1]:.1%}", flush=True)
            if args.record:
                record(run, result, args.argv)
    return 0


#: The sets' names in benchmarks/results.json.
SET_LABELS = {"gradient": "synthetic photos, gradient only",
              "gradient+shadow": "synthetic photos, gradient and shadow",
              "fonts": "digits in the machine's fonts",
              "uci": "UCI handwritten digits (43 other writers)"}


def run_group(run: Path) -> str:
    """The run's row in results.json: dataset/model, and its augmentation or widths
    where they are not the model's defaults (mnist/cnn-shift, mnist/cnn-wide, ...)."""
    import json
    from tinygrad_mnist.app.config import TrainConfig
    config = json.loads((Path(run) / "config.json").read_text())
    default = TrainConfig.from_dict({"model": config["model"], "dataset": config.get("dataset")})
    group = f"{config.get('dataset') or 'mnist'}/{config['model']}"
    if config.get("augment") not in (None, default.augment):
        group += f"-{config['augment']}"
    if config.get("conv_channels") not in (None, default.conv_channels):
        group += "-" + ("wide" if config["conv_channels"] == [64, 128, 256]
                        else "x".join(map(str, config["conv_channels"])))
    return group


def record(run: Path, result: Dict[str, Tuple[int, int]], argv: List[str]) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import harness
    ones = result["predicted_1"]
    for group, (right, n) in result.items():
        if group in ("all", "predicted_1"):
            continue
        values = {"set": SET_LABELS.get(group, group), "images": n,
                  "accuracy": round(100 * right / n, 1), "run": str(run)}
        if group == "uci":
            values["predicted_1"] = round(100 * ones[0] / ones[1], 1)
        harness.record_result("generalisation", run_group(run), values, Path(__file__), argv)


if __name__ == "__main__":
    sys.exit(main())
