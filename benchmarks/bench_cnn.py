"""The default CNN's training speed: tinygrad_mnist against the same architecture in
PyTorch CPU, and where the time goes, layer by layer.

    python benchmarks/bench_cnn.py [--batch-size 128] [--fraction 0.1] [--repeats 5]
        [--sections epoch layers memory] [--threads 1] [--no-torch] [--baseline DIR]
        [--csv FILE]

The model is `models.CNN()` as the training app builds it for `--model cnn` (see its
docstring); PyTorch gets a layer-for-layer twin with the same initial weights
(torch.nn.Conv2d, MaxPool2d, BatchNorm2d, ...), when importable (never a dependency),
else it is skipped with a message.

Sections:
  epoch   seconds per epoch of training: 55,000 images (the app's training split) in
          batches of --batch-size, drawn by the app's DataLoader with ±2 pixel shifts,
          Adam(lr=1e-3), each step reading its loss back. Each timing runs --fraction
          of an epoch and is scaled up to a whole one; after a warm-up, --repeats
          rounds alternate the implementations (A B, A B, ...) so a machine that gets
          busier slows both alike. Median, min-max, and the ratio of the medians.
  layers  milliseconds of forward and of backward per layer at --batch-size (each
          layer run alone on its real input, backward of an all-ones gradient stored
          like the layer's output; median of --repeats), both implementations side by
          side, so the slow part shows.
  memory  NumPy memory traced by tracemalloc: the peak over one training step, and
          what a Conv2d's forward keeps for its backward against the size of its
          (C·kh·kw, OH·OW·N) column matrix (which must not outlive the layer's
          forward and backward).

Data: the real MNIST training images when $TINYGRAD_MNIST_DATA is set, else random
images of the same shape. Threads: --threads N (default 1, as bench_train.py) reruns
the script with OPENBLAS/OMP/MKL_NUM_THREADS=N, the same for both implementations
(multi-threaded BLAS stalls when another process wants a core of a 2-core machine);
--threads 0 keeps the libraries' defaults (what the training app gets). Prints
Markdown tables and writes their rows to bench_cnn.csv beside this file (git-ignored;
--csv to change). Shared helpers: benchmarks/harness.py.
"""
from __future__ import annotations

import argparse
import importlib
import math
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

import tinygrad_mnist as tg
from tinygrad_mnist import jit, models, nn, optim
from tinygrad_mnist.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from harness import import_torch, markdown_table  # noqa: E402

SECTIONS = ("epoch", "layers", "memory")
EPOCH_IMAGES = 55_000  # the training app's split: 60,000 minus 5,000 for validation


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--fraction", type=float, default=0.1,
                   help="fraction of an epoch per timing, scaled up (default 0.1)")
    p.add_argument("--repeats", type=int, default=5, help="interleaved timed rounds")
    p.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/OpenMP threads for both (default 1; 0: library defaults)")
    p.add_argument("--openblas-coretype", metavar="NAME",
                   help="rerun with OPENBLAS_CORETYPE=NAME, the OpenBLAS kernel family (e.g. "
                        "Haswell: AVX2, SkylakeX: AVX-512; default: the environment's)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="time the epoch section by wall time, or by this process's CPU "
                        "time (steadier on a machine shared with other work)")
    p.add_argument("--baseline", metavar="DIR",
                   help="also time the compiled step of the tinygrad_mnist of another "
                        "checkout DIR (e.g. a git worktree of the commit before a change), "
                        "in the same rounds (epoch section)")
    p.add_argument("--csv", type=Path, default=Path(__file__).with_suffix(".csv"))
    p.add_argument("--record", action="store_true",
                   help="add the epoch section's medians to benchmarks/results.json (the "
                        "tables of the README and docs/ are drawn from it)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------- data
def load_images(seed: int = 0) -> Tuple[np.ndarray, np.ndarray, str]:
    """(x float32 (55000, 1, 28, 28) standardised, y int64, description)."""
    if os.environ.get("TINYGRAD_MNIST_DATA"):
        from tinygrad_mnist.data import load_mnist, prepare
        mnist = load_mnist(download=False, quiet=True)
        x, _ = prepare(mnist.train_images[:EPOCH_IMAGES], layout="image", standardize=True)
        return x, mnist.train_labels[:EPOCH_IMAGES].astype(np.int64), "MNIST training images"
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((EPOCH_IMAGES, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, EPOCH_IMAGES), "random images of MNIST's shape")


def default_cnn(seed: int = 0) -> nn.Module:
    """The CNN as `--model cnn` builds it (its own default hidden size)."""
    generator = np.random.default_rng(seed)
    return models.initialize(models.CNN(dropout=0.2, generator=generator), "he", generator)


# ------------------------------------------------------------------------- PyTorch
def torch_twin(torch: Any, model: nn.Module) -> Any:
    """The same layers in torch.nn, with copies of `model`'s parameters and buffers."""
    T = torch.nn
    layers = []
    for layer in model:
        kind = type(layer).__name__
        if kind == "Conv2d":
            twin = T.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                            layer.stride, layer.padding, bias=layer.bias is not None)
        elif kind in ("MaxPool2d", "AvgPool2d"):
            twin = getattr(T, kind)(layer.kernel_size, layer.stride, layer.padding)
        elif kind == "BatchNorm2d":
            twin = T.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
        elif kind == "Linear":
            twin = T.Linear(layer.in_features, layer.out_features, layer.bias is not None)
        elif kind == "Dropout":
            twin = T.Dropout(layer.p)
        else:  # ReLU, Flatten
            twin = getattr(T, kind)()
        layers.append(twin)
    twin = T.Sequential(*layers)
    state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
    twin.load_state_dict(state)
    return twin


