"""Each speed helper of `tinygrad_mnist._kernels` against the plain NumPy expression it
replaces, at the shapes the default MLP and CNN meet. Interleaved (plain, helper,
plain, helper, ...), best of --rounds medians; prints µs per call and the ratio
plain / helper (above 1: the helper is faster).

Run: OPENBLAS_NUM_THREADS=1 python benchmarks/bench_kernels.py [--rounds 7] [NAME ...]
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, Tuple

import numpy as np

from tinygrad_mnist import _kernels as K
from tinygrad_mnist import threads

Case = Tuple[str, Callable[[], object], Callable[[], object]]


def cases() -> Dict[str, Case]:
    rng = np.random.default_rng(0)
    g128 = rng.standard_normal((128, 512)).astype(np.float32)      # a Linear's output grad
    logits = rng.standard_normal((128, 10)).astype(np.float32)
    conv = rng.standard_normal((128, 32, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, 128)
    x1 = rng.standard_normal((1, 784)).astype(np.float32)
    g1 = rng.standard_normal((1, 512)).astype(np.float32)
    f32 = np.dtype(np.float32)
    w = rng.standard_normal(512 * 784).astype(np.float32)
    grad, buf = np.ones_like(w), np.zeros_like(w)
    scratch = np.empty(K.BLOCK, np.float32)
    tmp = np.empty_like(w)
    other = np.ones(1 << 21, np.float32)  # 8 MB: what a training step reads in between

    def momentum_whole():
        other.sum()                        # the update starts from a cold cache
        buf.__imul__(0.9)
        buf.__iadd__(grad)
        np.multiply(buf, 0.01, out=tmp)
        w.__isub__(tmp)

    def momentum_pieces():
        other.sum()
        for theta, g, b in K.flat_pieces(w, grad, buf):
            b *= 0.9
            b += g
            step = np.multiply(b, 0.01, out=scratch[:b.size])
            theta -= step

    return {
        "column_sums": ("(128, 512) bias gradient", lambda: g128.sum(axis=0),
                        lambda: K.column_sums(g128)),
        "column_sums_1": ("(1, 512) batch-1 bias gradient", lambda: g1.sum(axis=0),
                          lambda: K.column_sums(g1)),
        "row_sums": ("(128, 10) softmax denominators", lambda: logits.sum(axis=1),
                     lambda: K.row_sums(logits)),
        "channel_sums": ("(128, 32, 28, 28) batch-norm sums",
                         lambda: conv.sum(axis=(0, 2, 3)), lambda: K.channel_sums(conv)),
        "row_max": ("(128, 10) row maxima", lambda: logits.max(axis=1, keepdims=True),
                    lambda: K.row_max(logits, 1)),
        "label_positions": ("(128, 10) gather at labels",
                            lambda: logits[np.arange(128), labels],
                            lambda: logits.ravel()[K.label_positions(128, 10, labels)]),
        "outer": ("(512, 1) @ (1, 784) batch-1 weight gradient", lambda: g1.T @ x1,
                  lambda: K.matmul(g1.T, x1)),
        "scalar": ("(10,) * 0.9", lambda: logits[0] * 0.9,
                   lambda: logits[0] * K.scalar(0.9, f32)),
        "pieces": ("SGD momentum update, 512x784, cold cache", momentum_whole,
                   momentum_pieces),
    }


def timed(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="helpers to time (default: all)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=0.05, help="per timing")
    parser.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (default 1, as the other benchmarks; 0: the "
                         "library's default)")
    args = parser.parse_args()
    with threads.limited(args.threads or None):
        run(args)


def run(args: argparse.Namespace) -> None:
    table = cases()
    names = args.names or list(table)
    print(f"BLAS: {threads.describe()}, numpy {np.__version__}, median of {args.rounds} "
          f"interleaved rounds")
    print(f"{'helper':<16} {'shape':<44} {'plain µs':>9} {'helper µs':>9} {'ratio':>6}")
    for name in names:
        what, plain, helper = table[name]
        number = max(1, int(args.seconds / max(timed(plain, 3), 1e-7)))
        plains, helpers = [], []
        for _ in range(args.rounds):
            plains.append(timed(plain, number))
            helpers.append(timed(helper, number))
        p, h = statistics.median(plains) * 1e6, statistics.median(helpers) * 1e6
        print(f"{name:<16} {what:<44} {p:9.2f} {h:9.2f} {p / h:6.2f}")


if __name__ == "__main__":
    main()
