"""Train a model: the library behind `scripts/train_mnist.py` and `tinygrad-mnist train`.
Data flows one way: data → model → loss → backward → optimizer; this module wires those
pieces together, keeps the checkpoints and writes the run directory.

A run directory holds `config.json`, `metrics.csv`, `best.npz` and `last.npz`, and the
test report (`report.md`/`report.json` and PNG plots, see `report.py`). Every file is
written atomically.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from .. import __version__, jit, models, nn, optim, threads
from ..atomic import atomic_write_text
from ..models import build_model
from .config import TrainConfig, option_flag, recipe_note
from ..data import DIGITS, DataLoader, Stats, prepare, train_val_split
from ..data.augment import loader_options as augment_options
from ..errors import Terminated, UsageError
from .inference import evaluate_arrays, load_trained
from .report import write_report
from ..serialization import CheckpointError, load, save

PathLike = Union[str, os.PathLike]
#: The options a resumed run may change; every other one keeps its saved value.
RESUME_OPTIONS = ("epochs", "quiet", "plots", "jit")
#: The files of a run directory (`--overwrite` replaces these, and only these).
RUN_FILES = ("config.json", "metrics.csv", "best.npz", "last.npz", "report.md", "report.json",
             "learning_curves.png", "confusion_matrix.png", "misclassified.png",
             "first_layer_weights.png")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


# --------------------------------------------------------------------------- data
@dataclass
class Data:
    """A run's training, validation and test arrays, and the training statistics."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    stats: Stats
    classes: Tuple[str, ...] = DIGITS
    image_shape: Tuple[int, int, int] = (1, 28, 28)
    name: str = "mnist"


def load_data(config: TrainConfig) -> Data:
    """The run's data (`TrainConfig.load_images`: MNIST by default) split into train/validation
    (seeded), standardised with training-split statistics, in the layout the model
    expects. With `limit`, the first limit + val_size training images are split, so that
    `limit` of them are trained on."""
    mnist = config.load_images()
    x, y = mnist.train_images, mnist.train_labels.astype(np.int64)
    needed = config.val_size + (config.limit or 1)
    if needed > len(y):
        what = (f"--limit {config.limit} and --val-size {config.val_size} need {needed:,}"
                if config.limit else f"--val-size {config.val_size} leaves no")
        raise UsageError(f"{what} training images; the data has {len(y):,}: lower "
                         f"{'--limit or ' if config.limit else ''}--val-size",
                         "limit" if config.limit else "val_size")
    if config.limit is not None:
        x, y = x[:needed], y[:needed]
    split = train_val_split(x, y, config.val_size, seed=config.seed, stratify=True)
    layout = models.LAYOUTS[config.model]
    x_train, stats = prepare(split.x_train, layout=layout, standardize=True)
    x_val, _ = prepare(split.x_val, layout=layout, standardize=stats)
    x_test, _ = prepare(mnist.test_images, layout=layout, standardize=stats)
    return Data(x_train, split.y_train, x_val, split.y_val, x_test,
                mnist.test_labels.astype(np.int64), stats, mnist.classes, mnist.image_shape,
                mnist.name)


# ------------------------------------------------------------------- optimizer
def build_optimizer(config: TrainConfig, params: Iterable[nn.Parameter]) -> optim.Optimizer:
    """The optimizer `config` names, over `params`."""
    lr, wd = config.lr, config.weight_decay
    if config.optimizer == "sgd":
        return optim.SGD(params, lr=lr, weight_decay=wd)
    if config.optimizer in ("momentum", "nesterov"):
        return optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd,
                         nesterov=config.optimizer == "nesterov")
    if config.optimizer == "rmsprop":
        return optim.RMSprop(params, lr=lr, weight_decay=wd)
    if config.optimizer == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    return optim.AdamW(params, lr=lr, weight_decay=wd)


