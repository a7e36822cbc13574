"""Using a trained model: load a run's checkpoint, predict class probabilities, and
evaluate loss and accuracy with the framework's own cross-entropy.

`predict`, `serve`, `export` and the report use this module; none of them needs the
trainer.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

import numpy as np

from . import metrics, models, nn
from .autograd import no_grad
from .config import TrainConfig, build_model
from .data import Stats, apply_standardization, to_layout
from .serialization import load
from .tensor import from_numpy

PathLike = Union[str, os.PathLike]
NUM_CLASSES = 10


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
    """Class probabilities (N, 10) of `model` on its input `x`."""
    with _inference_mode(model):
        chunks = [model(from_numpy(x[i:i + batch_size])).softmax(axis=1).data
                  for i in range(0, len(x), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)


def evaluate_arrays(model: nn.Module, x: np.ndarray, y: np.ndarray,
                    batch_size: int = 1000) -> Tuple[float, float, np.ndarray]:
    """(mean cross-entropy, accuracy, probabilities (N, 10)) of `model` on (x, y)."""
    if not len(x):
        return float("nan"), float("nan"), np.zeros((0, NUM_CLASSES), np.float32)
    chunks, losses = [], []
    with _inference_mode(model):
        for i in range(0, len(x), batch_size):
            logits = model(from_numpy(x[i:i + batch_size]))
            chunks.append(logits.softmax(axis=1).data)
            losses.append(nn.functional.cross_entropy(logits, y[i:i + batch_size],
                                                      reduction="none").data)
    proba = np.concatenate(chunks)
    loss = float(np.mean(np.concatenate(losses), dtype=np.float64))
    return loss, metrics.accuracy(y, proba.argmax(axis=1)), proba


@dataclass
class Trained:
    """A model restored from a checkpoint, with what it needs to preprocess input."""
    model: nn.Module
    config: TrainConfig
    stats: Stats
    checkpoint: Path
    epoch: int
    val_acc: Optional[float]  # validation accuracy saved with the model, if any

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Float images in [0, 1], (N, 28, 28) → the model's normalised input."""
        x = apply_standardization(np.asarray(images, np.float32), self.stats)
        return to_layout(x, models.LAYOUTS[self.config.model])

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) floats in [0, 1] → (N, 10) class probabilities."""
        return predict_proba(self.model, self.prepare(images))


def load_trained(path: PathLike) -> Trained:
    """Load a run directory's best model (or a given `.npz` checkpoint) for use."""
    path = Path(path)
    checkpoint = path / "best.npz" if path.is_dir() else path
    if not checkpoint.exists():
        raise FileNotFoundError(f"no checkpoint at {checkpoint}; give a run directory "
                                f"with best.npz or a checkpoint file")
    state = load(checkpoint)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{checkpoint} is not a tinygrad_mnist model checkpoint")
    config = TrainConfig.from_dict(dict(state["config"]))
    model = build_model(config)
    model.load_state_dict(state["model"])
    model.eval()
    val_acc = state.get("val_acc")
    return Trained(model, config, Stats(*state["stats"]), checkpoint, int(state["epoch"]),
                   None if val_acc is None else float(val_acc))
