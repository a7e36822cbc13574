"""Ready-made MNIST classifiers, built from `nn` layers, and a registry by name."""
from __future__ import annotations

from typing import Callable, Dict, Optional, Sequence

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
        if isinstance(module, nn.Linear) or type(module).__name__ == "Conv2d":
            INITS[scheme](weight, generator)
            if getattr(module, "bias", None) is not None:
                init.zeros_(module.bias)
    return model


class MLP(nn.Sequential):
    """784 → hidden... → 10 with ReLU, optional dropout after each hidden layer."""

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


MODELS: Dict[str, Callable[..., nn.Module]] = {"mlp": MLP}
LAYOUTS: Dict[str, str] = {"mlp": "flat"}  # the input layout each model expects
