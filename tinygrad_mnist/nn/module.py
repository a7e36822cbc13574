"""`Module`, the base of every layer and model, and `Parameter`, a trainable tensor.

A module registers the `Parameter`s, sub-`Module`s and buffers assigned to it as
attributes, in assignment order. They are also kept as ordinary instance
attributes, so reading `self.weight` in `forward` costs a plain attribute lookup.
"""
from __future__ import annotations

from typing import (Any, Callable, Dict, Iterator, List, Mapping, NamedTuple, Optional,
                    Set, Tuple)

import numpy as np

from ..autograd import RemovableHandle
from ..device import check_device, device as _Device
from ..dtypes import as_dtype
from ..tensor import Tensor, as_tensor


class Parameter(Tensor):
    """A tensor that a `Module` registers as trainable (`requires_grad=True` by default)."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What `load_state_dict(strict=False)` skipped."""
    missing_keys: List[str]
    unexpected_keys: List[str]


class StateDictError(RuntimeError):
    """A state dict does not fit the module; nothing was loaded."""

    def __init__(self, module: str, missing: List[str], unexpected: List[str],
                 mismatched: List[str]):
        self.missing_keys, self.unexpected_keys, self.mismatched = missing, unexpected, mismatched
        lines = [f"error(s) loading state_dict for {module}; nothing was loaded:"]
        if missing:
            lines.append("  missing key(s): " + ", ".join(missing))
        if unexpected:
            lines.append("  unexpected key(s): " + ", ".join(unexpected))
        lines += ["  " + m for m in mismatched]
        super().__init__("\n".join(lines))


def _as_array(value: Any) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