def build_scheduler(config: TrainConfig, optimizer: optim.Optimizer,
                    steps_per_epoch: int) -> Optional[Any]:
    """A learning-rate schedule stepped once per batch (None for `none`)."""
    total = config.epochs * steps_per_epoch
    sched = optim.lr_scheduler
    if config.schedule == "step":  # divide by 10 after each third of training
        return sched.StepLR(optimizer, step_size=max(1, total // 3), gamma=0.1)
    if config.schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "onecycle":
        return sched.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total)
    return None


# ------------------------------------------------------------------ epoch loop
def training_step(model: nn.Module, optimizer: optim.Optimizer,
                  config: TrainConfig) -> Callable[[np.ndarray, np.ndarray], jit.StepResult]:
    """The run's training step (zero_grad, forward, cross-entropy with the run's label
    smoothing and L1 penalty, backward, optimizer step): compiled by `tinygrad_mnist.jit`,
    or with `config.jit` off the eager reference `jit.eager_step`. Both give the same
    numbers, bitwise."""
    options = dict(label_smoothing=config.label_smoothing, l1=config.l1)
    if config.jit:
        return jit.compile_step(model, optimizer, **options)
    return functools.partial(jit.eager_step, model, optimizer, **options)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: optim.Optimizer,
                scheduler: Optional[Any], config: TrainConfig,
                progress: Any = None, train_step: Optional[Callable] = None
                ) -> Tuple[float, float]:
    """One pass over `loader` with `train_step` (default: a new `training_step`; pass
    the same one every epoch, so that a compiled step keeps its plans); returns (mean
    training loss, training accuracy)."""
    model.train()
    train_step = train_step or training_step(model, optimizer, config)
    total_loss = correct = seen = 0
    for step, (xb, yb) in enumerate(loader):
        try:
            value, logits = train_step(xb, yb)
        except jit.NonFiniteLoss as e:
            raise TrainingDiverged(
                f"the training loss became {e.value} at batch {step + 1}; lower the learning "
                f"rate (--lr, now {config.lr:g}) or use a gentler schedule") from None
        if scheduler is not None:
            scheduler.step()
        total_loss += value * len(yb)
        correct += int((logits.argmax(axis=1) == yb).sum())
        seen += len(yb)
        if progress is not None:
            progress.update(1)
            if step % 20 == 0:
                progress.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
    return total_loss / max(seen, 1), correct / max(seen, 1)


# ------------------------------------------------------------- the run directory
def _new_run_dir(out: Optional[str], overwrite: bool = False) -> Path:
    """The run directory: `out`, refused if it already holds files unless `overwrite`,
    or a fresh runs/YYYYmmdd-HHMMSS. Nothing is created or deleted yet: that waits for
    `_make_run_dir`, once the data and model are ready, so a run that fails before it
    starts leaves no empty directory and loses no earlier run."""
    if out:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path} is a file, not a directory; choose another --out",
                             "out")
        held = sorted(p.name for p in path.iterdir()) if path.is_dir() else []
        if held and not overwrite:
            is_run = any(name in RUN_FILES for name in held)
            resume = (f"continue it with --resume {path}, "
                      if (path / "last.npz").exists() and not (path / "report.json").exists()
                      else "")
            raise UsageError(f"--out {path} already holds {'a run' if is_run else 'files'} "
                             f"({', '.join(held[:3])}{', ...' if len(held) > 3 else ''}); "
                             f"choose another --out, {resume}or replace it with --overwrite",
                             "out")
    else:
        path = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    return path


def _make_run_dir(path: Path, overwrite: bool) -> None:
    """Create the run directory `path` (with `overwrite`, deleting the RUN_FILES of the
    run it held)."""
    for name in RUN_FILES if overwrite else ():
        (path / name).unlink(missing_ok=True)
    path.mkdir(parents=True, exist_ok=True)


def _checkpoint(model, optimizer, scheduler, loader, epoch, history, best, config, stats,
                seconds) -> Dict[str, Any]:
    return {"format": "tinygrad_mnist.run", "version": __version__, "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "loader": loader.state_dict(), "rng": nn.init.get_rng_state(),
            "history": history, "best": best, "config": dataclasses.asdict(config),
            "stats": list(stats), "seconds": seconds}


def _data_state(data: Data) -> Dict[str, Any]:
    """What a checkpoint keeps about the data to rebuild the model: class names, shape."""
    return {"classes": list(data.classes), "image_shape": list(data.image_shape)}


class _Printer:
    """Prints a run's lines: everything at quiet 0 and 1 (1 only hides the progress bars),
    at quiet 2 only the result (`say.result`)."""

    def __init__(self, quiet: int):
        self.quiet = quiet

    def __call__(self, *args: Any) -> None:
        if self.quiet < 2:
            print(*args, flush=True)

    def result(self, *args: Any) -> None:
        print(*args, flush=True)

    def warn_once(self, epoch: List[int]) -> Callable[[str, int], None]:
        """An `np.errstate` call handler that prints one line about NumPy's first
        floating-point problem (overflow, invalid value, division by zero) and records
        the rest silently."""
        seen: List[str] = []

        def handler(kind: str, flag: int) -> None:
            if not seen and self.quiet < 2:
                print(f"warning: numerical {kind} in epoch {epoch[0]} (NumPy); if the loss "
                      f"becomes NaN, lower the learning rate (--lr)", file=sys.stderr,
                      flush=True)
            seen.append(kind)
        return handler


