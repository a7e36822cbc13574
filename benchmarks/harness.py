"""Shared by the MLP benchmarks: the data, the three trainers being compared
(tinygrad_mnist, the hand-written NumPy reference, PyTorch CPU), interleaved timing,
Markdown tables, CSV files and BLAS thread settings."""
from __future__ import annotations

import csv
import importlib
import importlib.util
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # so the scripts also import each other when imported
    sys.path.insert(0, str(HERE))

from numpy_reference import NumpyMLP, flat_pieces  # noqa: E402

LR, MOMENTUM = 0.01, 0.9
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
CORETYPE_VAR = "OPENBLAS_CORETYPE"


# ---------------------------------------------------------------------------- data
def load_data(kind: str = "auto", samples: int = 60000,
              seed: int = 0) -> Tuple[np.ndarray, np.ndarray, str]:
    """(x float32 (samples, 784), y int64 (samples,), description). "mnist": the real
    training set from $TINYGRAD_MNIST_DATA (standardised), its first `samples`;
    "random": uniform noise and random labels of that shape; "auto": MNIST if the
    variable is set."""
    if kind == "auto":
        kind = "mnist" if os.environ.get("TINYGRAD_MNIST_DATA") else "random"
    if kind == "mnist":
        from tinygrad_mnist.data import load_mnist, prepare
        mnist = load_mnist(download=False, quiet=True)
        x, _ = prepare(mnist.train_images, standardize=True)
        x, y = x[:samples], mnist.train_labels[:samples].astype(np.int64)
        return x, y, f"the MNIST training set ({len(x):,} images, standardised)"
    if kind != "random":
        raise ValueError(f"unknown data {kind!r}: use auto, mnist or random")
    rng = np.random.default_rng(seed)
    return (rng.random((samples, 784), dtype=np.float32), rng.integers(0, 10, samples),
            f"random data of MNIST's shape ({samples:,} x 784)")


def parse_sizes(text: str) -> Tuple[int, ...]:
    """"784-128-10" -> (784, 128, 10)."""
    sizes = tuple(int(s) for s in text.split("-"))
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"bad layer sizes {text!r}: expected e.g. 784-128-10")
    return sizes


def size_name(sizes: Sequence[int]) -> str:
    return "-".join(map(str, sizes))


# ------------------------------------------------------------------------ trainers
class Trainer:
    """Trains an MLP of `sizes` with SGD(lr=0.01, momentum=0.9) on shuffled batches
    of (x, y); every trainer starts from the same weights (NumpyMLP's initialisation
    with `seed`). `steps(n)` runs n training steps, continuing through epochs, and
    returns the summed loss (each step reads its loss back, as a training loop does);
    `restart()` goes back to the initial weights and the first batch."""

    name = ""

    def __init__(self, sizes, x, y, batch_size: int, seed: int = 0):
        self.sizes, self.x, self.y, self.batch_size = tuple(sizes), x, y, batch_size
        self.batches_per_epoch = math.ceil(len(x) / batch_size)
        init = NumpyMLP(sizes, LR, MOMENTUM, seed)
        self._initial = init.weights, init.biases, seed
        del init  # its buffers are not the trainer's memory (the memory section measures it)
        self.restart()

    def restart(self) -> None:
        weights, biases, seed = self._initial
        self.setup([w.copy() for w in weights], [b.copy() for b in biases], seed)

    def setup(self, weights: List[np.ndarray], biases: List[np.ndarray], seed: int) -> None:
        raise NotImplementedError

    def steps(self, n: int) -> float:
        raise NotImplementedError