# ------------------------------------------------------------------------ trainers
class Trainer:
    """Trains a model on the batches of a DataLoader (as the app does: ±2 px shifts),
    with Adam(lr=1e-3); `steps(n)` runs n steps, continuing through epochs."""

    name = ""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int):
        self.loader = DataLoader(x, y, batch_size, shuffle=True, seed=0, augment_shift=2)
        self.batches = iter(())

    def next_batch(self) -> Tuple[np.ndarray, np.ndarray]:
        batch = next(self.batches, None)
        if batch is None:
            self.batches = iter(self.loader)
            batch = next(self.batches)
        return batch


class Framework(Trainer):
    name = "tinygrad_mnist"

    def __init__(self, model, x, y, batch_size):
        super().__init__(x, y, batch_size)
        self.model = model
        self.optimizer = optim.Adam(model.parameters(), lr=1e-3)

    def steps(self, n: int) -> float:
        total = 0.0
        self.model.train()
        for _ in range(n):
            xb, yb = self.next_batch()
            loss = nn.functional.cross_entropy(self.model(tg.from_numpy(xb)), yb)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += float(loss.data)
        return total


class Compiled(Framework):
    """The same model and optimizer, each step through tinygrad_mnist.jit.compile_step
    (the first two steps of each batch shape eager and recorded, then the replay)."""

    name = "tinygrad_mnist compiled"

    def __init__(self, model, x, y, batch_size):
        super().__init__(model, x, y, batch_size)
        self.step = jit.compile_step(model, self.optimizer)

    def steps(self, n: int) -> float:
        total = 0.0
        self.model.train()
        for _ in range(n):
            total += self.step(*self.next_batch()).loss
        return total


class BaselineCompiled(Trainer):
    """Compiled, with the tinygrad_mnist of --baseline DIR: the same CNN (same seed),
    optimizer and batches."""

    name = "tinygrad_mnist compiled (baseline)"

    def __init__(self, model, x, y, batch_size):
        super().__init__(x, y, batch_size)
        package = harness.import_baseline()
        base_models, base_optim, base_jit = (importlib.import_module(f"{package}.{name}")
                                             for name in ("models", "optim", "jit"))
        generator = np.random.default_rng(0)
        self.model = base_models.initialize(base_models.CNN(dropout=0.2, generator=generator),
                                            "he", generator)
        self.optimizer = base_optim.Adam(self.model.parameters(), lr=1e-3)
        self.step = base_jit.compile_step(self.model, self.optimizer)

    steps = Compiled.steps


class Torch(Trainer):
    name = "PyTorch CPU"

    def __init__(self, model, x, y, batch_size):
        super().__init__(x, y, batch_size)
        self.torch = import_torch()
        self.model = torch_twin(self.torch, model)
        self.optimizer = self.torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def steps(self, n: int) -> float:
        torch, total = self.torch, 0.0
        self.model.train()
        for _ in range(n):
            xb, yb = self.next_batch()
            out = self.model(torch.from_numpy(xb))
            loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(yb))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        return total


