"""MLP training speed and memory: tinygrad_mnist against hand-written NumPy and PyTorch.

    python benchmarks/bench_train.py [--sizes 784-128-10 784-512-256-10] [--repeats 7]
        [--epochs-fraction 1.0] [--step-batch-sizes 1 32 128]
        [--sections epoch step memory busy] [--data auto|mnist|random] [--threads 1]
        [--no-torch]

Four implementations train the same MLPs (ReLU hidden layers, softmax cross-entropy,
SGD lr=0.01 momentum=0.9, float32, shuffled batches, same initial weights):
  tinygrad_mnist  its public API, eagerly: nn.Sequential/Linear/ReLU,
                  F.cross_entropy, optim.SGD, zero_grad/backward/step, data.DataLoader
  tinygrad_mnist compiled
                  the same model, optimizer and DataLoader, each step through
                  tinygrad_mnist.jit.compile_step (bitwise the same numbers)
  tinygrad_mnist compiled, subclassed
                  the same, with the MLP written as a subclass of nn.Module (forward
                  calls its Linear layers and F.relu), as users write models
  numpy by hand   benchmarks/numpy_reference.py, the floor to beat
  PyTorch CPU     when importable (never a dependency), else skipped with a message
and, with --with-unfolded, the reference with PyTorch's update on unscaled gradients
(the one pass per step more that a generic optimizer has to make); with --with-ops,
tinygrad_mnist's own op Functions called by hand, without graph, engine, modules or
optimizer object (the gap to tinygrad_mnist is what autograd's Python costs).

Sections:
  epoch   seconds per epoch (60,000 images, batch --batch-size): a warm-up, then
          --repeats interleaved rounds (A B C, A B C, ...); median and min-max, and the
          ratios tinygrad_mnist / numpy and tinygrad_mnist / PyTorch of the medians.
          With --epochs-fraction < 1 each timing runs that fraction of an epoch and
          is scaled up to a whole epoch. With --baseline DIR, the other checkout's
          eager and compiled (Sequential) steps run in the same rounds.
  step    microseconds per training step at each of --step-batch-sizes (per-op
          overhead shows at batch 1), interleaved the same way; every timed round
          is --steps steps from the same initial weights. (Trained on, a batch-1
          run at this learning rate silences most hidden units within a thousand
          steps; their momentum buffers then decay into subnormal floats, which
          some CPUs handle many times slower, so a continuing run would time that
          instead of the steps.)
  busy    (only when named in --sections) the app's default MLP run (TrainConfig():
          784-512-256-10, dropout, Adam, cosine, its compiled step), --busy-steps steps
          timed alone and beside a CPU-bound sibling process (`python -c "while True:
          pass"`, started and stopped here), with the app's BLAS thread policy and with
          the library's default; --threads does not apply to it.
  memory  peak resident set (getrusage ru_maxrss) of training --memory-epochs epochs,
          each implementation in a fresh subprocess that loads the data from a .npy
          file first; reported whole and as the rise over the resident set before
          training, with NumPy's own allocations traced by tracemalloc in a second
          subprocess (PyTorch's allocator is invisible to tracemalloc), and the
          resident set after each epoch to show it does not grow.

Data: the real MNIST training set when $TINYGRAD_MNIST_DATA is set (--data auto),
else random data of the same shape. Threads: --threads N (default 1) reruns the
script with OPENBLAS/OMP/MKL_NUM_THREADS=N, the same for all three implementations;
on a busy 2-core machine multi-threaded BLAS and OpenMP stall (epochs 20-50x slower
seen here), so one thread is the default; --threads 0 keeps the libraries' defaults.
Prints Markdown tables and writes them, in long form, to bench_train.csv beside this
file (--csv to change).
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import median  # noqa: E402

SECTIONS = ("epoch", "step", "memory", "busy")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def subclassed_mlp(tg, linears):
    """The MLP of `linears` as users write models: a subclass of nn.Module whose
    forward applies each Linear and F.relu between them."""

    class MLP(tg.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = tg.nn.ModuleList(linears)

        def forward(self, x):
            *hidden, last = self.layers
            for layer in hidden:
                x = tg.nn.functional.relu(layer(x))
            return last(x)

    return MLP()


class SubclassedCompiledTrainer(harness.CompiledTrainer):
    """CompiledTrainer with the MLP as a subclass of nn.Module (`subclassed_mlp`)."""

    name = "tinygrad_mnist compiled, subclassed"

    def setup(self, weights, biases, seed):
        super().setup(weights, biases, seed)
        tg = importlib.import_module(self.package)
        self.model = subclassed_mlp(tg, [m for m in self.model
                                         if isinstance(m, tg.nn.Linear)])
        self.optimizer = tg.optim.SGD(self.model.parameters(), lr=harness.LR,
                                      momentum=harness.MOMENTUM)
        jit = importlib.import_module(f"{self.package}.jit")
        self.step = jit.compile_step(self.model, self.optimizer)


class BaselineCompiledTrainer(harness.CompiledTrainer):
    """CompiledTrainer with the package of --baseline DIR."""

    name = "tinygrad_mnist compiled (baseline)"

    @property
    def package(self) -> str:
        return harness.import_baseline()


harness.TRAINERS.update(subclassed=SubclassedCompiledTrainer,
                        baseline_compiled=BaselineCompiledTrainer)
COMPILED = ("compiled", "subclassed", "baseline_compiled")   # compared with numpy


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["784-128-10", "784-512-256-10"],
                   help="MLP layer sizes (default: 784-128-10 784-512-256-10)")
    p.add_argument("--batch-size", type=int, default=128, help="for epoch and memory")
    p.add_argument("--repeats", type=int, default=7, help="interleaved timed rounds")
    p.add_argument("--epochs-fraction", type=float, default=1.0,
                   help="fraction of an epoch per timing (scaled up to an epoch)")
    p.add_argument("--step-batch-sizes", type=int, nargs="+", default=[1, 32, 128])
    p.add_argument("--step-sizes", default="784-128-10", help="MLP of the step section")
    p.add_argument("--steps", type=int, default=400,
                   help="training steps per timed round of the step section")
    p.add_argument("--memory-epochs", type=int, default=3)
    p.add_argument("--busy-steps", type=int, default=100,
                   help="steps of the app's default MLP per timing in the busy section")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS[:3]),
                   help="default: epoch step memory (busy, which starts a CPU-bound "
                        "process, only when named)")
    p.add_argument("--data", choices=("auto", "mnist", "random"), default="auto")
    p.add_argument("--samples", type=int, default=60000,
                   help="use only this many training samples (an 'epoch' is then smaller)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads, the same for every implementation "
                        "(default 1; 0 leaves the libraries' defaults)")
    p.add_argument("--openblas-coretype", metavar="NAME",
                   help="rerun with OPENBLAS_CORETYPE=NAME, the OpenBLAS kernel family (e.g. "
                        "Haswell: AVX2, SkylakeX: AVX-512; default: the environment's)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--with-unfolded", action="store_true",
                   help="also time the reference with PyTorch's update on unscaled "
                        "gradients (one pass more per step; see numpy_reference.py)")
    p.add_argument("--with-ops", action="store_true",
                   help="also time tinygrad_mnist's op Functions called by hand, without "
                        "autograd (see harness.OpsTrainer)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also time the tinygrad_mnist of another checkout DIR (e.g. a "
                        "git worktree of the commit before a change), in the same rounds")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time the epoch and step sections by wall time, or by this "
                        "process's CPU time (steadier on a machine shared with other work)")
    p.add_argument("--csv", type=Path, default=Path(__file__).with_suffix(".csv"))
    p.add_argument("--record", action="store_true",
                   help="add the epoch section's medians to benchmarks/results.json (the "
                        "tables of the README and docs/ are drawn from it)")
    p.add_argument("--memory-worker", help=argparse.SUPPRESS)  # internal: one measurement
    p.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--npz", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ------------------------------------------------------------------- epoch and step
def _ratios(med: Dict[str, float], key: str) -> Tuple[float, float]:
    return med[key] / med["numpy"], (med[key] / med["torch"] if "torch" in med else math.nan)


def _ratio_text(r: float) -> str:
    return "–" if math.isnan(r) else f"{r:.2f}"


def _long_rows(section, mlp, batch, name, med, lo, hi, ratio_np, ratio_pt) -> List[list]:
    return [[section, mlp, batch, name, metric, value] for metric, value in (
        ("median_s", med), ("min_s", lo), ("max_s", hi),
        ("ratio_to_numpy", ratio_np), ("ratio_to_torch", ratio_pt))]


def _baseline_note(label: str, times: Dict[str, List[float]]) -> List[str]:
    """tinygrad_mnist / baseline, per interleaved round (with --baseline)."""
    notes = []
    for key, base in (("framework", "baseline"), ("compiled", "baseline_compiled"),
                      ("subclassed", "baseline_compiled")):
        if key in times and base in times:
            ratios = [a / b for a, b in zip(times[key], times[base])]
            notes.append(f"{label}: {harness.TRAINERS[key].name} / {harness.TRAINERS[base].name}"
                         f" = {median(ratios):.3f} (median of the rounds' ratios; "
                         f"{min(ratios):.3f}–{max(ratios):.3f})")
    return notes


def _round_ratio_notes(label: str, times: Dict[str, List[float]], classes,
                       section: str, mlp: str, batch: int) -> Tuple[List[str], List[list]]:
    """tinygrad_mnist (eager and compiled) / numpy by hand per interleaved round: each
    round times the implementations back to back, so on a machine whose load drifts
    the median of these ratios is steadier than the ratio of the medians."""
    notes, rows = [], []
    for key in ("framework",) + COMPILED:
        if key in times and "numpy" in times:
            ratios = [a / b for a, b in zip(times[key], times["numpy"])]
            notes.append(f"{label}: {classes[key].name} / numpy by hand = "
                         f"{median(ratios):.3f} (median of the rounds' ratios; "
                         f"{min(ratios):.3f}–{max(ratios):.3f})")
            rows.append([section, mlp, batch, classes[key].name, "round_ratio_to_numpy",
                         median(ratios)])
    return notes, rows


def _print_notes(notes: List[str]) -> None:
    for note in notes:
        print(f"- {note}")


def epoch_section(args, x, y, classes) -> List[list]:
    rows, table, notes = [], [], []
    scaled = args.epochs_fraction < 1
    print(f"\n### Seconds per epoch ({len(x):,} images), batch {args.batch_size}"
          + (f", timing {args.epochs_fraction:g} of an epoch and scaling up" if scaled else "")
          + f", median of {args.repeats} interleaved rounds\n")
    for text in args.sizes:
        sizes = harness.parse_sizes(text)
        made = {key: cls(sizes, x, y, args.batch_size) for key, cls in classes.items()}
        per_epoch = next(iter(made.values())).batches_per_epoch
        steps = max(1, math.ceil(args.epochs_fraction * per_epoch))
        scale = per_epoch / steps
        runs = {k: (lambda t=t: t.steps(steps)) for k, t in made.items()}
        warmup = {k: (lambda t=t: t.steps(min(steps, 20))) for k, t in made.items()}
        times = harness.interleaved(runs, args.repeats, warmup, clock=CLOCKS[args.clock])
        notes += _baseline_note(text, times)
        more_notes, more_rows = _round_ratio_notes(text, times, classes, "epoch", text,
                                                   args.batch_size)
        notes, rows = notes + more_notes, rows + more_rows
        med = {k: median(v) * scale for k, v in times.items()}
        for k, t in made.items():
            lo, hi = min(times[k]) * scale, max(times[k]) * scale
            r_np, r_pt = _ratios(med, k)
            table.append([text, t.name, f"{med[k]:.3f}", f"{lo:.3f}–{hi:.3f}",
                          _ratio_text(r_np), _ratio_text(r_pt)])
            rows += _long_rows("epoch", text, args.batch_size, t.name, med[k], lo, hi, r_np, r_pt)
    print(harness.markdown_table(["MLP", "implementation", "median s/epoch", "min–max s",
                                  "÷ numpy by hand", "÷ PyTorch"], table))
    _print_notes(notes)
    return rows


def step_section(args, x, y, classes) -> List[list]:
    rows, table, notes = [], [], []
    sizes = harness.parse_sizes(args.step_sizes)
    print(f"\n### Microseconds per training step, {args.step_sizes}, median of "
          f"{args.repeats} interleaved rounds\n")
    for batch in args.step_batch_sizes:
        made = {key: cls(sizes, x, y, batch) for key, cls in classes.items()}
        steps = args.steps
        runs = {k: (lambda t=t: t.steps(steps)) for k, t in made.items()}
        times = harness.interleaved(runs, args.repeats,
                                    before={k: t.restart for k, t in made.items()},
                                    clock=CLOCKS[args.clock])
        notes += _baseline_note(f"batch {batch}", times)
        more_notes, more_rows = _round_ratio_notes(f"batch {batch}", times, classes, "step",
                                                   args.step_sizes, batch)
        notes, rows = notes + more_notes, rows + more_rows
        med = {k: median(v) / steps for k, v in times.items()}
        for k, t in made.items():
            lo, hi = min(times[k]) / steps, max(times[k]) / steps
            r_np, r_pt = _ratios(med, k)
            table.append([batch, t.name, f"{med[k] * 1e6:.0f}",
                          f"{lo * 1e6:.0f}–{hi * 1e6:.0f}", _ratio_text(r_np), _ratio_text(r_pt)])
            rows += _long_rows("step", args.step_sizes, batch, t.name, med[k], lo, hi,
                               r_np, r_pt)
    print(harness.markdown_table(["batch", "implementation", "median µs/step",
                                  "min–max µs", "÷ numpy by hand", "÷ PyTorch"], table))
    _print_notes(notes)
    return rows


# ---------------------------------------------------------------------------- memory
def _status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS: resident now, VmHWM: its peak);
    0 where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak_rss() -> bool:
    """Make VmHWM start again from the current resident set (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_kib() -> int:
    """Peak resident set: VmHWM, else getrusage's ru_maxrss (a whole-process peak)."""
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_worker(args) -> None:
    """In a fresh process: load the data, then build one implementation's trainer and
    train args.memory_epochs epochs, printing one JSON line of measurements (KiB)."""
    if args.memory_worker == "torch":
        import torch  # noqa: F401  (imported before the baseline, as the others' modules are)
    import tinygrad_mnist.data.loader  # noqa: F401
    import tinygrad_mnist.jit  # noqa: F401  (module code is no training memory)
    with np.load(args.npz) as data:
        x, y = data["x"], data["y"]
    reset = _reset_peak_rss()
    start = {"rss": _status_kib("VmRSS"), "peak": _peak_kib(), "peak_reset": reset}
    if args.trace:
        tracemalloc.start()
    trainer = harness.TRAINERS[args.memory_worker](
        harness.parse_sizes(args.sizes[0]), x, y, args.batch_size)
    steps = max(1, math.ceil(args.epochs_fraction * trainer.batches_per_epoch))
    epochs = []
    for _ in range(args.memory_epochs):
        trainer.steps(steps)
        traced, traced_peak = tracemalloc.get_traced_memory() if args.trace else (0, 0)
        epochs.append({"rss": _status_kib("VmRSS"), "peak": _peak_kib(),
                       "traced": traced / 1024, "traced_peak": traced_peak / 1024})
    print(json.dumps({"start": start, "epochs": epochs}))


def _run_worker(args, key: str, npz: str, size: str, trace: bool) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-worker", key,
           "--npz", npz, "--sizes", size, "--batch-size", str(args.batch_size),
           "--epochs-fraction", str(args.epochs_fraction),
           "--memory-epochs", str(args.memory_epochs)] + (["--trace"] if trace else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def memory_section(args, x, y, classes) -> List[list]:
    mib = 1 / 1024  # KiB -> MiB
    rows, table, notes = [], [], []
    fraction = "" if args.epochs_fraction >= 1 else f" of {args.epochs_fraction:g} epoch each"
    print(f"\n### Memory of training, batch {args.batch_size}, {args.memory_epochs} epochs"
          f"{fraction}, each implementation in a fresh process\n")
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "data.npz")
        np.savez(npz, x=x, y=y)
        for size in args.sizes:
            rise: Dict[str, float] = {}
            traced_peak: Dict[str, float] = {}
            for key, cls in classes.items():
                r = _run_worker(args, key, npz, size, trace=False)
                t = _run_worker(args, key, npz, size, trace=True) if key != "torch" else None
                peak = max(e["peak"] for e in r["epochs"])
                rise[key] = peak - r["start"]["rss"]
                rss = [e["rss"] for e in r["epochs"]]
                growth = (rss[-1] - rss[0]) / max(len(rss) - 1, 1)
                traced = [e["traced"] for e in t["epochs"]] if t else []
                traced_growth = (traced[-1] - traced[0]) / max(len(traced) - 1, 1) if t else 0.0
                if t:
                    traced_peak[key] = max(e["traced_peak"] for e in t["epochs"])
                table.append([
                    size, cls.name, f"{peak * mib:.1f}", f"{rise[key] * mib:.1f}",
                    f"{traced_peak[key] * mib:.2f}" if t else "n/a",
                    " / ".join(f"{v * mib:.1f}" for v in rss),
                    f"{growth * mib:+.2f}" + (f" ({traced_growth:+.1f} KiB traced)" if t else "")])
                for metric, value in (("peak_rss_bytes", peak * 1024),
                                      ("peak_rise_bytes", rise[key] * 1024),
                                      ("traced_peak_bytes", traced_peak.get(key, math.nan) * 1024),
                                      ("rss_growth_bytes_per_epoch", growth * 1024),
                                      ("traced_growth_bytes_per_epoch", traced_growth * 1024)):
                    rows.append(["memory", size, args.batch_size, cls.name, metric, value])
                if not r["start"]["peak_reset"]:
                    notes.append(f"{cls.name}: could not reset the peak (no /proc/self/"
                                 f"clear_refs); its peak includes the set-up")
            for key in ("framework",) + COMPILED:
                if rise.get("numpy") and traced_peak.get("numpy") and key in rise:
                    notes.append(f"{size}: {classes[key].name} / numpy by hand = "
                                 f"{rise[key] / rise['numpy']:.2f} (peak rise), "
                                 f"{traced_peak[key] / traced_peak['numpy']:.2f} (traced peak)")
    print(harness.markdown_table(
        ["MLP", "implementation", "peak RSS MiB", "peak rise in training MiB",
         "traced peak MiB", "RSS after each epoch MiB", "growth MiB/epoch"], table))
    print("\nPeak RSS: VmHWM of the whole process (interpreter, libraries, the 60,000 "
          "images), reset after the data was loaded; rise: that peak minus the resident "
          "set before the model was built. Traced: tracemalloc's peak of Python and NumPy "
          "allocations while building and training (PyTorch's allocator is not traced).")
    for note in notes:
        print(f"- {note}")
    return rows