def _shuffled_batches(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Index arrays of shuffled batches, epoch after epoch."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


class FrameworkTrainer(Trainer):
    """tinygrad_mnist through its public API: nn.Sequential of nn.Linear/nn.ReLU,
    F.cross_entropy, optim.SGD(momentum=0.9), zero_grad/backward/step, DataLoader."""

    name = "tinygrad_mnist"
    package = "tinygrad_mnist"

    def setup(self, weights, biases, seed):
        tg = importlib.import_module(self.package)
        from_numpy, nn, optim, F = tg.from_numpy, tg.nn, tg.optim, tg.nn.functional
        DataLoader = importlib.import_module(f"{self.package}.data.loader").DataLoader
        layers: list = []
        for w, b in zip(weights, biases):
            linear = nn.Linear(w.shape[1], w.shape[0])
            linear.weight.data[...] = w
            linear.bias.data[...] = b
            layers += [linear, nn.ReLU()]
        self.model = nn.Sequential(*layers[:-1])
        self.optimizer = optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.loader = DataLoader(self.x, self.y, batch_size=self.batch_size, shuffle=True,
                                 seed=seed)
        self._from_numpy, self._cross_entropy = from_numpy, F.cross_entropy
        self._batches = self._forever()

    def _forever(self):
        while True:
            yield from self.loader

    def steps(self, n: int) -> float:
        model, optimizer, batches = self.model, self.optimizer, self._batches
        from_numpy, cross_entropy = self._from_numpy, self._cross_entropy
        total = 0.0
        for _ in range(n):
            xb, yb = next(batches)
            loss = cross_entropy(model(from_numpy(xb)), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total


class CompiledTrainer(FrameworkTrainer):
    """The same model, optimizer and DataLoader as FrameworkTrainer, each step through
    the compiled training step (tinygrad_mnist.jit.compile_step): its first call of each
    batch shape runs eagerly and compiles; the others run the plan."""

    name = "tinygrad_mnist compiled"

    def setup(self, weights, biases, seed):
        super().setup(weights, biases, seed)
        jit = importlib.import_module(f"{self.package}.jit")
        self.step = jit.compile_step(self.model, self.optimizer)

    def restart(self) -> None:
        """Back to the initial weights, then two steps (eager and recorded; the replay
        is compiled after the second), so that the steps timed after a restart are
        compiled steps."""
        super().restart()
        self.steps(2)

    def steps(self, n: int) -> float:
        step, batches = self.step, self._batches
        total = 0.0
        for _ in range(n):
            total += step(*next(batches)).loss
        return total


BASELINE_VARIABLE = "TINYGRAD_MNIST_BASELINE"


def import_baseline() -> Optional[str]:
    """Import the tinygrad_mnist package of another checkout, the folder named by
    $TINYGRAD_MNIST_BASELINE (bench_train.py --baseline DIR), as the package
    `tinygrad_mnist_baseline`, so that two versions can be timed in one process."""
    root = os.environ.get(BASELINE_VARIABLE)
    if not root:
        return None
    name = "tinygrad_mnist_baseline"
    if name not in sys.modules:
        init = Path(root) / "tinygrad_mnist" / "__init__.py"
        spec = importlib.util.spec_from_file_location(
            name, init, submodule_search_locations=[str(init.parent)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return name


class BaselineTrainer(FrameworkTrainer):
    """The same as FrameworkTrainer, with the package of --baseline DIR."""

    name = "tinygrad_mnist (baseline)"

    @property
    def package(self) -> str:
        return import_baseline()


class NumpyTrainer(Trainer):
    """The hand-written NumPy reference (benchmarks/numpy_reference.py)."""

    name = "numpy by hand"

    fold_lr = True

    def setup(self, weights, biases, seed):
        self.model = NumpyMLP(self.sizes, LR, MOMENTUM, seed, fold_lr=self.fold_lr)
        for own, given in zip(self.model.weights + self.model.biases, weights + biases):
            own[...] = given                  # in place: NumpyMLP.pieces views these arrays
        self._batches = _shuffled_batches(len(self.x), self.batch_size, seed)

    def steps(self, n: int) -> float:
        x, y, step, batches = self.x, self.y, self.model.train_step, self._batches
        total = 0.0
        for _ in range(n):
            idx = next(batches)
            total += step(np.take(x, idx, axis=0), np.take(y, idx))
        return total


class UnfoldedNumpyTrainer(NumpyTrainer):
    """The reference with PyTorch's update on unscaled gradients (fold_lr=False)."""

    name = "numpy by hand, unfolded lr"
    fold_lr = False


class OpsTrainer(FrameworkTrainer):
    """tinygrad_mnist's own Functions (ops.Linear, ops.ReLU, ops.CrossEntropy) called
    by hand, forward then backward in reverse, and optim.SGD's update written out (in
    pieces for a large weight, as optim.SGD makes them): the framework's array work
    without its graph, engine, modules or optimizer object. The gap between it and
    tinygrad_mnist is the Python that autograd costs."""

    name = "tinygrad_mnist ops, no autograd"

    def setup(self, weights, biases, seed):
        super().setup(weights, biases, seed)
        self.params = [p.data for m in self.model if hasattr(m, "weight")
                       for p in (m.weight, m.bias)]
        self.buffers: List[Optional[np.ndarray]] = [None] * len(self.params)
        self.scratch = np.empty(max(p.size for p in self.params), np.float32)

    def steps(self, n: int) -> float:
        from tinygrad_mnist import ops
        params, buffers, batches = self.params, self.buffers, self._batches
        lr, momentum = np.float32(LR), np.float32(MOMENTUM)
        last = len(params) // 2 - 1
        total = 0.0
        for _ in range(n):
            xb, yb = next(batches)
            a, nodes = xb, []
            for i in range(last + 1):
                linear = ops.Linear()
                linear.needs_input_grad = (i > 0, True, True)
                a = linear.forward(a, params[2 * i], params[2 * i + 1])
                nodes.append(linear)
                if i < last:
                    relu = ops.ReLU()
                    a = relu.forward(a)
                    nodes.append(relu)
            loss_fn = ops.CrossEntropy()
            loss_fn.needs_input_grad = (True,)
            loss = loss_fn.forward(a, labels=yb.astype(np.intp, copy=False))
            g = loss_fn.backward(np.ones((), np.float32))
            grads: List[np.ndarray] = []
            for node in reversed(nodes):
                if isinstance(node, ops.Linear):
                    g, gw, gb = node.backward(g)
                    grads[:0] = [gw, gb]
                else:
                    g = node.backward(g)
            for i, (p, grad) in enumerate(zip(params, grads)):
                first = buffers[i] is None
                if first:
                    buffers[i] = np.empty_like(grad)
                scratch = self.scratch[:p.size].reshape(p.shape)
                for theta, buf, g, step in flat_pieces(p, buffers[i], grad, scratch):
                    if first:
                        np.copyto(buf, g)
                    else:
                        buf *= momentum
                        buf += g
                    theta -= np.multiply(buf, lr, out=step)
            total += float(loss)
        return total


def import_torch():
    """PyTorch, or None (with the reason on stderr) when it cannot be imported."""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        print(f"PyTorch not importable ({type(e).__name__}: {e}); skipping it",
              file=sys.stderr)
        return None
    return torch


class TorchTrainer(Trainer):
    """PyTorch CPU, idiomatic: nn.Sequential, F.cross_entropy, optim.SGD; batches are
    one index_select of a tensor sharing the data, as the others gather with np.take."""

    name = "PyTorch CPU"

    def setup(self, weights, biases, seed):
        import torch
        self.torch = torch
        layers: list = []
        for w, b in zip(weights, biases):
            linear = torch.nn.Linear(w.shape[1], w.shape[0])
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(w))
                linear.bias.copy_(torch.from_numpy(b))
            layers += [linear, torch.nn.ReLU()]
        self.model = torch.nn.Sequential(*layers[:-1])
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.tx, self.ty = torch.from_numpy(self.x), torch.from_numpy(self.y)
        self._batches = _shuffled_batches(len(self.x), self.batch_size, seed)

    def steps(self, n: int) -> float:
        torch, model, optimizer = self.torch, self.model, self.optimizer
        tx, ty, batches = self.tx, self.ty, self._batches
        cross_entropy = torch.nn.functional.cross_entropy
        total = 0.0
        for _ in range(n):
            idx = torch.from_numpy(next(batches))
            loss = cross_entropy(model(tx.index_select(0, idx)), ty.index_select(0, idx))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        return total


TRAINERS = {"framework": FrameworkTrainer, "compiled": CompiledTrainer,
            "numpy": NumpyTrainer, "torch": TorchTrainer, "unfolded": UnfoldedNumpyTrainer,
            "ops": OpsTrainer, "baseline": BaselineTrainer}


def trainers(include_torch: bool = True, unfolded: bool = False,
             ops: bool = False, compiled: bool = True) -> Dict[str, type]:
    """The trainer classes to compare: PyTorch only when wanted and importable, the
    unfolded reference and the ops without autograd only when asked for."""
    chosen = {"framework": FrameworkTrainer}
    if compiled:
        chosen["compiled"] = CompiledTrainer
    chosen["numpy"] = NumpyTrainer
    if import_baseline():
        chosen["baseline"] = BaselineTrainer
    if unfolded:
        chosen["unfolded"] = UnfoldedNumpyTrainer
    if ops:
        chosen["ops"] = OpsTrainer
    if include_torch and import_torch() is not None:
        chosen["torch"] = TorchTrainer
    return chosen


# -------------------------------------------------------------------------- timing
def interleaved(runs: Dict[str, Callable[[], None]], repeats: int,
                warmup: Optional[Dict[str, Callable[[], None]]] = None,
                before: Optional[Dict[str, Callable[[], None]]] = None,
                clock: Callable[[], float] = time.perf_counter
                ) -> Dict[str, List[float]]:
    """Seconds per call of each run: warm-up calls first, then `repeats` rounds
    A B C, A B C, ..., so that a machine that gets busier slows all of them alike.
    `before[name]`, if given, is called untimed before each timed call of that run.
    `clock`: wall time by default; `time.process_time` counts only this process's
    CPU time (steadier beside other processes, blind to time spent waiting)."""
    for fn in (warmup or runs).values():
        fn()
    times: Dict[str, List[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            if before:
                before[name]()
            start = clock()
            fn()
            times[name].append(clock() - start)
    return times


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


# ------------------------------------------------------------------------- threads
def thread_note(with_torch: bool = False) -> str:
    """How many threads BLAS and PyTorch may use, as set by the environment."""
    set_vars = [f"{v}={os.environ[v]}" for v in THREAD_VARS + (CORETYPE_VAR,)
                if v in os.environ]
    note = ", ".join(set_vars) if set_vars else "library defaults (no thread variable set)"
    if with_torch:
        import torch
        note += f"; torch.get_num_threads() = {torch.get_num_threads()}"
    return note


def rerun_with_threads(script: Path, argv: Sequence[str], threads: int,
                       coretype: Optional[str] = None) -> bool:
    """If the thread variables are not already `threads` (and OPENBLAS_CORETYPE not
    `coretype`, when given), run `script argv` again in a child process with
    OPENBLAS/OMP/MKL_NUM_THREADS (and OPENBLAS_CORETYPE) set (NumPy's BLAS and PyTorch
    read them at start-up, so it takes a new process) and return True. `threads` 0
    leaves the thread variables as they are."""
    wanted = {v: str(threads) for v in THREAD_VARS} if threads else {}
    if coretype:
        wanted[CORETYPE_VAR] = coretype
    if all(os.environ.get(k) == v for k, v in wanted.items()):
        return False
    env = dict(os.environ, **wanted)
    subprocess.run([sys.executable, str(script), *argv], env=env, check=True)
    return True


def blas_kernel() -> str:
    """The kernel family OpenBLAS runs (e.g. Haswell: AVX2, SkylakeX: AVX-512), as
    threadpoolctl reports it; "" if unknown. OpenBLAS picks it for the CPU at start-up
    unless OPENBLAS_CORETYPE names one (--openblas-coretype)."""
    try:
        from threadpoolctl import threadpool_info
        return next((i.get("architecture") or "" for i in threadpool_info()
                     if i.get("internal_api") == "openblas"), "")
    except Exception:  # threadpoolctl missing or failing: the note just omits it
        return ""


def load_note() -> str:
    try:
        return "%.2f %.2f %.2f (1, 5, 15 min)" % os.getloadavg()
    except OSError:
        return "unknown"


def machine_note() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} cores, load average {load_note()}; "
            f"Python {platform.python_version()}, NumPy {np.__version__}"
            + (f", BLAS {_blas_name()}" if _blas_name() else "")
            + (f" ({blas_kernel()} kernels)" if blas_kernel() else ""))


def _blas_name() -> str:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas.get('version', '')}".strip()
    except Exception:  # older NumPy: no dicts mode
        return ""


# --------------------------------------------------------------------------- output
#: The implementations' names in benchmarks/results.json.
RESULT_NAMES = {"tinygrad_mnist": "eager", "tinygrad_mnist compiled": "compiled"}


def record_result(kind: str, group: str, values: dict, script: Path,
                  argv: Sequence[str], note: str = "") -> None:
    """Add a measurement to benchmarks/results.json (a script's --record), with this
    machine, its BLAS and the command that made it."""
    import results
    command = " ".join(["python", f"benchmarks/{Path(script).name}", *argv])
    command = command.replace(" --record", "")
    info = results.machine()
    blas = " ".join(filter(None, (_blas_name(), blas_kernel() and f"({blas_kernel()} kernels)")))
    if blas:
        info["blas"] = blas
    results.record(kind, group, values, command, note=note, machine_info=info)
    print(f"recorded in {results.RESULTS}")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
