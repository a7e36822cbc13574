"""Containers of modules: `Sequential` (a pipeline) and `ModuleList` (a registered list)."""
from __future__ import annotations

from typing import Any, Iterable, Iterator, List, Mapping, Optional, Union

from .module import Module


class _Indexed(Module):
    """Sub-modules addressed by position: `len`, iteration, indexing and slicing."""

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _key(self, index: int) -> str:
        n = len(self._modules)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"{type(self).__name__} indices must be integers or slices, "
                            f"not {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"index {index} is out of range for a {type(self).__name__} "
                             f"of length {n}")
        return list(self._modules)[index % n]

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):  # a plain container (subclasses may take other arguments)
            container = Sequential if isinstance(self, Sequential) else ModuleList
            return container(list(self._modules.values())[index])
        return self._modules[self._key(index)]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(self._key(index), _checked(module, type(self).__name__))

    def append(self, module: Module) -> "_Indexed":
        """Add `module` at the end."""
        self.add_module(str(len(self)), _checked(module, type(self).__name__))
        return self


def _checked(module: Any, container: str) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"{container} holds Modules, got {type(module).__name__}")
    return module


class Sequential(_Indexed):
    """Modules applied in order: `Sequential(Linear(784, 128), ReLU(), Linear(128, 10))`,
    or from a mapping of names to modules. Indexable (`seq[0]`, `seq[-1]`, `seq[1:]`)."""

    def __init__(self, *modules: Any):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], Mapping):
            for name, module in modules[0].items():
                self.add_module(name, _checked(module, "Sequential"))
            return
        if len(modules) == 1 and isinstance(modules[0], list):  # from slicing
            modules = tuple(modules[0])
        for i, module in enumerate(modules):
            self.add_module(str(i), _checked(module, "Sequential"))

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(_Indexed):
    """A list of modules whose parameters are registered (a plain Python list would
    hide them from `parameters()`); index, iterate, `append`, `extend`, `insert`, `del`."""

    def __init__(self, modules: Optional[Iterable[Module]] = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, _checked(module, "ModuleList"))
        self._renumber(items)

    def __delitem__(self, index: Union[int, slice]) -> None:
        items: List[Module] = list(self._modules.values())
        if not isinstance(index, slice):
            self._key(index)  # range and type check
        del items[index]
        self._renumber(items)

    def _renumber(self, items: List[Module]) -> None:
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(items):
            self.add_module(str(i), module)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList has no forward(); iterate over it instead")
