"""Devices: everything runs on the CPU. `tg.device("cpu")` and `.to("cpu")` work, so
code written for PyTorch's devices runs unchanged; asking for another device (CUDA, MPS)
raises a RuntimeError that says so. `tg.cuda.is_available()`,
`tg.backends.mps.is_available()` and `tg.accelerator.is_available()` answer False.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional, Union


class device:
    """A device name, as `torch.device`: `device("cpu")`, `device("cuda", 0)` or
    `device("cuda:0")`. Any name can be made; only the CPU can be used."""

    def __init__(self, type: Union[str, "device"], index: Optional[int] = None):
        if isinstance(type, device):
            type, index = type.type, type.index if index is None else index
        if not isinstance(type, str) or not type:
            raise TypeError(f"device: expected a device name such as 'cpu', got {type!r}")
        name, _, number = type.partition(":")
        self.type = name
        self.index = int(number) if number else index

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, device) and (self.type, self.index) == (other.type,
                                                                          other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type={self.type!r}{index})"


CPU = device("cpu")


def check_device(where: Any, op: str) -> device:
    """`where` (a name or a `device`) as a device if it is the CPU, else a RuntimeError."""
    dev = device(where)
    if dev.type != "cpu":
        raise RuntimeError(f"{op}: device {str(dev)!r} is not available: tinygrad_mnist "
                           f"computes with NumPy on the CPU only; use 'cpu'")
    return dev


def _false(*args: Any, **kwargs: Any) -> bool:
    return False


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


cuda = SimpleNamespace(is_available=_false, device_count=lambda: 0, manual_seed=_nothing,
                       manual_seed_all=_nothing, empty_cache=_nothing,
                       synchronize=_nothing)
"""`tg.cuda`: no CUDA here; seeding and cache calls do nothing."""

backends = SimpleNamespace(mps=SimpleNamespace(is_available=_false, is_built=_false),
                           cudnn=SimpleNamespace(deterministic=False, benchmark=False,
                                                 enabled=False, is_available=_false))
"""`tg.backends`: no MPS and no cuDNN; their flags may be set and change nothing."""

accelerator = SimpleNamespace(is_available=_false, current_accelerator=_nothing,
                              device_count=lambda: 0)
"""`tg.accelerator`: no accelerator."""
