"""Forward + backward of relu(x @ W1 + b1) @ W2 + b2 -> cross_entropy (784-128-10,
float32): the engine against the same computation written by hand in NumPy.

Run: python benchmarks/bench_engine.py [--batch 128] [--repeats 200] [--rounds 7]
Interleaves the two (A B A B ...), prints medians and the ratio, writes a CSV.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import time
from pathlib import Path

import numpy as np

import tinygrad_mnist as tg
from tinygrad_mnist import Tensor, threads


def make_problem(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 784), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    w1 = (rng.standard_normal((784, 128)) * 0.05).astype(np.float32)
    b1 = np.zeros(128, np.float32)
    w2 = (rng.standard_normal((128, 10)) * 0.1).astype(np.float32)
    b2 = np.zeros(10, np.float32)
    return x, y, [w1, b1, w2, b2]


def framework_step(x, y, params):
    w1, b1, w2, b2 = params
    loss = tg.cross_entropy((tg.from_numpy(x) @ w1 + b1).relu() @ w2 + b2, y)
    loss.backward()
    for p in params:
        p.grad = None
    return loss


def numpy_step(x, y, params):
    w1, b1, w2, b2 = params
    h = x @ w1
    h += b1
    np.maximum(h, 0, out=h)
    z = h @ w2
    z += b2
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean()
    p[np.arange(n), y] -= 1
    p /= n
    gw2 = h.T @ p
    gb2 = p.sum(axis=0)
    gh = p @ w2.T
    gh *= h > 0
    gw1 = x.T @ gh
    gb1 = gh.sum(axis=0)
    return loss, gw1, gb1, gw2, gb2


def time_it(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=200, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds")
    parser.add_argument("--csv", type=Path, default=Path(__file__).with_suffix(".csv"))
    parser.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1, as the other benchmarks; 0: the "
                         "library's default)")
    args = parser.parse_args(argv)
    with threads.limited(args.threads or None):
        return run(args)


def run(args: argparse.Namespace) -> dict:
    x, y, arrays = make_problem(args.batch)
    tensors = [Tensor(a, requires_grad=True) for a in arrays]
    # Both compute the same loss and gradients.
    loss = tg.cross_entropy((Tensor(x) @ tensors[0] + tensors[1]).relu() @ tensors[2]
                            + tensors[3], y)
    loss.backward()
    ref = numpy_step(x, y, arrays)
    np.testing.assert_allclose(loss.item(), ref[0], rtol=1e-5)
    for t, g in zip(tensors, ref[1:]):
        np.testing.assert_allclose(t.grad, g, rtol=1e-4, atol=1e-6)
        t.grad = None

    runs = {"tinygrad_mnist": lambda: framework_step(x, y, tensors),
            "numpy by hand": lambda: numpy_step(x, y, arrays)}
    for fn in runs.values():  # warm-up
        time_it(fn, max(1, args.repeats // 10))
    times = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            times[name].append(time_it(fn, args.repeats))

    med = {name: statistics.median(t) for name, t in times.items()}
    ratio = med["tinygrad_mnist"] / med["numpy by hand"]
    print(f"forward+backward, 784-128-10, batch {args.batch}, float32, "
          f"median of {args.rounds} interleaved rounds x {args.repeats} steps\n")
    print("| implementation | median ms/step | min–max ms |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {med[name] * 1e3:.3f} | {min(t) * 1e3:.3f}–{max(t) * 1e3:.3f} |")
    print(f"\nratio tinygrad_mnist / numpy by hand: {ratio:.3f}")
    with open(args.csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["implementation", "batch", "median_s", "min_s", "max_s"])
        for name, t in times.items():
            w.writerow([name, args.batch, med[name], min(t), max(t)])
    return {"ratio": ratio, **med}


if __name__ == "__main__":
    main()
