"""Train a model: the library behind `scripts/train_mnist.py` and `tinygrad-mnist train`.
Data flows one way: data → model → loss → backward → optimizer; this module wires those
pieces together, keeps the checkpoints and writes the run directory.

A run directory holds `config.json`, `metrics.csv`, `best.npz` and `last.npz`, and the
test report (`report.md`/`report.json` and PNG plots, see `report.py`). Every file is
written atomically.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import pandas as pd

from . import __version__, models, nn, optim
from .atomic import atomic_write_text
from .config import TrainConfig, build_model, option_flag
from .data import DataLoader, Stats, load_mnist, prepare, train_val_split
from .inference import evaluate_arrays, load_trained
from .report import write_report
from .serialization import load, save
from .tensor import from_numpy

PathLike = Union[str, os.PathLike]
#: The options a resumed run may change; every other one keeps its saved value.
RESUME_OPTIONS = ("epochs", "quiet", "plots")


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


def load_data(config: TrainConfig) -> Data:
    """MNIST split into train/validation (seeded), standardised with training-split
    statistics, in the layout the model expects."""
    mnist = load_mnist(config.data_dir)
    x, y = mnist.train_images, mnist.train_labels.astype(np.int64)
    if config.limit is not None:
        x, y = x[:config.limit], y[:config.limit]
    split = train_val_split(x, y, config.val_size, seed=config.seed, stratify=True)
    layout = models.LAYOUTS[config.model]
    x_train, stats = prepare(split.x_train, layout=layout, standardize=True)
    x_val, _ = prepare(split.x_val, layout=layout, standardize=stats)
    x_test, _ = prepare(mnist.test_images, layout=layout, standardize=stats)
    return Data(x_train, split.y_train, x_val, split.y_val, x_test,
                mnist.test_labels.astype(np.int64), stats)


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
def train_epoch(model: nn.Module, loader: DataLoader, optimizer: optim.Optimizer,
                scheduler: Optional[Any], config: TrainConfig,
                progress: Any = None) -> Tuple[float, float]:
    """One pass over `loader`; returns (mean training loss, training accuracy)."""
    model.train()
    params = list(model.parameters())
    total_loss = correct = seen = 0
    for step, (xb, yb) in enumerate(loader):
        logits = model(from_numpy(xb))
        loss = nn.functional.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
        if config.l1:
            loss = loss + config.l1 * nn.utils.l1_penalty(params)
        value = float(loss.data)
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"the training loss became {value} at batch {step + 1}; lower the learning "
                f"rate (--lr, now {config.lr:g}) or use a gentler schedule")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += value * len(yb)
        correct += int((logits.data.argmax(axis=1) == yb).sum())
        seen += len(yb)
        if progress is not None:
            progress.update(1)
            if step % 20 == 0:
                progress.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
    return total_loss / max(seen, 1), correct / max(seen, 1)


# ------------------------------------------------------------- the run directory
def _new_run_dir(out: Optional[str]) -> Path:
    if out:
        path = Path(out)
    else:
        path = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{suffix}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _checkpoint(model, optimizer, scheduler, loader, epoch, history, best, config, stats,
                seconds) -> Dict[str, Any]:
    return {"format": "tinygrad_mnist.run", "version": __version__, "epoch": epoch,
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else {},
            "loader": loader.state_dict(), "rng": nn.init.get_rng_state(),
            "history": history, "best": best, "config": dataclasses.asdict(config),
            "stats": list(stats), "seconds": seconds}


class _Printer:
    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __call__(self, *args: Any) -> None:
        if not self.quiet:
            print(*args, flush=True)


def check_resume(run_dir: PathLike, changed: Iterable[str] = ()) -> Path:
    """Check that the run in `run_dir` can be resumed with the options named in
    `changed` given anew (only RESUME_OPTIONS may be) and return its last checkpoint;
    raises ValueError or FileNotFoundError naming the problem."""
    fixed = [name for name in changed if name not in RESUME_OPTIONS]
    if fixed:
        allowed = [option_flag(name) for name in RESUME_OPTIONS]
        raise ValueError(f"a resumed run keeps its saved options; only "
                         f"{', '.join(allowed[:-1])} and {allowed[-1]} may be given, not "
                         f"{', '.join(option_flag(name) for name in fixed)}")
    last = Path(run_dir) / "last.npz"
    if not last.exists():
        raise FileNotFoundError(f"cannot resume: {last} does not exist")
    return last


def train(config: Optional[TrainConfig] = None, resume: Optional[PathLike] = None,
          **overrides: Any) -> Path:
    """Train a model, keep the best (by validation accuracy) and the last checkpoint,
    evaluate the best one once on the test set, and write the report and plots.

    With `resume`, continue the run in that directory from its last completed epoch,
    with its saved configuration (`overrides` may change only RESUME_OPTIONS: epochs,
    quiet and plots; see `check_resume`) and the same model, optimizer, scheduler, data
    order and RNG state, so the result is bitwise the same as an uninterrupted run.
    Returns the run directory."""
    if resume is not None:
        run_dir = Path(resume)
        state = load(check_resume(run_dir, overrides))
        config = TrainConfig.from_dict({**state["config"], **overrides})
    else:
        config = dataclasses.replace(config or TrainConfig(), **overrides).validate()
        run_dir = _new_run_dir(config.out)
        state = None
    say = _Printer(config.quiet)

    nn.init.manual_seed(config.seed)
    data = load_data(config)
    model = build_model(config)
    loader = DataLoader(data.x_train, data.y_train, config.batch_size, shuffle=True,
                        seed=config.seed, augment_shift=2 if config.augment else 0)
    optimizer = build_optimizer(config, model.parameters())
    scheduler = build_scheduler(config, optimizer, len(loader))
    history: List[Dict[str, float]] = []
    best = {"val_acc": -1.0, "epoch": 0}
    seconds = 0.0
    start_epoch = 1
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        loader.load_state_dict(state["loader"])
        nn.init.set_rng_state(state["rng"])
        history, best, seconds = list(state["history"]), dict(state["best"]), state["seconds"]
        start_epoch = int(state["epoch"]) + 1
        say(f"Resuming {run_dir} after epoch {state['epoch']}")
    else:
        atomic_write_text(run_dir / "config.json", json.dumps(
            {**dataclasses.asdict(config), "version": __version__}, indent=2) + "\n")
        say(f"Training {config.model} ({model.num_parameters():,} parameters) on "
            f"{len(data.y_train):,} images, validating on {len(data.y_val):,}; "
            f"run directory: {run_dir}")

    def checkpoint(epoch: int) -> Dict[str, Any]:
        return _checkpoint(model, optimizer, scheduler, loader, epoch, history, best,
                           config, data.stats, seconds)

    if state is None:
        save(checkpoint(0), run_dir / "last.npz")
    epoch = start_epoch - 1
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            began = time.perf_counter()
            progress = _progress(len(loader), f"epoch {epoch}/{config.epochs}", config.quiet)
            try:
                train_loss, train_acc = train_epoch(model, loader, optimizer, scheduler,
                                                    config, progress)
            finally:
                if progress is not None:
                    progress.close()
            val_loss, val_acc, _ = evaluate_arrays(model, data.x_val, data.y_val)
            took = time.perf_counter() - began
            seconds += took
            row = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                   "val_loss": val_loss, "val_acc": val_acc,
                   "lr": optimizer.param_groups[0]["lr"], "seconds": took,
                   "images_per_sec": len(data.y_train) / took}
            history.append(row)
            say(f"epoch {epoch:>3}/{config.epochs}  train loss {train_loss:.4f} "
                f"acc {train_acc:.2%}  val loss {val_loss:.4f} acc {val_acc:.2%}  "
                f"lr {row['lr']:.2e}  {took:.1f}s  {row['images_per_sec']:,.0f} img/s")
            if val_acc > best["val_acc"]:
                best = {"val_acc": val_acc, "epoch": epoch}
                save({"format": "tinygrad_mnist.model", "model": model.state_dict(),
                      "config": dataclasses.asdict(config), "stats": list(data.stats),
                      "epoch": epoch, "val_acc": val_acc}, run_dir / "best.npz")
            save(checkpoint(epoch), run_dir / "last.npz")
            atomic_write_text(run_dir / "metrics.csv", pd.DataFrame(history).to_csv(index=False))
    except KeyboardInterrupt:
        print(f"\nInterrupted during epoch {epoch}. The last completed epoch is saved in "
              f"{run_dir / 'last.npz'}.\nResume with:  python scripts/train_mnist.py "
              f"--resume {run_dir}", file=sys.stderr, flush=True)
        raise
    except TrainingDiverged as e:
        raise TrainingDiverged(f"{e}. The last good checkpoint is {run_dir / 'last.npz'}.") \
            from None

    report = write_report(run_dir, load_trained(run_dir), data.x_test, data.y_test,
                          training_seconds=seconds, make_plots=config.plots, history=history)
    say(f"Test accuracy {report['test_accuracy']:.2%} (loss {report['test_loss']:.4f}) "
        f"with the epoch-{report['best_epoch']} model; {seconds:.0f}s of training.\n"
        f"Outputs: {run_dir}/ (report.md, metrics.csv, best.npz, plots)")
    return run_dir


def _progress(total: int, desc: str, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True)