def check_resume(run_dir: PathLike, changed: Iterable[str] = ()) -> Path:
    """Check that the run in `run_dir` can be resumed with the options named in
    `changed` given anew (only RESUME_OPTIONS may be) and return its last checkpoint;
    raises ValueError or FileNotFoundError naming the problem."""
    fixed = [name for name in changed if name not in RESUME_OPTIONS]
    if fixed:
        allowed = [option_flag(name) for name in RESUME_OPTIONS]
        raise UsageError(f"a resumed run keeps its saved options; only "
                         f"{', '.join(allowed[:-1])} and {allowed[-1]} may be given, not "
                         f"{', '.join(option_flag(name) for name in fixed)}", fixed[0])
    if Path(run_dir).is_file():
        raise UsageError(f"--resume takes a run directory, not the file {run_dir}; give "
                         f"{Path(run_dir).parent}", "resume")
    last = Path(run_dir) / "last.npz"
    if not last.is_file():
        raise UsageError(f"cannot resume: {last} does not exist; --resume takes the run "
                         f"directory of an interrupted run", "resume")
    return last


def _resume_state(last: Path) -> Dict[str, Any]:
    """The training state in a run's last.npz; CheckpointError if it is not one."""
    state = load(last)
    kind = state.get("format") if isinstance(state, dict) else None
    if kind != "tinygrad_mnist.run" or not all(key in state for key in _RUN_STATE_KEYS):
        what = ("a model checkpoint (like best.npz), without the training state"
                if kind == "tinygrad_mnist.model" else "not a training run's state")
        raise CheckpointError(f"{last}: cannot resume from it: it is {what}; --resume takes "
                              f"the directory of a run that `train` wrote")
    return state


_RUN_STATE_KEYS = ("epoch", "model", "optimizer", "scheduler", "loader", "rng", "history",
                   "best", "config", "stats", "seconds")


def _resume_command(run_dir: Path) -> str:
    """How to resume `run_dir` with the command that is running."""
    program = Path(sys.argv[0] if sys.argv and sys.argv[0] else "tinygrad-mnist")
    if program.name == "__main__.py":
        return f"python -m tinygrad_mnist train --resume {run_dir}"
    if program.suffix == ".py":
        return f"python {sys.argv[0]} --resume {run_dir}"
    return f"tinygrad-mnist train --resume {run_dir}"


def train(config: Optional[TrainConfig] = None, resume: Optional[PathLike] = None,
          **overrides: Any) -> Path:
    """Train a model, keep the best (by validation accuracy) and the last checkpoint,
    evaluate the best one once on the test set, and write the report and plots.

    With `resume`, continue the run in that directory from its last completed epoch,
    with its saved configuration (`overrides` may change only RESUME_OPTIONS: epochs,
    quiet, plots and jit; see `check_resume`) and the same model, optimizer, scheduler,
    data order, RNG state and BLAS thread count, so the result is bitwise the same as an
    uninterrupted run. The whole run uses `config.threads` BLAS threads (the limit is
    lifted when it returns). Returns the run directory."""
    with contextlib.ExitStack() as cleanup:
        return _train(config, resume, cleanup, **overrides)