# -------------------------------------------------------------------------- timing
def epoch_section(args, x, y, torch_ok: bool) -> List[list]:
    kinds = ([Framework, Compiled] + ([BaselineCompiled] if args.baseline else [])
             + ([Torch] if torch_ok else []))
    made = {cls.name: cls(default_cnn(), x, y, args.batch_size) for cls in kinds}
    per_epoch = math.ceil(EPOCH_IMAGES / args.batch_size)
    steps = max(1, math.ceil(args.fraction * per_epoch))
    scale = per_epoch / steps
    print(f"\n### Seconds per epoch ({EPOCH_IMAGES:,} images, batch {args.batch_size}; "
          f"{steps} of its {per_epoch} steps timed per round, scaled up)\n")
    times = harness.interleaved({k: (lambda t=t: t.steps(steps)) for k, t in made.items()},
                                args.repeats,
                                {k: (lambda t=t: t.steps(5)) for k, t in made.items()},
                                clock=time.process_time if args.clock == "cpu"
                                else time.perf_counter)
    med = {k: statistics.median(v) * scale for k, v in times.items()}
    base = med.get(Torch.name)
    table, rows = [], []
    for name, values in times.items():
        lo, hi = min(values) * scale, max(values) * scale
        ratio = med[name] / base if base else float("nan")
        table.append([name, f"{med[name]:.1f}", f"{lo:.1f}–{hi:.1f}",
                      f"{med[name] / per_epoch * 1e3:.0f}",
                      "–" if math.isnan(ratio) else f"{ratio:.2f}"])
        rows.append(["epoch", name, "", args.batch_size, med[name], lo, hi, ratio])
    print(markdown_table(["implementation", "median s/epoch", "min–max s", "ms/step",
                          "÷ PyTorch"], table))
    if BaselineCompiled.name in times:
        ratios = [a / b for a, b in zip(times[Compiled.name], times[BaselineCompiled.name])]
        print(f"- {Compiled.name} / {BaselineCompiled.name} = {statistics.median(ratios):.3f} "
              f"(median of the rounds' ratios; {min(ratios):.3f}–{max(ratios):.3f})")
        rows.append(["epoch", Compiled.name, "round_ratio_to_baseline", args.batch_size,
                     statistics.median(ratios), min(ratios), max(ratios), ""])
    if Torch.name in times:  # per round: steadier than the medians' ratio on a busy machine
        for name, values in times.items():
            if name != Torch.name:
                ratios = [a / b for a, b in zip(values, times[Torch.name])]
                print(f"- {name} / PyTorch CPU = {statistics.median(ratios):.3f} (median of "
                      f"the rounds' ratios; {min(ratios):.3f}–{max(ratios):.3f})")
                rows.append(["epoch", name, "round_ratio", args.batch_size,
                             statistics.median(ratios), min(ratios), max(ratios), ""])
    return rows


# ------------------------------------------------------------------------- layers
def framework_layer_times(model: nn.Module, x: np.ndarray, repeats: int) -> List[Tuple]:
    """(name, output shape, forward s, backward s) per layer, in training mode."""
    out, h = [], tg.Tensor(x)
    model.train()
    for i, layer in enumerate(model):
        inp = tg.Tensor(h.data, requires_grad=i > 0)  # the first layer needs no dx
        fwd, bwd = [], []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            y = layer(inp)
            mid = time.perf_counter()
            y.backward(np.ones_like(y.data))
            fwd.append(mid - start)
            bwd.append(time.perf_counter() - mid)
            inp.grad = None
            layer.zero_grad()
        out.append((f"{i} {type(layer).__name__}", y.shape, statistics.median(fwd[1:]),
                    statistics.median(bwd[1:])))
        h = y.detach()
    return out


def torch_layer_times(torch: Any, model: Any, x: np.ndarray, repeats: int) -> List[Tuple]:
    out, h = [], torch.from_numpy(x)
    model.train()
    for i, layer in enumerate(model):
        inp = h.detach().requires_grad_(i > 0)
        fwd, bwd = [], []
        for _ in range(repeats + 1):
            start = time.perf_counter()
            y = layer(inp)
            mid = time.perf_counter()
            y.backward(torch.ones_like(y))
            fwd.append(mid - start)
            bwd.append(time.perf_counter() - mid)
            inp.grad = None
            layer.zero_grad()
        out.append((statistics.median(fwd[1:]), statistics.median(bwd[1:])))
        h = y
    return out


def layers_section(args, x, torch_ok: bool) -> List[list]:
    model = default_cnn()
    xb = np.ascontiguousarray(x[:args.batch_size])
    ours = framework_layer_times(model, xb, args.repeats)
    theirs = None
    if torch_ok:
        torch = import_torch()
        theirs = torch_layer_times(torch, torch_twin(torch, default_cnn()), xb, args.repeats)
    total = sum(f + b for _, _, f, b in ours)
    print(f"\n### Milliseconds per layer, batch {args.batch_size} (forward, backward; "
          f"median of {args.repeats})\n")
    table, rows = [], []
    for i, (name, shape, f, b) in enumerate(ours):
        line = [name, "×".join(map(str, shape[1:])), f"{f * 1e3:.1f}", f"{b * 1e3:.1f}",
                f"{(f + b) / total:.0%}"]
        tf, tb = theirs[i] if theirs else (float("nan"), float("nan"))
        if theirs:
            line += [f"{tf * 1e3:.1f}", f"{tb * 1e3:.1f}", f"{(f + b) / (tf + tb):.1f}"]
        table.append(line)
        rows.append(["layers", name, "forward", args.batch_size, f, "", "", f / tf])
        rows.append(["layers", name, "backward", args.batch_size, b, "", "", b / tb])
    header = ["layer", "output", "fwd ms", "bwd ms", "share"]
    if theirs:
        header += ["PyTorch fwd ms", "PyTorch bwd ms", "÷ PyTorch"]
        t_total = sum(f + b for f, b in theirs)
        table.append(["**total**", "", f"{sum(r[2] for r in ours) * 1e3:.1f}",
                      f"{sum(r[3] for r in ours) * 1e3:.1f}", "100%",
                      f"{sum(f for f, _ in theirs) * 1e3:.1f}",
                      f"{sum(b for _, b in theirs) * 1e3:.1f}", f"{total / t_total:.1f}"])
    print(markdown_table(header, table))
    return rows


