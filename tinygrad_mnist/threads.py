"""The BLAS thread policy: how many threads NumPy's BLAS (and OpenMP, where loaded) may
use, set for a block of code with `threadpoolctl`.

Why a policy rather than the libraries' default (one thread per core):

- Speed. A network this size gains little from a second BLAS thread, and on a machine
  that is busy with other work a multi-threaded BLAS stalls: its threads wait for one
  another while another process holds a core. An epoch of the default MLP took 6.2–8.3 s
  with OpenBLAS's default threads on a busy 2-core machine, 1.6–1.9 s with one.
- Reproducibility. The thread count changes how BLAS splits a matrix product's sums,
  so it changes the last bits of every product and, through training, the result
  (98.59 % with the default threads, 98.41 % with one, same seed). The same seed and
  the same thread count give the same numbers.

The training app records the count in the run's config.json (`--threads N`, default
per model in `models.DEFAULTS`, measured with the benchmarks: see benchmarks/README.md)
and restores it on `--resume`; `evaluate`, `predict` and `serve` use the run's count
unless given `--threads`.
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from threadpoolctl import threadpool_info, threadpool_limits


def check(threads: Optional[int]) -> Optional[int]:
    """`threads` if it is None (the libraries' default) or a count of at least 1."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
    return threads


@contextlib.contextmanager
def limited(threads: Optional[int]) -> Iterator[None]:
    """Run the block with at most `threads` BLAS/OpenMP threads (None: the libraries'
    own setting); the previous limits come back afterwards."""
    if check(threads) is None:
        yield
        return
    with threadpool_limits(limits=threads):
        yield


def describe() -> str:
    """The thread pools loaded now and their sizes, e.g. "openblas 0.3.31: 1 thread"."""
    pools = [f"{info.get('internal_api', info.get('user_api'))} {info.get('version', '')}"
             f": {info['num_threads']} thread{'s' if info['num_threads'] != 1 else ''}"
             for info in threadpool_info()]
    return ", ".join(p.replace(" :", ":") for p in pools) or "no BLAS thread pool found"