def _train(config: Optional[TrainConfig], resume: Optional[PathLike],
           cleanup: contextlib.ExitStack, **overrides: Any) -> Path:
    if resume is not None:
        run_dir = Path(resume)
        last = check_resume(run_dir, overrides)
        state = _resume_state(last)
        try:
            config = TrainConfig.from_dict({**state["config"], **overrides}, saved=True)
        except (UsageError, TypeError) as e:
            raise CheckpointError(f"{last}: its saved options are invalid: {e}") from None
    else:
        config = dataclasses.replace(config or TrainConfig(), **overrides).validate()
        run_dir = _new_run_dir(config.out, config.overwrite)
        state = None
    say = _Printer(config.quiet)
    cleanup.enter_context(threads.limited(config.threads))  # until train() returns

    nn.init.manual_seed(config.seed)
    data = load_data(config)
    try:
        model = build_model(config, data.image_shape, len(data.classes))
    except MemoryError:
        raise UsageError(f"not enough memory for a {config.model} with hidden layers "
                         f"{config.hidden}; use smaller --hidden", "hidden") from None
    except ValueError as e:  # more conv blocks than the images can be halved
        if config.conv_channels is None:
            raise
        raise UsageError(f"--conv-channels {' '.join(map(str, config.conv_channels))}: {e}",
                         "conv_channels") from None
    loader = DataLoader(data.x_train, data.y_train, config.batch_size, shuffle=True,
                        seed=config.seed, **augment_options(config.augment),
                        image_shape=data.image_shape,
                        fill=-data.stats.mean / data.stats.std)  # black, standardised
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer, len(loader))
    train_step = training_step(model, optimizer, config)
    history: List[Dict[str, float]] = []
    best = {"val_acc": -1.0, "epoch": 0}
    seconds = 0.0
    start_epoch = 1
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            loader.load_state_dict(state["loader"])
            nn.init.set_rng_state(state["rng"])
            history, best = list(state["history"]), dict(state["best"])
            seconds, start_epoch = float(state["seconds"]), int(state["epoch"]) + 1
        except (nn.StateDictError, KeyError, IndexError, TypeError, ValueError) as e:
            raise CheckpointError(f"{last}: cannot resume from it: its state does not fit "
                                  f"the run's options ({type(e).__name__}: {e})") from None
        say(f"Resuming {run_dir} after epoch {start_epoch - 1}")
    else:
        _make_run_dir(run_dir, config.overwrite)
        atomic_write_text(run_dir / "config.json", json.dumps(
            {**dataclasses.asdict(config), "version": __version__}, indent=2) + "\n")
        say(f"Training {config.model} ({model.num_parameters():,} parameters) on "
            f"{len(data.y_train):,} {data.name} images "
            f"({'x'.join(map(str, data.image_shape))}, {len(data.classes)} classes)"
            f"{' (--limit)' if config.limit else ''}, "
            f"validating on {len(data.y_val):,}; run directory: {run_dir}")
        note = recipe_note(config)
        if note:
            say(note)
    say(f"Training step: {'compiled (tinygrad_mnist.jit)' if config.jit else 'eager (--no-jit)'}"
        f"; BLAS: {threads.describe()}")

    def checkpoint(epoch: int) -> Dict[str, Any]:
        return {**_checkpoint(model, optimizer, scheduler, loader, epoch, history, best,
                              config, data.stats, seconds), **_data_state(data)}

    if state is None:
        save(checkpoint(0), run_dir / "last.npz")
    epoch = start_epoch - 1
    current = [epoch]  # the epoch a NumPy warning is about
    warn = say.warn_once(current)
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            began = time.perf_counter()
            current[0] = epoch
            lr = optimizer.param_groups[0]["lr"]  # the rate of the epoch's first step
            progress = _progress(len(loader), f"epoch {epoch}/{config.epochs}", config.quiet)
            try:
                with np.errstate(over="call", divide="call", invalid="call", call=warn):
                    train_loss, train_acc = train_epoch(model, loader, optimizer, scheduler,
                                                        config, progress, train_step)
            finally:
                if progress is not None:
                    progress.close()
            with np.errstate(over="call", divide="call", invalid="call", call=warn):
                val_loss, val_acc, _ = evaluate_arrays(model, data.x_val, data.y_val)
            took = time.perf_counter() - began
            seconds += took
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val_loss, "val_acc": val_acc,
                   "lr": lr, "seconds": took,
                   "images_per_sec": len(data.y_train) / took}
            history.append(row)
            say(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} "
                f"acc {train_acc:.2%}  val loss {val_loss:.4f} acc {val_acc:.2%}  "
                f"lr {row['lr']:.2e}  {took:.1f}s  {row['images_per_sec']:,.0f} img/s")
            if val_acc > best["val_acc"]:
                best = {"val_acc": val_acc, "epoch": epoch}
                save({"format": "tinygrad_mnist.model", "model": model.state_dict(),
                      "config": dataclasses.asdict(config), "stats": list(data.stats),
                      "epoch": epoch, "val_acc": val_acc, **_data_state(data)},
                     run_dir / "best.npz")
            save(checkpoint(epoch), run_dir / "last.npz")
            atomic_write_text(run_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))
    except KeyboardInterrupt as e:
        what = "Terminated (SIGTERM)" if isinstance(e, Terminated) else "Interrupted"
        print(f"\n{what} during epoch {epoch}. The last completed epoch is saved in "
              f"{run_dir / 'last.npz'}.\nResume with:  {_resume_command(run_dir)}",
              file=sys.stderr, flush=True)
        raise
    except TrainingDiverged as e:
        raise TrainingDiverged(f"{e}. The last good checkpoint is {run_dir / 'last.npz'}.") \
            from None

    report = write_report(run_dir, load_trained(run_dir), data.x_test, data.y_test,
                          training_seconds=seconds, make_plots=config.plots, history=history)
    say.result(f"Test accuracy {report['test_accuracy']:.2%} (loss "
               f"{report['test_loss']:.4f}) with the epoch-{report['best_epoch']} model; "
               f"{seconds:.0f}s of training.")
    say(f"Outputs: {run_dir}/ (report.md, metrics.csv, best.npz, plots)")
    return run_dir


def _progress(total: int, desc: str, quiet: int) -> Any:
    """A progress bar on a terminal (none when redirected, or with -q)."""
    if quiet or not sys.stderr.isatty():
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