class Module:
    """Base class for layers and models: subclass it, assign parameters and layers in
    `__init__` (after `super().__init__()`), and define `forward`."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_forward_pre_hooks", {})
        object.__setattr__(self, "_forward_hooks", {})
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], np.ndarray):  # model(array) works too
            args = (as_tensor(args[0]),) + args[1:]
        if not (self._forward_hooks or self._forward_pre_hooks):  # has_hooks(), inlined
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            changed = hook(self, args)                 # may return new inputs
            if changed is not None:
                args = changed if isinstance(changed, tuple) else (changed,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            changed = hook(self, args, output)         # may return a new output
            if changed is not None:
                output = changed
        return output

    # ------------------------------------------------------------------------ hooks
    def register_forward_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call `hook(module, inputs, output)` after each forward (a value it returns
        replaces the output), e.g. to look at a layer's activations."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_forward_pre_hook(self, hook: Callable[..., Any]) -> RemovableHandle:
        """Call `hook(module, inputs)` before each forward (a value it returns replaces
        the inputs)."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def has_hooks(self) -> bool:
        """Whether a forward hook or pre-hook is registered on this module."""
        return bool(self._forward_hooks or self._forward_pre_hooks)

    # ---------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            if isinstance(value, (Parameter, Module)):
                raise AttributeError(f"cannot assign {name!r} before Module.__init__(); "
                                     f"call super().__init__() first")
            object.__setattr__(self, name, value)
            return
        modules, buffers = self._modules, self._buffers
        if isinstance(value, Parameter):
            self._forget(name, keep=params)
            params[name] = value
        elif isinstance(value, Module):
            self._forget(name, keep=modules)
            modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to parameter "
                                f"{name!r}: expected a Parameter or None")
            params[name] = None
        elif name in modules:
            if value is not None:
                raise TypeError(f"cannot assign a {type(value).__name__} to sub-module "
                                f"{name!r}: expected a Module or None")
            modules[name] = None
        elif name in buffers:
            if value is not None:
                value = _as_array(value)
            buffers[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._forget(name)
        object.__delattr__(self, name)

    def _forget(self, name: str, keep: Optional[Dict[str, Any]] = None) -> None:
        """Drop `name` from every registry but `keep` (where re-assignment keeps the
        original position)."""
        for registry in (self._parameters, self._modules, self._buffers):
            if registry is not keep:
                registry.pop(name, None)
        if keep is not self._buffers:
            self._non_persistent.discard(name)

    def _check_name(self, kind: str, name: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")
        if hasattr(self, name) and name not in self._parameters and name not in \
                self._buffers and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")

    def _register(self, registry: Dict[str, Any], kind: str, cls: type, name: str,
                  value: Any) -> None:
        self._check_name(kind, name)
        if value is not None and not isinstance(value, cls):
            raise TypeError(f"{kind} {name!r} must be a {cls.__name__} or None, "
                            f"got {type(value).__name__}")
        self._forget(name, keep=registry)
        registry[name] = value
        object.__setattr__(self, name, value)

    def register_parameter(self, name: str, param: Optional[Parameter]) -> None:
        """Register `param` (a Parameter, or None for an absent one) as `name`."""
        self._register(self._parameters, "parameter", Parameter, name, param)

    def add_module(self, name: str, module: Optional["Module"]) -> None:
        """Register `module` (or None) as the sub-module `name`."""
        self._register(self._modules, "module", Module, name, module)

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """Register non-trained state (e.g. running means): an array, or None. Persistent
        buffers are part of `state_dict()`."""
        self._check_name("buffer", name)
        self._forget(name, keep=self._buffers)
        self._buffers[name] = None if value is None else _as_array(value)
        if persistent:
            self._non_persistent.discard(name)
        else:
            self._non_persistent.add(name)
        object.__setattr__(self, name, self._buffers[name])

    # ------------------------------------------------------------------- traversal
    def named_modules(self, memo: Optional[Set[int]] = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, "Module"]]:
        """This module and every module below it, with dotted names; a module reached
        twice comes once unless `remove_duplicate=False`. (`memo` holds the ids of the
        modules already seen.)"""
        seen = set() if memo is None else memo
        if id(self) in seen and remove_duplicate:
            return
        seen.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(seen, f"{prefix}.{name}" if prefix else name,
                                                remove_duplicate)

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[Tuple[str, "Module"]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str = "", recurse: bool = True,
                       remove_duplicate: bool = True) -> Iterator[Tuple[str, Any]]:
        seen: Set[int] = set()
        modules = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for path, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{path}.{name}" if path else name), value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[Tuple[str, Parameter]]:
        """(dotted name, parameter) pairs; a parameter shared by two layers comes once.
        `recurse=False`: this module's own parameters only."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self._named_members("_parameters", recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[Tuple[str, np.ndarray]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, buffer in self._named_members("_buffers", recurse=recurse):
            yield buffer

    def num_parameters(self, trainable_only: bool = False) -> int:
        """The number of parameter elements (shared parameters counted once)."""
        return sum(p.data.size for p in self.parameters()
                   if p.requires_grad or not trainable_only)

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call `fn` on every sub-module (children first), then on this module."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # --------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> "Module":
        """Set training mode (dropout active, batch statistics) here and below."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Set evaluation mode: `train(False)`."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: drop them (default), or fill them with zeros."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    # ------------------------------------------------------------ dtype, device
    def to(self, *args: Any, dtype: Any = None, device: Any = None,
           non_blocking: bool = False) -> "Module":
        """Cast the floating-point parameters and buffers to `dtype` in place, and check
        that `device` is the CPU (the only one); both may be given in any order
        (`model.to("cpu")`, `model.to(tg.float64)`). Returns the module."""
        for arg in args:
            if isinstance(arg, (str, _Device)):
                device = arg
            else:
                dtype = arg
        if device is not None:
            check_device(device, f"{type(self).__name__}.to")
        if dtype is not None:
            self._cast(as_dtype(dtype))
        return self

    def _cast(self, dtype: np.dtype) -> None:
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes are "
                            f"allowed for a module, got {dtype}")
        for module in self.modules():
            for p in module._parameters.values():
                if p is not None and p.data.dtype.kind == "f":
                    p.data = p.data.astype(dtype)
                    p.grad = None if p.grad is None else p.grad.to(dtype)
            for name, b in module._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    setattr(module, name, b.astype(dtype))

    def cpu(self) -> "Module":
        return self

    def cuda(self, device: Any = None) -> "Module":
        check_device("cuda", f"{type(self).__name__}.cuda")
        return self

    def float(self) -> "Module":
        return self.to(np.float32)

    def double(self) -> "Module":
        return self.to(np.float64)

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Freeze (False) or unfreeze every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # --------------------------------------------------------------------- state
    def _state_items(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        """Every persistent parameter and buffer array, under every name it has."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, p.data
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent:
                yield prefix + name, b
        for name, module in self._modules.items():
            if module is not None:
                yield from module._state_items(f"{prefix}{name}.")

    def state_dict(self) -> Dict[str, np.ndarray]:
        """name → a copy of every parameter and persistent buffer array."""
        return {name: array.copy() for name, array in self._state_items()}

    def load_state_dict(self, state_dict: Mapping[str, Any],
                        strict: bool = True) -> IncompatibleKeys:
        """Copy the arrays of `state_dict` into the parameters and buffers in place.

        Everything is checked first; on any problem (with `strict`, a missing or an
        unexpected key; always, a shape or type mismatch) a `StateDictError` lists
        all of them and nothing is changed."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        targets = list(self._state_items())
        names = {name for name, _ in targets}
        missing = [name for name, _ in targets if name not in state_dict]
        unexpected = [key for key in state_dict if key not in names]
        mismatched, copies = [], []
        for name, target in targets:
            if name not in state_dict:
                continue
            value = _as_array(state_dict[name])
            if value.shape != target.shape:
                mismatched.append(f"{name}: shape {value.shape} in the state dict, "
                                  f"{target.shape} in the model")
            elif not np.can_cast(value.dtype, target.dtype, "same_kind"):
                mismatched.append(f"{name}: dtype {value.dtype} in the state dict cannot "
                                  f"be stored as {target.dtype}")
            else:
                copies.append((target, value))
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(type(self).__name__, missing if strict else [],
                                 unexpected if strict else [], mismatched)
        for target, value in copies:
            np.copyto(target, value, casting="same_kind")
        return IncompatibleKeys(missing, unexpected)

    # ---------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        """The text inside this module's parentheses in `repr` (layers override it)."""
        return ""

    def __repr__(self) -> str:
        lines = []
        extra = self.extra_repr()
        if extra:
            lines += extra.split("\n")
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {body}")
        name = type(self).__name__
        if not self._modules and len(lines) <= 1:
            return f"{name}({extra})"
        return name + "(\n  " + "\n  ".join(lines) + "\n)"
