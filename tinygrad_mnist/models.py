"""Ready-made image classifiers (the MLP and CNN the app trains), built from `nn` layers,
and a registry by name. Both take the image shape (C, H, W) and the number of classes
(default: MNIST's 1×28×28 and 10)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from . import nn
from .nn import init

INITS: Dict[str, Callable] = {
    "he": lambda w, g: init.kaiming_normal_(w, nonlinearity="relu", generator=g),
    "xavier": lambda w, g: init.xavier_normal_(w, generator=g),
    "lecun": lambda w, g: init.lecun_normal_(w, generator=g),
    "normal": lambda w, g: init.normal_(w, 0.0, 0.01, generator=g),
}


def initialize(model: nn.Module, scheme: str,
               generator: Optional[np.random.Generator] = None) -> nn.Module:
    """Re-initialise every Linear/Conv2d weight with `scheme` (he, xavier, lecun,
    normal) and its bias with zeros."""
    if scheme not in INITS:
        raise ValueError(f"init must be one of {sorted(INITS)}, got {scheme!r}")
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            INITS[scheme](weight, generator)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
    return model


class MLP(nn.Sequential):
    """in_features (784) → hidden... → num_classes (10) with ReLU, optional dropout after
    each hidden layer. For images of shape (C, H, W), in_features is C·H·W."""

    def __init__(self, hidden: Sequence[int] = (512, 256), dropout: float = 0.0,
                 in_features: int = 784, num_classes: int = 10,
                 generator: Optional[np.random.Generator] = None):
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be positive, got {list(hidden)}")
        layers = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, int(h), generator=generator), nn.ReLU()]
            if dropout:  # masks come from nn.init's default generator (checkpointed)
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, num_classes, generator=generator))
        super().__init__(*layers)


#: The CNN's convolution widths unless told otherwise.
CNN_CHANNELS = (32, 64, 128)


class CNN(nn.Sequential):
    """Convolutional classifier of (N, C, H, W) images (default 1×28×28). For each of
    `channels` (default 32, 64, 128): a 3×3 convolution (padding 1, no bias: batch
    norm's shift replaces it), 2×2 max pooling, batch norm and ReLU, halving the image
    (28 → 14 → 7 → 3); then Flatten and fully connected layers of the `hidden` sizes
    (default [128]; [] for none) with ReLU and optional dropout (as in `MLP`), and a
    Linear to the `num_classes` classes. With the defaults: 28×28×1 → 14×14×32 → 7×7×64
    → 3×3×128 → 1152 → 128 → 10, 241k parameters; on 3×32×32 images the last map is
    4×4×128.

    Pooling comes before batch norm and ReLU: ReLU commutes with max pooling exactly,
    and batch norm nearly (a per-channel affine map, monotone while its scale stays
    positive; only its statistics are taken over the pooled values). So the network
    is nearly conv → BN → ReLU → pool, with its batch norm and ReLU on a quarter of
    the values. No override of `forward`, so the model exports to ONNX.
    """

    def __init__(self, hidden: Optional[Sequence[int]] = None, dropout: float = 0.0,
                 channels: Sequence[int] = CNN_CHANNELS, num_classes: int = 10,
                 generator: Optional[np.random.Generator] = None,
                 image_shape: Sequence[int] = (1, 28, 28)):
        hidden = (128,) if hidden is None else hidden
        if any(int(h) < 1 for h in hidden) or any(int(c) < 1 for c in channels):
            raise ValueError(f"hidden sizes and channels must be positive, got hidden="
                             f"{list(hidden)}, channels={list(channels)}")
        depth, h, w = (int(d) for d in image_shape)
        blocks = max(1, int(np.log2(min(h, w))))  # each block halves the image
        if not 1 <= len(channels) <= blocks:
            raise ValueError(f"CNN: between 1 and {blocks} conv blocks ({h}x{w} halves each "
                             f"time), got channels={list(channels)}")
        layers: list = []
        for c in channels:
            layers += [nn.Conv2d(depth, int(c), 3, padding=1, bias=False, generator=generator),
                       nn.MaxPool2d(2), nn.BatchNorm2d(int(c)), nn.ReLU()]
            depth, h, w = int(c), h // 2, w // 2
        layers.append(nn.Flatten())
        layers += MLP(hidden, dropout, depth * h * w, num_classes, generator)
        super().__init__(*layers)


def build(name: str, image_shape: Sequence[int] = (1, 28, 28), num_classes: int = 10,
          **options: Any) -> nn.Module:
    """The model `name` (mlp or cnn) for images of `image_shape` (C, H, W) and
    `num_classes` classes; `options` are its other arguments (hidden, dropout, ...)."""
    if name == "mlp":
        return MLP(in_features=int(np.prod(image_shape)), num_classes=num_classes, **options)
    return MODELS[name](image_shape=tuple(image_shape), num_classes=num_classes, **options)


MODELS: Dict[str, Callable[..., nn.Module]] = {"mlp": MLP, "cnn": CNN}
#: The model `tinygrad-mnist ensemble-train` trains unless told otherwise.
ENSEMBLE_MODEL = "cnn"
# the input layout each model expects
LAYOUTS: Dict[str, str] = {"mlp": "flat", "cnn": "image"}
#: Training options whose default depends on the model: the training app uses them
#: for the options a run leaves unset. The CNN's `hidden` is its fully connected head.
DEFAULTS: Dict[str, Dict[str, Any]] = {
    "mlp": {"hidden": [512, 256], "epochs": 12, "augment": "none", "threads": 1},
    "cnn": {"hidden": [128], "conv_channels": list(CNN_CHANNELS), "epochs": 12,
            "augment": "affine", "threads": 1},
}


def build_model(config: Any, image_shape: Sequence[int] = (1, 28, 28),
                num_classes: int = 10) -> nn.Module:
    """The model a training configuration describes (its `model`, `hidden`, `dropout`,
    `conv_channels`, `init` and `seed`, as `TrainConfig` has them) for images of
    `image_shape` (C, H, W) and `num_classes` classes, initialised from its seed."""
    generator = np.random.default_rng(config.seed)
    options: Dict[str, Any] = {"hidden": config.hidden, "dropout": config.dropout}
    if config.conv_channels is not None:
        options["channels"] = tuple(config.conv_channels)
    model = build(config.model, tuple(image_shape), num_classes, generator=generator,
                  **options)
    return initialize(model, config.init, generator)
