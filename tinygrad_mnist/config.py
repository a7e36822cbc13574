"""The options of a training run, `TrainConfig`, and the model a configuration describes.

Each field carries its command-line help, type and rules in its `metadata`; the
`tinygrad-mnist train` options are built from them (see `cli.py`) and `validate` checks
them, so every option is described, parsed and checked in one place. The trainer, the
inference module and the report all read a run's configuration through this module.
"""
from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional

import numpy as np

from . import models, nn

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")


def _option(default: Any, help: str, type: Callable[[str], Any] = str, *,
            choices: Optional[Iterable[str]] = None, must_be: Optional[str] = None,
            rule: Optional[Callable[[Any], bool]] = None, nargs: Optional[str] = None,
            flag: Optional[str] = None) -> Any:
    """A field whose metadata describes its option: `help` and `type` for the command
    line (`nargs` for a list; `flag` for an on/off switch that sets the opposite of
    `default`), and what a valid value is: one of `choices`, or `rule(value)` true,
    described as "must be {must_be}"."""
    metadata = {"help": help, "type": type, "choices": choices, "must_be": must_be,
                "rule": rule, "nargs": nargs, "flag": flag}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every option of a training run (the keys of `--config FILE.json`). `None` for
    `hidden` and `augment` means the model's default (`models.DEFAULTS`)."""
    model: str = _option("mlp", "architecture: mlp (fully connected) or cnn (convolutional)",
                         choices=models.MODELS)
    hidden: Optional[List[int]] = _option(
        None, "hidden layer sizes of the MLP (of the CNN's fully connected part), "
              "e.g. 512 256", int, nargs="+")
    epochs: int = _option(12, "passes over the training split", int,
                          must_be="at least 1", rule=lambda n: n >= 1)
    batch_size: int = _option(128, "images per optimizer step", int,
                              must_be="at least 1", rule=lambda n: n >= 1)
    optimizer: str = _option("adam", "sgd, momentum (SGD, 0.9), nesterov, rmsprop, adam or "
                                     "adamw", choices=OPTIMIZERS)
    # Stricter than the optimizers' own lr >= 0: a run needs a positive, finite rate.
    lr: float = _option(1e-3, "(peak) learning rate", float, must_be="positive",
                        rule=lambda lr: lr > 0 and math.isfinite(lr))
    schedule: str = _option("cosine", "learning-rate schedule over the run: none, step "
                                      "(÷10 each third), cosine or onecycle",
                            choices=SCHEDULES)
    weight_decay: float = _option(0.0, "L2 penalty (decoupled for adamw)", float,
                                  must_be=">= 0", rule=lambda w: w >= 0)
    l1: float = _option(0.0, "L1 penalty coefficient added to the loss", float,
                        must_be=">= 0", rule=lambda c: c >= 0)
    dropout: float = _option(0.2, "dropout probability after each hidden layer (0 disables)",
                             float, must_be="in [0, 1)", rule=lambda p: 0 <= p < 1)
    label_smoothing: float = _option(0.0, "label smoothing for the cross-entropy loss", float,
                                     must_be="in [0, 1)", rule=lambda s: 0 <= s < 1)
    init: str = _option("he", "weight initialisation: he, xavier, lecun or normal "
                              "(N(0, 0.01))", choices=models.INITS)
    val_size: int = _option(5000, "images held out of the 60,000 training images for "
                                  "validation", int, must_be="at least 1",
                            rule=lambda n: n >= 1)
    seed: int = _option(0, "random seed: the same seed gives the same numbers", int)
    data_dir: Optional[str] = _option(
        None, "directory with the MNIST IDX files (default: $TINYGRAD_MNIST_DATA, then the "
              "user cache, downloading if needed)")
    out: Optional[str] = _option(None, "run directory (default: a fresh runs/YYYYmmdd-HHMMSS)")
    limit: Optional[int] = _option(None, "train on only the first N training images, for "
                                         "quick tries", int)
    augment: Optional[bool] = _option(None, "randomly shift training images by up to 2 pixels "
                                            "(--no-augment: off)", bool)
    plots: bool = _option(True, "skip the PNG plots", bool, flag="--no-plots")
    quiet: bool = _option(False, "print only errors", bool, flag="--quiet")

    def validate(self) -> "TrainConfig":
        """Fill in the model's defaults and check every option; raises ValueError naming
        the first invalid one."""
        for key, value in models.DEFAULTS.get(self.model, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(value))
        for f in dataclasses.fields(self):
            value, meta = getattr(self, f.name), f.metadata
            if meta["choices"] is not None and value not in meta["choices"]:
                raise ValueError(f"{option_flag(f.name)} must be one of "
                                 f"{list(meta['choices'])}, got {value!r}")
            if meta["rule"] is not None and not meta["rule"](value):
                raise ValueError(f"{option_flag(f.name)} must be {meta['must_be']}, "
                                 f"got {value}")
        if self.limit is not None and self.limit <= self.val_size:
            raise ValueError(f"--limit ({self.limit}) must exceed --val-size ({self.val_size})")
        return self

    @classmethod
    def from_dict(cls, values: Dict[str, Any]) -> "TrainConfig":
        """A validated config from `values` (e.g. a run's config.json); unknown keys are
        an error."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(unknown)}; "
                             f"known keys: {', '.join(sorted(known))}")
        return cls(**values).validate()


def option_flag(name: str) -> str:
    """The command-line flag of option `name`, e.g. `--batch-size` for `batch_size` and
    `--no-plots` for `plots`."""
    flags = {f.name: f.metadata["flag"] for f in dataclasses.fields(TrainConfig)}
    return flags.get(name) or "--" + name.replace("_", "-")


def build_model(config: TrainConfig) -> nn.Module:
    """The model `config` describes, initialised from its seed."""
    generator = np.random.default_rng(config.seed)
    model = models.MODELS[config.model](hidden=config.hidden, dropout=config.dropout,
                                        generator=generator)
    return models.initialize(model, config.init, generator)
