"""Using a trained model: load a run's checkpoint, predict class probabilities, and
evaluate loss and accuracy with the framework's own loss (`nll_loss`).

An ensemble (`Ensemble`, `load_models`) averages the class probabilities of several
trained models, each with its own preprocessing; its members are run directories,
checkpoints, or the best runs of a sweep directory (the one holding `sweep.csv`).

`predict`, `serve`, `export` and the report use this module; none of them needs the
trainer.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd

from .. import models, nn
from . import metrics
from ..autograd import no_grad
from ..models import build_model
from .config import TrainConfig
from ..data import DIGITS, Stats, apply_standardization, to_layout
from ..errors import BrokenModelError, UsageError
from ..errors import one_line as errors_line
from ..serialization import CheckpointError, load
from ..tensor import from_numpy

PathLike = Union[str, os.PathLike]
#: The file that makes a directory a sweep (one row per trial; see tinygrad_mnist.app.sweep).
SWEEP_CSV = "sweep.csv"
#: The smallest class probability the evaluation loss takes the logarithm of.
MIN_PROBABILITY = 1e-30


@contextmanager
def _inference_mode(model: nn.Module) -> Iterator[None]:
    """Eval mode and no graph recording; the model's train/eval mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            yield
    finally:
        model.train(was_training)


