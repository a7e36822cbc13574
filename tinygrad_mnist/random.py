"""The default random generator, as PyTorch's: `tg.manual_seed(0)` makes weight
initialisation, dropout masks, `tg.rand`/`tg.randn` and `DataLoader` shuffles
reproducible. Anything that takes `generator=` accepts a `numpy.random.Generator`;
`tg.Generator` is one with PyTorch's seeding methods (`manual_seed` returns it, so
`tg.Generator().manual_seed(42)` works as in PyTorch).
"""
from __future__ import annotations

from typing import Any, Dict, Optional

import numpy as np


class Generator(np.random.Generator):
    """A `numpy.random.Generator` (PCG64) with `manual_seed`, `initial_seed` and
    `get_state`/`set_state`. `device` may only be the CPU."""

    def __init__(self, device: Any = "cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"Generator: device {str(device)!r} is not available; "
                               f"tinygrad_mnist runs on the CPU only")
        super().__init__(np.random.PCG64())
        self._initial_seed: Optional[int] = None

    def manual_seed(self, seed: int) -> "Generator":
        """Reseed in place, as `numpy.random.default_rng(seed)` is seeded; returns self."""
        self.bit_generator.state = np.random.default_rng(int(seed)).bit_generator.state
        self._initial_seed = int(seed)
        return self

    def initial_seed(self) -> Optional[int]:
        """The last seed given to `manual_seed` (None if never seeded)."""
        return self._initial_seed

    def get_state(self) -> Dict[str, Any]:
        return self.bit_generator.state

    def set_state(self, state: Dict[str, Any]) -> "Generator":
        self.bit_generator.state = state
        return self


default_generator = Generator()
"""Used wherever no `generator=` is given."""


def manual_seed(seed: int) -> Generator:
    """Reseed the default generator; returns it (like `torch.manual_seed`)."""
    return default_generator.manual_seed(seed)


def initial_seed() -> Optional[int]:
    return default_generator.initial_seed()


def get_rng_state() -> Dict[str, Any]:
    """The default generator's state (a plain nested dict; storable with `save`)."""
    return default_generator.get_state()


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore a state from `get_rng_state()`."""
    default_generator.set_state(state)


def generator_or_default(generator: Optional[np.random.Generator]) -> np.random.Generator:
    return default_generator if generator is None else generator