# ------------------------------------------------------------------------- memory
def memory_section(args, x) -> List[list]:
    """tracemalloc: the peak of one training step, and what each Conv2d keeps alive
    between its forward and backward, against its column matrix."""
    table, rows = [], []
    for kind in (Framework, Compiled):
        trainer = kind(default_cnn(), x, np.zeros(len(x), np.int64), args.batch_size)
        trainer.steps(2)  # Adam's state (and the compiled plan) exist from now on
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        trainer.steps(1)
        step_peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
        what = "one training step" + (", compiled" if kind is Compiled else "")
        table.append([what, "peak of new allocations", f"{step_peak / 2**20:.1f}", ""])
        rows.append(["memory", "step peak", kind.name, args.batch_size, step_peak, "", "", ""])
    print(f"\n### NumPy memory (tracemalloc), batch {args.batch_size}\n")
    model = default_cnn()
    h = tg.Tensor(np.ascontiguousarray(x[:args.batch_size]))
    for i, layer in enumerate(model):
        if type(layer).__name__ == "Conv2d":
            inp = tg.Tensor(h.data, requires_grad=True)
            (kh, kw), n = layer.kernel_size, inp.shape[0]
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            y = layer(inp)
            kept = tracemalloc.get_traced_memory()[0] - before - y.data.nbytes
            oh, ow = y.shape[2:]
            y.backward(np.ones_like(y.data))
            del y
            left = tracemalloc.get_traced_memory()[0] - before - inp.grad.nbytes
            tracemalloc.stop()
            cols = layer.in_channels * kh * kw * oh * ow * n * 4
            name = f"{i} Conv2d"
            table.append([name, "kept by forward for backward (beyond its output)",
                          f"{kept / 2**20:.2f}", f"{cols / 2**20:.1f}"])
            table.append([name, "left after backward (beyond the input gradient)",
                          f"{left / 2**20:.2f}", f"{cols / 2**20:.1f}"])
            rows.append(["memory", name, "kept", args.batch_size, kept, "", "", kept / cols])
            rows.append(["memory", name, "left", args.batch_size, left, "", "", left / cols])
        with tg.no_grad():
            h = layer(h)
    print(markdown_table(["what", "measure", "MiB", "column matrix MiB"], table))
    return rows


def main(argv: Optional[Sequence[str]] = None) -> List[list]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.baseline:  # read by harness.import_baseline, here and after a rerun
        os.environ[harness.BASELINE_VARIABLE] = str(Path(args.baseline).resolve())
    if (args.threads or args.openblas_coretype) and harness.rerun_with_threads(
            Path(__file__), argv, args.threads, args.openblas_coretype):
        return []
    x, y, data = load_images()
    torch_ok = not args.no_torch and import_torch() is not None
    print(f"## CNN training: models.CNN, {default_cnn().num_parameters():,} parameters, "
          f"{data}\n")
    print(f"- machine: {harness.machine_note()}"
          + (f", PyTorch {import_torch().__version__}" if torch_ok else ""))
    print(f"- threads: {harness.thread_note(with_torch=torch_ok)}")
    rows: List[list] = []
    if "epoch" in args.sections:
        rows += epoch_section(args, x, y, torch_ok)
    if "layers" in args.sections:
        rows += layers_section(args, x, torch_ok)
    if "memory" in args.sections:
        rows += memory_section(args, x)
    print(f"\nLoad average at the end: {harness.load_note()}")
    harness.write_csv(args.csv, ["section", "what", "detail", "batch_size", "median", "min",
                                 "max", "ratio"], rows)
    print(f"wrote {args.csv}")
    medians = {harness.RESULT_NAMES.get(r[1], r[1]): round(r[4], 2) for r in rows
               if r[0] == "epoch" and r[2] == ""}
    if args.record and medians:
        harness.record_result("bench_cnn", "cnn-epoch",
                              {"threads": args.threads, "data": data, **medians},
                              Path(__file__), argv)
    return rows


if __name__ == "__main__":
    main()
