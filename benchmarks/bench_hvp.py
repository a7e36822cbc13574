"""Cost of a Hessian-vector product: the MLP's loss at a batch, its gradient, and its
Hessian-vector product (reverse over reverse: the gradient recorded with
create_graph=True, then the gradient of gradient·v), for tinygrad_mnist and, when
importable, PyTorch CPU's double backward on the same network and numbers.

    python benchmarks/bench_hvp.py [--sizes 784-128-10] [--batch-size 128]
        [--repeats 15] [--inner 20] [--threads 1] [--no-torch]

Each timing is --inner calls (forward included in both); --repeats rounds interleave
the four timings (tg gradient, tg HVP, torch gradient, torch HVP); medians are printed
with the ratios HVP / gradient and tinygrad_mnist HVP / PyTorch HVP. float32, one BLAS
thread by default (set before NumPy loads).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="784-128-10")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS threads (set before NumPy loads; 0: the libraries' default)")
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy as np
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import tinygrad_mnist as tg

    sizes = [int(s) for s in args.sizes.split("-")]
    rng = np.random.default_rng(0)
    weights = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        weights += [(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32),
                    np.zeros(n_out, np.float32)]
    x = rng.standard_normal((args.batch_size, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], args.batch_size)
    vs = [rng.standard_normal(w.shape).astype(np.float32) for w in weights]

    def runner(fw, hvp):
        F = fw.nn.functional
        params = [fw.tensor(w, requires_grad=True) for w in weights]
        xt, yt, vt = fw.tensor(x), fw.tensor(y), [fw.tensor(v) for v in vs]

        def loss():
            h = xt
            for k in range(0, len(params), 2):
                h = F.linear(h, params[k], params[k + 1])
                if k + 2 < len(params):
                    h = F.relu(h)
            return F.cross_entropy(h, yt)

        def gradient():
            return fw.autograd.grad(loss(), params)

        def hessian_vector():
            grads = fw.autograd.grad(loss(), params, create_graph=True)
            dot = sum((g * v).sum() for g, v in zip(grads, vt))
            return fw.autograd.grad(dot, params)
        return hessian_vector if hvp else gradient

    timings = {("tinygrad_mnist", "gradient"): runner(tg, False),
               ("tinygrad_mnist", "HVP"): runner(tg, True)}
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(max(args.threads, 1))
            timings[("PyTorch CPU", "gradient")] = runner(torch, False)
            timings[("PyTorch CPU", "HVP")] = runner(torch, True)
        except ImportError:
            print("PyTorch not importable: skipped")
    times = {key: [] for key in timings}
    for fn in timings.values():
        fn()                                               # warm-up
    for _ in range(args.repeats):
        for key, fn in timings.items():
            start = time.perf_counter()
            for _ in range(args.inner):
                fn()
            times[key].append((time.perf_counter() - start) / args.inner * 1e6)
    med = {key: statistics.median(t) for key, t in times.items()}
    print(f"MLP {args.sizes}, batch {args.batch_size}, float32, {args.threads} BLAS thread(s), "
          f"{args.repeats} interleaved rounds of {args.inner} calls (median µs per call, "
          f"forward included)\n")
    print("| implementation | gradient µs | HVP µs | HVP / gradient |")
    print("|---|---:|---:|---:|")
    for name in dict.fromkeys(k[0] for k in med):
        g, h = med[(name, "gradient")], med[(name, "HVP")]
        print(f"| {name} | {g:.0f} | {h:.0f} | {h / g:.2f} |")
    if ("PyTorch CPU", "HVP") in med:
        ratio = med[("tinygrad_mnist", "HVP")] / med[("PyTorch CPU", "HVP")]
        print(f"\ntinygrad_mnist HVP / PyTorch CPU HVP: {ratio:.2f}")
    return med


if __name__ == "__main__":
    main()
