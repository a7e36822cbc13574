"""The offline web app (`tinygrad-mnist export RUN --web DIR`) in headless Chromium, on
127.0.0.1 only: the site's size, how soon the page is ready, and how long predictions take.

For each model (--mlp, --cnn: run directories; default: untrained default models, which
cost the same per forward pass as trained ones) it exports the site, serves it with a
static file server and, for each of `--rounds` rounds, opens it in a fresh browser (new
profile: a first visit, nothing cached), then times in the page (performance.now()):

* ready: from navigation to the model's weights having arrived (the page is usable);
* first prediction: the first drawing after load through the page's steps (the 112x112
  greys it takes from the pad -> preprocess.js -> infer.js), code not yet warm;
* prediction: the median over `--predictions` more drawings; and the forward pass alone;
* photo: the median of three runs of the photo steps (`predict`'s) on a 400x400 picture.

Drawings are MNIST test digits drawn dark on white at 112x112 when the MNIST files are at
hand (TINYGRAD_MNIST_DATA or the user cache), else a stroke. Targets: site <= 2.5 MB (MLP),
<= 1.5 MB (CNN); first prediction <= 200 ms; prediction <= 10 ms (MLP), <= 60 ms (CNN)
median. --check exits 1 if one is missed.

    python benchmarks/bench_web.py --mlp /work/runs/mlp --cnn /work/runs/cnn   # ~1 min
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from PIL import Image

TESTS = Path(__file__).resolve().parent.parent / "tests"
TARGETS = {"mlp": {"site_mb": 2.5, "first_ms": 200.0, "predict_ms": 10.0},
           "cnn": {"site_mb": 1.5, "first_ms": 200.0, "predict_ms": 60.0}}


def default_run(directory: Path, model: str) -> Path:
    """A run directory holding an untrained default `model` as best.npz."""
    from tinygrad_mnist import save
    from tinygrad_mnist.app.config import TrainConfig
    from tinygrad_mnist.models import build_model
    config = TrainConfig.from_dict({"model": model})
    directory.mkdir(parents=True)
    save({"format": "tinygrad_mnist.model", "model": build_model(config).state_dict(),
          "config": dataclasses.asdict(config), "stats": [0.1307, 0.3081], "epoch": 0,
          "val_acc": None}, directory / "best.npz")
    return directory


def drawings(count: int) -> np.ndarray:
    """`count` drawings as the page takes them from its pad: 112x112 greys, dark on white."""
    try:
        from tinygrad_mnist.data import load_mnist
        digits = load_mnist(download=False).test_images[:count]
    except Exception:  # no MNIST files here: a stroke, the same every time
        digit = np.zeros((28, 28), np.uint8)
        digit[5:23, 12:16] = 255
        digits = np.repeat(digit[None], count, axis=0)
    return np.stack([255 - np.asarray(Image.fromarray(d).resize((112, 112), Image.BILINEAR))
                     for d in digits])


MEASURE = """(async () => {
  const size = 112, n = DRAWINGS.length / (size * size);
  const nav = performance.getEntriesByType("navigation")[0];
  const weights = performance.getEntriesByType("resource").find(e => e.name.endsWith("/weights.bin"));
  const model = await Infer.load("model.json");
  const at = (i) => ({ width: size, height: size,
                       grey: DRAWINGS.subarray(i * size * size, (i + 1) * size * size) });
  const predict = (i) => Infer.predict(model, Preprocess.mnistStyle(at(i)));
  let t = performance.now();
  predict(0);
  const first = performance.now() - t;
  const full = [], forward = [];
  for (let i = 1; i < n; i++) {
    t = performance.now();
    const image = Preprocess.mnistStyle(at(i));
    const t1 = performance.now();
    Infer.predict(model, image);
    const t2 = performance.now();
    full.push(t2 - t); forward.push(t2 - t1);
  }
  const photo = [];
  for (let i = 0; i < 3; i++) {
    t = performance.now();
    Preprocess.mnistStyle(window.PHOTO);
    photo.push(performance.now() - t);
  }
  const median = (a) => a.slice().sort((p, q) => p - q)[Math.floor(a.length / 2)];
  return {ready: weights.responseEnd - nav.startTime, loaded: nav.loadEventEnd - nav.startTime,
          first, predict: median(full), forward: median(forward), photo: median(photo)};
})()"""


def measure(model: str, run: Path, rounds: int, predictions: int) -> Dict[str, object]:
    sys.path.insert(0, str(TESTS))
    from test_browser import CHROMIUM, DESKTOP, Browser
    from test_web import StaticServer, js_bytes, synthetic_photo
    from tinygrad_mnist.app.export_web import export_web

    if CHROMIUM is None:
        raise SystemExit("bench_web needs Chromium (apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        files = export_web(run, Path(tmp) / "site")
        size = sum(f.stat().st_size for f in files)
        greys = drawings(predictions + 1).ravel().tolist()
        photo = np.asarray(synthetic_photo(255 - drawings(1)[0, ::4, ::4],
                                           np.random.default_rng(0)).resize((400, 400)))
        server = StaticServer(Path(tmp) / "site")
        results: List[Dict[str, float]] = []
        try:
            for _ in range(rounds):
                browser = Browser(CHROMIUM, DESKTOP)
                try:
                    browser.open(server.url)
                    browser.wait_for("document.body.dataset.mode === 'here'")
                    browser.js(f"window.DRAWINGS = Uint8Array.from({json.dumps(greys)})")
                    browser.js(f"window.PHOTO = {{width: 400, height: 400, rgb: "
                               f"{js_bytes(photo)}}}")
                    results.append(browser.js(MEASURE.replace("DRAWINGS",
                                                              "window.DRAWINGS")))
                finally:
                    browser.close()
        finally:
            server.close()
    return {"model": model, "site_mb": size / 1e6, "files": len(files), "rounds": results}


def spread(rounds: Sequence[Dict[str, float]], key: str) -> str:
    values = [r[key] for r in rounds]
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def report(results: List[Dict[str, object]]) -> bool:
    ok = True
    print("| model | site MB | page ready ms | first prediction ms | prediction ms, median | "
          "forward pass ms, median | photo steps ms, median |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rounds = r["rounds"]
        print(f"| {r['model']} | {r['site_mb']:.2f} | {spread(rounds, 'ready')} | "
              f"{spread(rounds, 'first')} | {spread(rounds, 'predict')} | "
              f"{spread(rounds, 'forward')} | {spread(rounds, 'photo')} |")
    print("\nmedians over rounds (range over rounds in brackets)\n")
    print("| target | aim | this run | met |\n|---|---|---|---|")
    for r in results:
        rounds, aims = r["rounds"], TARGETS[r["model"]]
        for label, value, aim in (
                ("site", r["site_mb"], aims["site_mb"]),
                ("first prediction", statistics.median(x["first"] for x in rounds),
                 aims["first_ms"]),
                ("prediction, median", statistics.median(x["predict"] for x in rounds),
                 aims["predict_ms"])):
            met = value <= aim
            ok &= met
            unit = "MB" if label == "site" else "ms"
            print(f"| {r['model']} {label} | ≤ {aim:g} {unit} | {value:.2f} {unit} | "
                  f"{'yes' if met else 'no'} |")
    return ok


def machine() -> str:
    try:
        chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True,
                                  timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        chromium = "chromium: unknown version"
    return (f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; "
            f"{chromium}, headless")


def main(argv: Optional[Sequence[str]] = None) -> List[Dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlp", type=Path, help="run directory of an MLP (default: an "
                        "untrained default MLP)")
    parser.add_argument("--cnn", type=Path, help="run directory of a CNN (default: an "
                        "untrained default CNN)")
    parser.add_argument("--models", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"],
                        help="which models to measure (default: both)")
    parser.add_argument("--rounds", type=int, default=5, help="fresh browsers per model")
    parser.add_argument("--predictions", type=int, default=50,
                        help="timed predictions per round after the first")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.predictions <= 1000:
        parser.error("--rounds must be in 1..50 and --predictions in 1..1000")
    print(machine(), "\n")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            run = getattr(args, model) or default_run(Path(tmp) / model, model)
            results.append(measure(model, run, args.rounds, args.predictions))
    ok = report(results)
    if args.check and not ok:
        raise SystemExit(1)
    return results


if __name__ == "__main__":
    main()