# ------------------------------------------------------------------------------ busy
def _sibling() -> subprocess.Popen:
    """A CPU-bound process beside the benchmark (stopped by the caller)."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def busy_section(args, x, y, classes) -> List[list]:
    """The app's default MLP run (TrainConfig(): 784-512-256-10, dropout 0.2, Adam with
    the cosine schedule, batch 128, its compiled step), --busy-steps steps timed alone and
    beside a CPU-bound sibling process, interleaved; once with the app's thread policy
    (the model's default `threads`) and once with the BLAS library's default (one
    thread per core)."""
    from tinygrad_mnist import threads
    from tinygrad_mnist.models import build_model
    from tinygrad_mnist.app.config import TrainConfig
    from tinygrad_mnist.data.loader import DataLoader
    from tinygrad_mnist.app.train import build_optimizer, build_scheduler, training_step

    config = TrainConfig().validate()
    cores = os.cpu_count() or 1
    settings = {f"policy ({config.threads} thread{'s' if config.threads > 1 else ''})":
                config.threads, f"library default ({cores} threads)": cores}
    loader = DataLoader(x, y, config.batch_size, shuffle=True, seed=0)
    per_epoch = len(loader)

    def make():
        model = build_model(config)
        optimizer = build_optimizer(config, model.parameters())
        scheduler = build_scheduler(config, optimizer, per_epoch)
        return model, optimizer, scheduler, training_step(model, optimizer, config)

    def forever():
        while True:
            yield from loader

    batches = forever()
    runs = {}
    for label, n in settings.items():
        with threads.limited(n):
            model, optimizer, scheduler, step = made = make()
            for _ in range(5):                          # warm-up; compiles the step
                step(*next(batches))

        def run(n=n, made=made):
            model, optimizer, scheduler, step = made
            with threads.limited(n):
                for _ in range(args.busy_steps):
                    step(*next(batches))
                    scheduler.step()
        runs[label] = run
    times: Dict[str, Dict[str, List[float]]] = {label: {"quiet": [], "busy": []}
                                                for label in settings}
    for _ in range(args.repeats):
        for label, run in runs.items():
            for condition in ("quiet", "busy"):
                sibling = _sibling() if condition == "busy" else None
                try:
                    if sibling is not None:
                        time.sleep(0.3)                 # let it take its core
                    start = time.perf_counter()
                    run()
                    times[label][condition].append(time.perf_counter() - start)
                finally:
                    if sibling is not None:
                        sibling.kill()
                        sibling.wait()
    scale = per_epoch / args.busy_steps
    print(f"\n### The default MLP run beside a CPU-bound process: seconds per epoch "
          f"({per_epoch} steps; {args.busy_steps} timed per round, scaled up), median of "
          f"{args.repeats} interleaved rounds\n")
    table, rows = [], []
    for label in settings:
        quiet, busy = (median(times[label][c]) * scale for c in ("quiet", "busy"))
        ratios = [b / q for q, b in zip(times[label]["quiet"], times[label]["busy"])]
        table.append([label, f"{quiet:.2f}", f"{busy:.2f}", f"{busy / quiet:.2f}",
                      f"{min(ratios):.2f}–{max(ratios):.2f}"])
        rows += [["busy", "default MLP", config.batch_size, label, metric, value]
                 for metric, value in (("quiet_s", quiet), ("busy_s", busy),
                                       ("busy_over_quiet", busy / quiet))]
    print(harness.markdown_table(["BLAS threads", "quiet s/epoch", "beside a busy process "
                                  "s/epoch", "busy ÷ quiet", "per-round ratios"], table))
    return rows


# ------------------------------------------------------------------------------ main
def main(argv: Optional[Sequence[str]] = None) -> Dict[str, list]:
    """Run the chosen sections; return their CSV rows by section."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.baseline:  # read by harness.import_baseline, here and in the subprocesses
        os.environ[harness.BASELINE_VARIABLE] = str(Path(args.baseline).resolve())
    if args.memory_worker:
        memory_worker(args)
        return {}
    if (args.threads or args.openblas_coretype) and harness.rerun_with_threads(
            Path(__file__), argv, args.threads, args.openblas_coretype):
        return {}
    x, y, described = harness.load_data(args.data, args.samples)
    classes = harness.trainers(not args.no_torch, args.with_unfolded, args.with_ops)
    classes = {**{k: v for k, v in classes.items() if k != "torch"},
               "subclassed": SubclassedCompiledTrainer,
               **({"baseline_compiled": BaselineCompiledTrainer} if "baseline" in classes
                  else {}),
               **({"torch": classes["torch"]} if "torch" in classes else {})}
    print(f"## MLP training: float32, SGD(lr={harness.LR}, momentum={harness.MOMENTUM}), "
          f"{described}\n")
    print(f"- machine: {harness.machine_note()}")
    print(f"- threads: {harness.thread_note(with_torch='torch' in classes)}")
    results: Dict[str, list] = {}
    for name, section in (("epoch", epoch_section), ("step", step_section),
                          ("memory", memory_section), ("busy", busy_section)):
        if name in args.sections:
            results[name] = section(args, x, y, classes)
    print(f"\nLoad average at the end: {harness.load_note()}")
    harness.write_csv(args.csv, ["section", "mlp", "batch", "implementation", "metric", "value"],
                      [r for rows in results.values() for r in rows])
    if args.record and "epoch" in results:
        record_epochs(results["epoch"], argv, described)
    return results


def record_epochs(rows: List[list], argv: Sequence[str], described: str) -> None:
    """The epoch section's median seconds per MLP and implementation, in results.json."""
    seconds: Dict[str, Dict[str, float]] = {}
    for _, mlp, _, name, metric, value in rows:
        if metric == "median_s":
            seconds.setdefault(mlp, {})[harness.RESULT_NAMES.get(name, name)] = round(value, 3)
    harness.record_result("bench_train", "mlp-epoch", {"seconds_per_epoch": seconds,
                                                       "data": described},
                          Path(__file__), argv)


if __name__ == "__main__":
    main()
