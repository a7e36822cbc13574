"""The options of a training run, `TrainConfig`, and the model a configuration describes.

Each field carries its command-line help, type and rules in its `metadata`; the
`tinygrad-mnist train` options are built from them (see `cli.py`) and `validate` checks
them, so every option is described, parsed and checked in one place: a `--config` file's
values go through the same typed schema as the command line's (an integer option takes
only an integer, a choice is matched case-insensitively, a list holds only its type), and
every error is a `UsageError` naming the option. The trainer, the
inference module and the report all read a run's configuration through this module.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import numpy as np

from .. import models
from ..data import AUGMENTATIONS, DATASETS, ImageData, load_images
from ..errors import UsageError

OPTIMIZERS = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw")
SCHEDULES = ("none", "step", "cosine", "onecycle")
MAX_HIDDEN = 65536            #: the largest hidden layer
MAX_PARAMETERS = 250_000_000  #: ~1 GB of float32 weights, before gradients and optimizer state
_WIDEST_INPUT = 1152          # the widest input of a hidden stack (the CNN's flattened 3x3x128)


def _option(default: Any, help: str, type: Callable[[str], Any] = str, *,
            choices: Optional[Iterable[str]] = None, must_be: Optional[str] = None,
            rule: Optional[Callable[[Any], bool]] = None, nargs: Optional[str] = None,
            flag: Optional[str] = None, count: bool = False) -> Any:
    """A field whose metadata describes its option: `help` and `type` for the command
    line (`nargs` for a list; `flag` for an on/off switch that sets the opposite of
    `default`, or with `count` a flag counted each time it is given, as -q/-qq), and
    what a valid value is: of `type` (each item, for a list), one of `choices` (matched
    case-insensitively), and `rule(value)` true (for each item of a list), described as
    "must be {must_be}"."""
    metadata = {"help": help, "type": type, "choices": choices, "must_be": must_be,
                "rule": rule, "nargs": nargs, "flag": flag, "count": count}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """Every option of a training run (the keys of `--config FILE.json`). `None` for
    `hidden`, `conv_channels`, `epochs`, `augment` and `threads` means the model's
    default (`models.DEFAULTS`); for the CNN on a registered dataset with a recipe of
    its own (`DatasetInfo.cnn_defaults`), that recipe's value first."""
    model: str = _option("mlp", "architecture: mlp (fully connected) or cnn (convolutional)",
                         choices=models.MODELS)
    hidden: Optional[List[int]] = _option(
        None, "hidden layer sizes of the MLP (of the CNN's fully connected part), "
              "e.g. 512 256", int, nargs="+", must_be=f"between 1 and {MAX_HIDDEN}",
        rule=lambda n: 1 <= n <= MAX_HIDDEN)
    conv_channels: Optional[List[int]] = _option(
        None, "the CNN's convolution widths, one per block (each block halves the image), "
              "e.g. 32 64 128", int, nargs="+", must_be="between 1 and 1024",
        rule=lambda n: 1 <= n <= 1024)
    epochs: Optional[int] = _option(None, "passes over the training split", int,
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
    seed: int = _option(0, "random seed: the same seed gives the same numbers", int,
                        must_be="in 0..2**32-1", rule=lambda n: 0 <= n < 2 ** 32)
    threads: Optional[int] = _option(
        None, "BLAS threads for training and evaluation (tinygrad_mnist.threads); the same "
              "seed and thread count give the same numbers", int, must_be="at least 1",
        rule=lambda n: n >= 1)
    dataset: Optional[str] = _option(
        None, "registered dataset: " + ", ".join(DATASETS) + " (default: mnist, or with "
              "--data-dir what that folder holds)", choices=DATASETS)
    data_dir: Optional[str] = _option(
        None, "the dataset's folder (default: its variable such as $TINYGRAD_MNIST_DATA, "
              "then the user cache, downloading if needed); without --dataset, any folder of "
              "four IDX files (digests not checked), of class sub-folders of images, or a "
              "Kaggle train.csv")
    image_size: Optional[int] = _option(
        None, "image folders: resize every image to N x N (needed when sizes differ; "
              "default: keep their size)", int,
        must_be="in 1..1024", rule=lambda n: 1 <= n <= 1024)
    channels: Optional[int] = _option(
        None, "image folders: 1 (greyscale) or 3 (colour); default: colour if any image is",
        int, must_be="1 or 3", rule=lambda n: n in (1, 3))
    out: Optional[str] = _option(None, "run directory (default: a fresh runs/YYYYmmdd-HHMMSS)")
    limit: Optional[int] = _option(None, "train on only N training images, for quick tries "
                                         "(the validation images are taken beside them; "
                                         "default: all)",
                                   int, must_be="at least 1", rule=lambda n: n >= 1)
    augment: Optional[str] = _option(
        None, "training-time distortion: none; shift (up to 2 pixels); flip (shift, and "
              "mirror half the images: for pictures of things, not digits); affine (random "
              "rotation, scale, shear and shift); elastic (affine, then elastic distortion)",
        choices=AUGMENTATIONS)
    plots: bool = _option(True, "skip the PNG plots", bool, flag="--no-plots")
    quiet: int = _option(0, "-q: no progress bars; -qq: nothing but errors and the result",
                         int, flag="--quiet", count=True, must_be="0, 1 or 2",
                         rule=lambda q: 0 <= q <= 2)
    overwrite: bool = _option(False, "replace the run already in --out (default: refuse)",
                              bool, flag="--overwrite")
    jit: bool = _option(True, "run the training step eagerly instead of compiled "
                              "(tinygrad_mnist.jit; both give the same numbers)", bool,
                        flag="--no-jit")

    def validate(self, recipes: bool = True) -> "TrainConfig":
        """Check every option against its type, choices and rule (turning a choice to
        lower case), then fill in the defaults: the dataset's CNN recipe first (unless
        `recipes` is False), then the model's; raises UsageError (a ValueError) naming
        the first invalid option."""
        if isinstance(self.quiet, bool):  # runs of earlier versions saved quiet: true/false
            self.quiet = 2 if self.quiet else 0
        if isinstance(self.augment, bool):  # earlier versions: augment true = 2-pixel shifts
            self.augment = "shift" if self.augment else "none"
        for key, value in (cnn_recipe(self) if recipes else {}).items():
            if getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(value))
        for f in dataclasses.fields(self):
            setattr(self, f.name, _checked(f, getattr(self, f.name)))
        if self.conv_channels is not None and self.model != "cnn":
            raise UsageError(f"--conv-channels is for --model cnn, not {self.model}",
                             "conv_channels")
        for key, value in models.DEFAULTS.get(self.model, {}).items():
            if getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(value))
        widest = max(_WIDEST_INPUT, 9 * (self.conv_channels or [0])[-1])
        widths = [widest, *(self.hidden or []), 10]
        parameters = sum(a * b for a, b in zip(widths, widths[1:]))
        if parameters > MAX_PARAMETERS:
            raise UsageError(f"--hidden {' '.join(map(str, self.hidden))} asks for about "
                             f"{parameters:.1e} parameters ({parameters * 4 / 2**30:.0f} GiB "
                             f"of weights); at most {MAX_PARAMETERS:,} are allowed: use "
                             f"smaller hidden layers", "hidden")
        return self

    def load_images(self) -> ImageData:
        """The data this run names (`data.load_images` with its dataset options)."""
        return load_images(self.dataset, self.data_dir, image_size=self.image_size,
                           channels=self.channels, quiet=self.quiet >= 2)

    @classmethod
    def from_dict(cls, values: Dict[str, Any], saved: bool = False) -> "TrainConfig":
        """A validated config from `values`; unknown keys are an error. `saved`: the
        values are a run's own (its config.json or checkpoint), whose unset options
        meant the model's defaults when it was made, so no dataset recipe applies."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known, key=str)
        if unknown:
            shown = [k if isinstance(k, str) and k.isprintable() else json.dumps(str(k))
                     for k in unknown[:5]]  # a key may hold a line break
            raise UsageError(f"unknown config key(s): {', '.join(shown)}"
                             f"{f' (+{len(unknown) - 5} more)' if len(unknown) > 5 else ''}; "
                             f"known keys: {', '.join(sorted(known))}", str(unknown[0]))
        return cls(**values).validate(recipes=not saved)


def cnn_recipe(config: TrainConfig) -> Mapping[str, Any]:
    """The options the run's registered dataset recommends for the CNN
    (`DatasetInfo.cnn_defaults`); empty for the MLP or data without a recipe."""
    info = (DATASETS.get(config.dataset.lower())
            if str(config.model).lower() == "cnn" and isinstance(config.dataset, str) else None)
    return info.cnn_defaults if info is not None else {}


def recipe_note(config: TrainConfig) -> str:
    """"The CNN's recipe for DATASET: ..." when the run trains the CNN with its dataset's
    recipe, so a longer run than usual is no surprise; "" otherwise."""
    recipe = cnn_recipe(config)
    if not recipe or any(getattr(config, k) != v for k, v in recipe.items()):
        return ""
    values = ", ".join(f"{option_flag(k)} {' '.join(map(str, v)) if isinstance(v, list) else v}"
                       for k, v in recipe.items())
    return f"The CNN's recipe for {config.dataset}: {values}"


def _checked(field: "dataclasses.Field[Any]", value: Any) -> Any:
    """`value` as option `field` takes it (see `_option`), or UsageError."""
    meta, flag = field.metadata, option_flag(field.name)
    if value is None:
        if field.default is None:
            return None
        raise UsageError(f"{flag} must be given a value, got null", field.name)
    if meta["nargs"]:
        if not isinstance(value, (list, tuple)):
            raise UsageError(f"{flag} must be a list of {_NOUNS[meta['type']]}s, got "
                             f"{_describe(value)}", field.name)
        return [_checked_item(field, flag, item) for item in value]
    return _checked_item(field, flag, value)


_NOUNS = {int: "integer", float: "number", str: "string", bool: "true or false"}


def _checked_item(field: "dataclasses.Field[Any]", flag: str, value: Any) -> Any:
    meta, kind = field.metadata, field.metadata["type"]
    ok = {bool: isinstance(value, (bool, np.bool_)),
          int: isinstance(value, numbers.Integral) and not isinstance(value, bool),
          float: isinstance(value, numbers.Real) and not isinstance(value, bool),
          str: isinstance(value, str)}[kind]
    if not ok:
        article = "" if kind is bool else "an " if kind is int else "a "
        raise UsageError(f"{flag} must be {article}{_NOUNS[kind]}, got {_describe(value)}",
                         field.name)
    value = kind(value)
    if meta["choices"] is not None:
        choices = list(meta["choices"])
        if value.lower() not in choices:
            raise UsageError(f"{flag} must be one of {', '.join(choices)}; got "
                             f"{_describe(value)}", field.name)
        value = value.lower()
    if meta["rule"] is not None and not meta["rule"](value):
        raise UsageError(f"{flag} must be {meta['must_be']}, got {value}", field.name)
    return value


def _describe(value: Any) -> str:
    """How a value reads in an error: `the string "two"`, `12.5`, `a list`, `null`."""
    if isinstance(value, str):
        return f'the string {json.dumps(value[:40])}{"..." if len(value) > 40 else ""}'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return f"a list ({json.dumps(list(value))[:40]})"
    if isinstance(value, dict):
        return "an object"
    return repr(value)[:40]


def option_flag(name: str) -> str:
    """The command-line flag of option `name`, e.g. `--batch-size` for `batch_size` and
    `--no-plots` for `plots`."""
    flags = {f.name: f.metadata["flag"] for f in dataclasses.fields(TrainConfig)}
    return flags.get(name) or "--" + name.replace("_", "-")


def saved_threads(path: Any) -> Optional[int]:
    """The BLAS thread count the run at `path` (its directory, or a checkpoint in it) was
    trained with, from its config.json: the saved `threads`, or the model's default for
    a run from before that option. None when there is no readable config.json there."""
    from pathlib import Path
    path = Path(path)
    for candidate in (path / "config.json", path.parent / "config.json"):
        if candidate.is_file():
            try:
                values = json.loads(candidate.read_text())
                values.pop("version", None)
                return TrainConfig.from_dict(values, saved=True).threads
            except (OSError, ValueError, TypeError, AttributeError):
                return None
    return None
