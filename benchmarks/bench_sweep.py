"""The sweep engine's overhead: 8 tiny trials (the default MLP, 1 epoch on 2,000 MNIST
images, no plots) run back to back in this process with one BLAS thread, against the
same 8 trials as a sweep on a 2-worker Dask LocalCluster.

    TINYGRAD_MNIST_DATA=/path/to/mnist python benchmarks/bench_sweep.py [--rounds 3]

Target (issue #21): sweep time <= 1.2 x (back-to-back time / 2). Each round times, one
after the other: the trials back to back in this process (the strict baseline: no
interpreter start, no imports), and with `--cli` also as 8 `tinygrad-mnist train`
commands (what running them by hand costs); the sweep from nothing (starting the
cluster, as `tinygrad-mnist sweep` does, and closing it); and the sweep on a cluster
already up (what a second sweep on a long-lived cluster pays). A fourth timing, the
trials split over 2 processes forked from this one (no engine, nothing to import), says
what the machine's 2 cores give these trials at best: the sweep's time over it is the
engine's own overhead. Medians are printed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from threadpoolctl import threadpool_limits

from tinygrad_mnist.app import sweep
from tinygrad_mnist.app.sweep.spec import configurations, expand, load_spec

TRIAL = {"limit": 2400, "val_size": 400, "epochs": 1, "plots": False}  # 2,000 training images


def spec(out: Path) -> dict:
    return {"name": "bench", "out": str(out), "train": TRIAL,
            "space": {"lr": [0.0005, 0.001, 0.002, 0.004]}, "seeds": 2}


def serial(out: Path) -> float:
    """The 8 trials back to back, in this process, one BLAS thread (as on a worker)."""
    parsed = load_spec(spec(out))
    trials = expand(parsed, configurations(parsed))
    began = time.perf_counter()
    with threadpool_limits(limits=1):
        for trial in trials:
            row = sweep.run_trial(trial.options, str(out / "trials" / trial.name))
            assert row["status"] == "ok", row
    return time.perf_counter() - began


def _trials_of(out: Path, which: slice) -> None:
    parsed = load_spec(spec(out))
    with threadpool_limits(limits=1):
        for trial in expand(parsed, configurations(parsed))[which]:
            row = sweep.run_trial(trial.options, str(out / "trials" / trial.name))
            assert row["status"] == "ok", row


def forked_pair(out: Path) -> float:
    """The 8 trials split over 2 processes forked from this one (no engine, no imports):
    what the 2 cores give these trials at best."""
    context = multiprocessing.get_context("fork")
    began = time.perf_counter()
    workers = [context.Process(target=_trials_of, args=(out, slice(i, None, 2)))
               for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        assert worker.exitcode == 0
    return time.perf_counter() - began


def commands(out: Path) -> float:
    """The 8 trials as `tinygrad-mnist train` commands, one after the other."""
    parsed = load_spec(spec(out))
    env = dict(os.environ, **sweep.SINGLE_THREAD_ENV)
    began = time.perf_counter()
    for trial in expand(parsed, configurations(parsed)):
        options = {**trial.options, "out": str(out / trial.name)}
        config = out / f"{trial.name}.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(json.dumps(options))
        subprocess.run([sys.executable, "-m", "tinygrad_mnist", "train", "--config",
                        str(config), "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def swept(out: Path, client=None) -> float:
    began = time.perf_counter()
    result = sweep.run(spec(out), client=client, workers=2, progress=False, plots=False)
    assert result.ran == 8 and result.failed == 0, result.frame
    return time.perf_counter() - began


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cli", action="store_true",
                        help="also time the trials as back-to-back tinygrad-mnist commands")
    args = parser.parse_args(argv)
    if not os.environ.get("TINYGRAD_MNIST_DATA"):
        parser.error("set TINYGRAD_MNIST_DATA to the MNIST folder")
    root = Path(tempfile.mkdtemp(prefix="bench_sweep-"))
    times = {"serial": [], "2 forked processes": [], **({"commands": []} if args.cli else {}),
             "sweep, starting its cluster": [], "sweep, cluster up": []}
    try:
        client, cluster = sweep.start_client(workers=2)
        try:
            swept(root / "warm", client)  # the workers import the package once
            for r in range(args.rounds):
                times["serial"].append(serial(root / f"serial-{r}"))
                times["2 forked processes"].append(forked_pair(root / f"pair-{r}"))
                if args.cli:
                    times["commands"].append(commands(root / f"commands-{r}"))
                times["sweep, starting its cluster"].append(swept(root / f"cold-{r}"))
                times["sweep, cluster up"].append(swept(root / f"up-{r}", client))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s"
                                                       for k, v in times.items()), flush=True)
        finally:
            sweep.close_client(client, cluster)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = {k: statistics.median(v) for k, v in times.items()}
    ideal = median["serial"] / 2
    print(f"\n8 trials (MLP 784-512-256-10, 1 epoch on 2,000 images), medians of "
          f"{args.rounds} rounds, {os.cpu_count()} cores:")
    print(f"  back to back, one process:      {median['serial']:6.2f} s  (/2 = {ideal:.2f} s)")
    pair = median["2 forked processes"]
    print(f"  2 forked processes, no engine:  {pair:6.2f} s  (what 2 cores give: "
          f"{median['serial'] / pair:.2f}x)")
    if args.cli:
        print(f"  back to back, 8 commands:       {median['commands']:6.2f} s  "
              f"(/2 = {median['commands'] / 2:.2f} s)")
    for key in ("sweep, starting its cluster", "sweep, cluster up"):
        versus = f", to 2 processes: {median[key] / pair:.2f}"
        if args.cli:
            versus += f", to commands/2: {2 * median[key] / median['commands']:.2f}"
        print(f"  {key + ':':<31} {median[key]:6.2f} s  ratio to serial/2: "
              f"{median[key] / ideal:.2f}{versus} (target <= 1.20)")
    return median


if __name__ == "__main__":
    main()
