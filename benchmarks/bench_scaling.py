"""How MLP training time scales with hidden width and with batch size, next to the
floor that this machine's matrix-multiply speed implies.

    python benchmarks/bench_scaling.py [--widths 128 256 ... 4096]
        [--batch-sizes 16 32 ... 1024] [--fraction 0.05] [--repeats 3] [--torch]

Two sweeps, each point timed for tinygrad_mnist and the hand-written NumPy reference
(and PyTorch CPU with --torch, when importable), interleaved, median of --repeats:
  width  784-W-10 at batch --batch-size (default 128), W = --widths
  batch  --batch-mlp (default 784-128-10) at batch sizes --batch-sizes
Each timing trains --fraction of an epoch (at least --min-steps steps) and is scaled
to a whole epoch of 60,000 images (stated in the table): the default run takes a few
minutes. Two floors, for the same epoch:
  peak GFLOP/s    the epoch's multiply-add count (forward, weight gradients, input
                  gradients but the first layer's) at the float32 GFLOP/s of one large
                  matrix product measured here
  matmuls only    the same products at their own shapes, timed alone: what BLAS costs
                  for this network, with nothing else
Threads: --threads N (default 1) as in bench_train.py. Prints Markdown tables, writes
bench_scaling.csv and bench_scaling.png beside this file.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import median  # noqa: E402


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--widths", type=int, nargs="+",
                   default=[128, 256, 512, 1024, 2048, 4096])
    p.add_argument("--batch-size", type=int, default=128, help="of the width sweep")
    p.add_argument("--batch-sizes", type=int, nargs="+",
                   default=[16, 32, 64, 128, 256, 512, 1024])
    p.add_argument("--batch-mlp", default="784-128-10", help="MLP of the batch sweep")
    p.add_argument("--fraction", type=float, default=0.2,
                   help="fraction of an epoch per timing, scaled up to an epoch")
    p.add_argument("--min-steps", type=int, default=10)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000, help="samples in an epoch")
    p.add_argument("--data", choices=("auto", "mnist", "random"), default="auto")
    p.add_argument("--torch", action="store_true", help="time PyTorch CPU too")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads, the same for every implementation "
                        "(default 1; 0 leaves the libraries' defaults)")
    p.add_argument("--csv", type=Path, default=Path(__file__).with_suffix(".csv"))
    p.add_argument("--png", type=Path, default=Path(__file__).with_suffix(".png"))
    return p.parse_args(argv)


# --------------------------------------------------------------------------- floors
def matmul_shapes(sizes: Sequence[int], batch: int) -> List[Tuple[int, int, int]]:
    """(m, k, n) of every product in one training step: x·Wᵀ forward, gᵀ·x for each
    weight gradient, g·W for each input gradient except the first layer's."""
    shapes = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        shapes.append((batch, fan_in, fan_out))          # forward
        shapes.append((fan_out, batch, fan_in))          # weight gradient
        if i > 0:
            shapes.append((batch, fan_out, fan_in))      # input gradient
    return shapes


def step_flops(sizes: Sequence[int], batch: int) -> float:
    return sum(2.0 * m * k * n for m, k, n in matmul_shapes(sizes, batch))


def peak_gflops(n: int = 1024, repeats: int = 5) -> float:
    """float32 GFLOP/s of an n x n x n product, best of `repeats`."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def matmuls_only_seconds(sizes: Sequence[int], batch: int, repeats: int) -> float:
    """Seconds per step of this network's products alone, at their shapes (best of)."""
    rng = np.random.default_rng(0)
    operands = [(rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32),
                 np.empty((m, n), np.float32)) for m, k, n in matmul_shapes(sizes, batch)]
    number = max(1, int(2e8 / max(step_flops(sizes, batch), 1)))  # ~0.2 GFLOP a timing
    best = math.inf
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        for _ in range(number):
            for a, b, out in operands:
                np.matmul(a, b, out=out)
        best = min(best, (time.perf_counter() - start) / number)
    return best


# --------------------------------------------------------------------------- timing
def time_point(sizes, batch, x, y, classes, args) -> Dict[str, float]:
    """Median seconds per (scaled) epoch of each implementation at one point."""
    made = {key: cls(sizes, x, y, batch) for key, cls in classes.items()}
    per_epoch = math.ceil(len(x) / batch)
    steps = min(per_epoch, max(args.min_steps, math.ceil(args.fraction * per_epoch)))
    runs = {k: (lambda t=t: t.steps(steps)) for k, t in made.items()}
    warmup = {k: (lambda t=t: t.steps(2)) for k, t in made.items()}
    times = harness.interleaved(runs, args.repeats, warmup)
    return {k: median(v) * per_epoch / steps for k, v in times.items()}