def predict_proba(model: nn.Module, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Class probabilities (N, C) of `model` on its input `x`."""
    with _inference_mode(model):
        chunks = [model(from_numpy(x[i:i + batch_size])).softmax(axis=1).data
                  for i in range(0, max(len(x), 1), batch_size)]  # an empty x gives (0, C)
    return np.concatenate(chunks)


def evaluate_arrays(model: nn.Module, x: np.ndarray, y: np.ndarray,
                    batch_size: int = 1000) -> Tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, probabilities (N, C)) of `model` on (x, y).

    The loss is the framework's `nll_loss` of the reported probabilities, in float64,
    so loss and probabilities agree; a probability that rounds to 0 counts as
    `MIN_PROBABILITY`, which keeps one confident mistake from making the mean infinite.
    """
    proba = predict_proba(model, x, batch_size)
    if not len(x):
        return float("nan"), float("nan"), proba
    log_proba = from_numpy(proba.astype(np.float64)).clamp(min=MIN_PROBABILITY).log()
    losses = nn.functional.nll_loss(log_proba, y, reduction="none").data
    return float(np.mean(losses)), metrics.accuracy(y, proba.argmax(axis=1)), proba


@dataclass
class Trained:
    """A model restored from a checkpoint, with what it needs to preprocess input."""
    model: nn.Module
    config: TrainConfig
    stats: Stats
    checkpoint: Path
    epoch: int
    val_acc: Optional[float]  # validation accuracy saved with the model, if any
    classes: Tuple[str, ...] = DIGITS                  # the data's class names
    image_shape: Tuple[int, int, int] = (1, 28, 28)    # (C, H, W) of one input image

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Float images in [0, 1], (N, 28, 28) (or (N, C, H, W) of `image_shape`) → the
        model's normalised input."""
        x = apply_standardization(np.asarray(images, np.float32), self.stats)
        return to_layout(x, models.LAYOUTS[self.config.model], self.image_shape)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Images as `prepare` takes them → (N, C) class probabilities."""
        return predict_proba(self.model, self.prepare(images))


def load_trained(path: PathLike) -> Trained:
    """Load a run directory's best model (or a given `.npz` checkpoint) for use."""
    path = Path(path)
    checkpoint = path / "best.npz" if path.is_dir() else path
    if not checkpoint.is_file():
        raise CheckpointError(f"no checkpoint at {checkpoint}; give a run directory with "
                              f"best.npz or a .npz checkpoint file")
    state = load(checkpoint)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{checkpoint}: not a tinygrad_mnist model checkpoint (it has "
                              f"no model and config); give a run's best.npz or last.npz")
    try:
        config = TrainConfig.from_dict(dict(state["config"]), saved=True)
    except (UsageError, TypeError, ValueError) as e:
        raise CheckpointError(f"{checkpoint}: its saved options are invalid: {e}") from None
    try:
        classes = tuple(str(c) for c in state.get("classes", DIGITS))  # earlier runs: MNIST's
        image_shape = tuple(int(d) for d in state.get("image_shape", (1, 28, 28)))
        stats = Stats(*(float(v) for v in state["stats"]))
        epoch = int(state.get("epoch", 0))
        val_acc = state.get("val_acc")
        val_acc = None if val_acc is None else float(val_acc)
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{checkpoint}: damaged or missing metadata "
                              f"({type(e).__name__}: {e}); retrain or use another "
                              f"checkpoint") from None
    if not (np.isfinite(stats).all() and stats.std > 0):
        raise CheckpointError(f"{checkpoint}: its training statistics {tuple(stats)} are "
                              f"not a finite mean and a positive standard deviation")
    try:
        model = build_model(config, image_shape, len(classes))
    except MemoryError:
        raise CheckpointError(f"{checkpoint}: not enough memory for the {config.model} with "
                              f"hidden layers {config.hidden} that it describes") from None
    try:
        model.load_state_dict(state["model"])
    except (nn.StateDictError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise CheckpointError(f"{checkpoint}: its weights do not fit the {config.model} "
                              f"(hidden {config.hidden}) that its options describe: "
                              f"{errors_line(e)}") from None
    for name, value in model.state_dict().items():
        if not np.isfinite(np.asarray(getattr(value, "data", value))).all():
            raise BrokenModelError(f"{checkpoint}: the model is broken: its {name} holds "
                                   f"NaN or infinite values; retrain it or use another "
                                   f"checkpoint")
    model.eval()
    return Trained(model, config, stats, checkpoint, epoch, val_acc, classes,
                   image_shape)  # type: ignore[arg-type]


# --------------------------------------------------------------------- ensembles
@dataclass
class Ensemble:
    """Several trained models whose class probabilities are averaged (each member
    prepares the images its own way: its layout, its training statistics)."""
    members: List[Trained]

    def __post_init__(self) -> None:
        if not self.members:
            raise UsageError("an ensemble needs at least one model")
        first = self.members[0]
        for member in self.members[1:]:
            if (member.classes, member.image_shape) != (first.classes, first.image_shape):
                raise UsageError(f"ensemble members must classify the same images into the "
                                 f"same classes: {member.checkpoint} has "
                                 f"{len(member.classes)} classes of {member.image_shape} "
                                 f"images, {first.checkpoint} {len(first.classes)} of "
                                 f"{first.image_shape}")

    @property
    def classes(self) -> Tuple[str, ...]:
        return self.members[0].classes

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        return self.members[0].image_shape

    def member_proba(self, images: np.ndarray) -> List[np.ndarray]:
        """Each member's (N, C) probabilities on images as `Trained.prepare` takes them."""
        return [member.predict_proba(images) for member in self.members]

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Images as `Trained.prepare` takes them → the members' mean (N, C) probabilities."""
        return average_proba(self.member_proba(images))


def average_proba(probas: Sequence[np.ndarray]) -> np.ndarray:
    """The ensemble's probabilities: the mean of its members' (in float64, returned as
    float32 like a single model's)."""
    return np.mean(np.stack(probas), axis=0, dtype=np.float64).astype(np.float32)


def sweep_runs(sweep_dir: PathLike, top_k: Optional[int] = None) -> List[Path]:
    """The run directories of a sweep's finished trials, best first by the sweep's
    validation metric (its spec.json says which; val_acc by default), the first `top_k`
    of them if given. Never ranks by test accuracy."""
    sweep_dir = Path(sweep_dir)
    frame = pd.read_csv(sweep_dir / SWEEP_CSV)
    metric = "val_acc"
    if (sweep_dir / "spec.json").exists():
        metric = json.loads((sweep_dir / "spec.json").read_text()).get("metric", metric)
    ok = frame[frame["status"] == "ok"]
    ok = ok.sort_values(metric, ascending=metric.endswith("loss"), kind="stable")
    runs = [sweep_dir / run for run in ok["run_dir"]]
    if not runs:
        raise ValueError(f"the sweep {sweep_dir} has no finished trial")
    return runs[:top_k] if top_k else runs


def resolve_runs(paths: Union[PathLike, Sequence[PathLike]],
                 top_k: Optional[int] = None) -> List[Path]:
    """Run directories or checkpoints, with each sweep directory among `paths` replaced
    by its best `top_k` runs (all finished ones without `top_k`)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir() and (path / SWEEP_CSV).exists():
            runs += sweep_runs(path, top_k)
        else:
            runs.append(path)
    if top_k is not None and top_k < 1:
        raise ValueError(f"--best-runs must be at least 1, got {top_k}")
    return runs


def load_models(paths: Union[PathLike, Sequence[PathLike]],
                top_k: Optional[int] = None) -> Union[Trained, Ensemble]:
    """One trained model (when `paths` comes to a single run or checkpoint) or an
    `Ensemble` of several (several paths, or a sweep directory: its best `top_k` runs).
    Both have `predict_proba(images)`."""
    runs = resolve_runs(paths, top_k)
    if len(runs) == 1:
        return load_trained(runs[0])
    return Ensemble([load_trained(run) for run in runs])