def sweep(name: str, points: List[Tuple[int, Tuple[int, ...], int]], x, y, classes, args,
          gflops: float) -> List[dict]:
    results = []
    for value, sizes, batch in points:
        per_epoch = math.ceil(len(x) / batch)
        steps = min(per_epoch, max(args.min_steps, math.ceil(args.fraction * per_epoch)))
        epoch = time_point(sizes, batch, x, y, classes, args)
        flops = step_flops(sizes, batch) * len(x) / batch  # the epoch's multiply-adds
        results.append({
            "sweep": name, "value": value, "mlp": harness.size_name(sizes), "batch": batch,
            "steps_timed": steps, "steps_per_epoch": per_epoch,
            **{f"{k}_s": v for k, v in epoch.items()},
            "floor_peak_s": flops / (gflops * 1e9),
            "floor_matmuls_s": matmuls_only_seconds(sizes, batch, args.repeats) * per_epoch})
        print(f"  {name} {value}: " + ", ".join(
            f"{classes[k].name} {v:.3f} s" for k, v in epoch.items()), flush=True)
    return results


def table(results: List[dict], classes, label: str) -> str:
    header = [label, "MLP", "batch", "steps timed / epoch"] + \
        [f"{cls.name} s/epoch" for cls in classes.values()] + \
        ["floor: matmuls only", "floor: peak GFLOP/s", "tinygrad_mnist ÷ numpy",
         "tinygrad_mnist ÷ matmuls only"]
    rows = []
    for r in results:
        rows.append([r["value"], r["mlp"], r["batch"], f"{r['steps_timed']} / {r['steps_per_epoch']}"]
                    + [f"{r[f'{k}_s']:.3f}" for k in classes]
                    + [f"{r['floor_matmuls_s']:.3f}", f"{r['floor_peak_s']:.3f}",
                       f"{r['framework_s'] / r['numpy_s']:.2f}",
                       f"{r['framework_s'] / r['floor_matmuls_s']:.2f}"])
    return harness.markdown_table(header, rows)


def plot(width: List[dict], batch: List[dict], classes, path: Path, gflops: float,
         samples: int) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"framework": "o-", "numpy": "s-", "torch": "^-"}
    for ax, results, xlabel in ((axes[0], width, "hidden width W (784-W-10, batch %s)"),
                                (axes[1], batch, "batch size (%s)")):
        if not results:
            ax.set_visible(False)
            continue
        xs = [r["value"] for r in results]
        for k, cls in classes.items():
            ax.plot(xs, [r[f"{k}_s"] for r in results], styles.get(k, "o-"), label=cls.name)
        ax.plot(xs, [r["floor_matmuls_s"] for r in results], "k--", label="floor: matmuls only")
        ax.plot(xs, [r["floor_peak_s"] for r in results], "k:",
                label=f"floor: {gflops:.0f} GFLOP/s peak")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([str(v) for v in xs])
        ax.set_xlabel(xlabel % (results[0]["batch"] if results is width else results[0]["mlp"]))
        ax.set_ylabel(f"seconds per epoch ({samples:,} images)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("Epoch time vs hidden width")
    axes[1].set_title("Epoch time vs batch size")
    fig.suptitle(f"MLP training, float32, SGD momentum; {harness.thread_note()}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, list]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads and harness.rerun_with_threads(Path(__file__), argv,
                                                               args.threads):
        return {}
    x, y, described = harness.load_data(args.data, args.samples)
    classes = harness.trainers(args.torch)
    gflops = peak_gflops()
    print(f"## Scaling of MLP training: float32, SGD momentum, {described}\n")
    print(f"- machine: {harness.machine_note()}")
    print(f"- threads: {harness.thread_note(with_torch='torch' in classes)}")
    print(f"- measured float32 matmul peak: {gflops:.1f} GFLOP/s (1024³ product)")
    print(f"- each point times {args.fraction:g} of an epoch (at least {args.min_steps} "
          f"steps) and scales it to a whole epoch; median of {args.repeats} rounds\n")
    width_points = [(w, (784, w, 10), args.batch_size) for w in args.widths]
    mlp = harness.parse_sizes(args.batch_mlp)
    batch_points = [(b, mlp, b) for b in args.batch_sizes]
    width = sweep("width", width_points, x, y, classes, args, gflops)
    batch = sweep("batch", batch_points, x, y, classes, args, gflops)
    print(f"\n### Epoch time vs hidden width (784-W-10, batch {args.batch_size})\n")
    print(table(width, classes, "W"))
    print(f"\n### Epoch time vs batch size ({args.batch_mlp})\n")
    print(table(batch, classes, "batch"))
    print(f"\nLoad average at the end: {harness.load_note()}")
    keys = list(width[0] if width else batch[0]) if (width or batch) else []
    harness.write_csv(args.csv, keys, [[r[k] for k in keys] for r in width + batch])
    plot(width, batch, classes, args.png, gflops, len(x))
    print(f"Wrote {args.csv} and {args.png}")
    return {"width": width, "batch": batch}


if __name__ == "__main__":
    main()
