"""`Optimizer`: parameter groups, the update loop, per-parameter state, and state_dict
save/restore.

A subclass sets its hyperparameter defaults, checks them in `_check_group`, names its
state arrays in `state_arrays` and writes its algorithm as `update`: the update of one
parameter, in place. The base does the rest. For each parameter with a gradient it
checks the gradient's shape, calls `_prepare` (the subclass's per-parameter scalar work:
step counter, bias corrections), creates missing state arrays, and calls `update` on
the parameter, its gradient and its state arrays (the "piece"). `param.grad` is never
modified. Temporaries go to two scratch arrays shared by all
parameters (not part of the state), so a step allocates nothing parameter-sized.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np

from ..autograd import enable_grad
from ..tensor import Tensor

ParamGroup = Dict[str, Any]
Params = Union[Iterable[Tensor], Iterable[ParamGroup]]
State = Dict[str, Any]
Piece = Tuple[Optional[np.ndarray], ...]


def check_range(owner: str, name: str, value: Any, low: float = 0.0,
                high: Optional[float] = None) -> None:
    """Raise a ValueError unless low <= value (< high); NaN fails."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    ok = low <= value and (high is None or value < high)
    if not ok:
        limit = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{owner}: invalid {name} {value!r}: must be {limit}")


def _as_float(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_as_float(v) for v in value)
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        return float(value)
    return value


class Hyperparameters:
    """A param group's hyperparameters for one step, as attributes (`hp.lr`): numbers
    as Python floats, tuples (`betas`) as tuples of floats, the rest (flags) as given.
    `_prepare` adds the scalars of the parameter being updated."""

    def __init__(self, group: ParamGroup, names: Iterable[str]):
        for name in names:
            setattr(self, name, _as_float(group[name]))


class Optimizer:
    """Base class. `params` is an iterable of tensors, or of dicts ("param groups")
    each with "params" and optional per-group hyperparameters overriding `defaults`."""

    state_arrays: Dict[str, Optional[str]] = {}
    """The state arrays `update` takes, in its order: name -> the hyperparameter that
    must be nonzero for the array to be used (None: always). An unused one is None."""

    def __init__(self, params: Params, defaults: Dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: Dict[Tensor, State] = {}
        self.param_groups: List[ParamGroup] = []
        # parameter -> (its data array when the views were made, (tmp, g_buf) views)
        self._scratches: Dict[Tensor, Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]] = {}
        self._pools: Dict[np.dtype, List[np.ndarray]] = {}
        # id(group) -> (its hyperparameter values, Hyperparameters, state array names)
        self._settings: Dict[int, Tuple[Any, Hyperparameters, List[Optional[str]]]] = {}
        self._values = operator.itemgetter(*self.defaults)
        if isinstance(params, Tensor) or isinstance(params, dict):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors "
                            f"or of dicts, got a {type(params).__name__}")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def _check_group(self, group: ParamGroup) -> None:
        """Validate a group's hyperparameters (subclasses extend this)."""
        check_range(type(self).__name__, "learning rate", group["lr"])

    def add_param_group(self, param_group: ParamGroup) -> None:
        """Add a group of parameters, with hyperparameters defaulting to `defaults`."""
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: a param group must be a dict with a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name} can only optimize Tensors, got a "
                                f"{type(p).__name__}")
            if not p.requires_grad or not p.is_leaf:
                raise ValueError(f"{name} can only optimize leaf tensors that require "
                                 f"grad; got one of shape {p.shape} that "
                                 + ("does not require grad" if not p.requires_grad
                                    else "is computed from others (not a leaf)"))
        ids = [id(p) for p in params]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: a parameter appears twice in one param group")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if taken & set(ids):
            raise ValueError(f"{name}: some parameters appear in more than one param group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        self.param_groups.append(group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: drop them (default), or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update every parameter that has a gradient; `closure` (optional) recomputes
        and returns the loss first."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        return loss

    def update(self, hp: Hyperparameters, piece: Piece, g_buf: np.ndarray,
               tmp: np.ndarray) -> None:
        """Update one parameter in place. `piece` holds θ, its gradient (read only) and
        the state arrays named in `state_arrays`;
        `g_buf` and `tmp` are scratch arrays shaped alike: `g_buf` for g + weight_decay·θ,
        `tmp` for the formula's other temporaries."""
        raise NotImplementedError

    def _prepare(self, hp: Hyperparameters, state: State, theta: np.ndarray) -> None:
        """Per-parameter scalar work before `update` sees the parameter (e.g.
        the step counter), stored in `state` or on `hp`. Runs before missing state
        arrays are created."""

    def _new_state_array(self, name: str, p: Tensor, group: ParamGroup) -> np.ndarray:
        """The initial value of state array `name`: zeros (subclasses may differ)."""
        return np.zeros_like(p.data)

    def _settings_of(self, group: ParamGroup
                     ) -> Tuple[Hyperparameters, List[Optional[str]]]:
        """`group`'s Hyperparameters and the names of the state arrays they use (None
        for an unused one), made again only when a hyperparameter has changed."""
        values = self._values(group)
        settings = self._settings.get(id(group))
        if settings is None or settings[0] != values:
            hp = Hyperparameters(group, self.defaults)
            names = [name if needed is None or getattr(hp, needed) else None
                     for name, needed in self.state_arrays.items()]
            settings = self._settings[id(group)] = (values, hp, names)
        return settings[1], settings[2]

    def _step_group(self, group: ParamGroup) -> None:
        hp, names = self._settings_of(group)
        update = self.update
        for p in group["params"]:
            theta, grad = p.data, p.grad
            if grad is None:
                continue
            grad = grad.data
            if grad.shape != theta.shape:
                raise ValueError(f"{type(self).__name__}.step: a parameter of shape "
                                 f"{theta.shape} has a gradient of shape {grad.shape}")
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = {}
            self._prepare(hp, state, theta)
            arrays = []
            for name in names:
                array = None
                if name is not None:
                    array = state.get(name)
                    if array is None:
                        array = state[name] = self._new_state_array(name, p, group)
                arrays.append(array)
            tmp, g_buf = self._scratch(p)
            update(hp, (theta, grad, *arrays), g_buf, tmp)

    def _scratch(self, p: Tensor) -> Tuple[np.ndarray, np.ndarray]:
        """Two temporaries shaped like `p`: views into flat buffers shared by every
        parameter, since one parameter's update is done before the next one starts (the
        buffers are as big as the largest parameter, allocated once)."""
        data, views = self._scratches.get(p, (None, None))
        if data is not p.data:  # new, or its data was replaced
            data = p.data
            views = tuple(buffer[:data.size].reshape(data.shape)
                          for buffer in self._pool(data.dtype, data.size))
            self._scratches[p] = (data, views)
        return views

    def _pool(self, dtype: np.dtype, size: int) -> List[np.ndarray]:
        """The two flat scratch buffers of `dtype` (for `tmp` and `g_buf`), with room for
        `size` elements: sized for the largest parameter of that dtype in any group."""
        pool = self._pools.get(dtype)
        if pool is None or len(pool[0]) < size:
            largest = max([p.data.size for g in self.param_groups for p in g["params"]
                           if p.data.dtype == dtype] + [size])
            pool = self._pools[dtype] = [np.empty(largest, dtype), np.empty(largest, dtype)]
            self._scratches.clear()  # views into the old buffers must not be reused
        return pool

    # --------------------------------------------------------------------- state
    def state_dict(self) -> Dict[str, Any]:
        """{"state": {param index: {name: array copy or number}}, "param_groups":
        [{hyperparameters..., "params": [param indices]}]}, indices counting the
        parameters of all groups in order (as in PyTorch)."""
        index: Dict[Tensor, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(p, len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[p]: {k: (v.copy() if isinstance(v, np.ndarray) else v)
                            for k, v in s.items()}
                 for p, s in self.state.items() if p in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore hyperparameters and state from `state_dict()`. Everything is checked
        before anything changes: on a mismatch (group or parameter counts, unknown
        indices, array shapes, bad hyperparameters) a ValueError says what, and the
        optimizer is left as it was. Lists saved from tuples (e.g. `betas`) become
        tuples again."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with exactly "
                             f"'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)):
            raise ValueError(f"{name}.load_state_dict: 'param_groups' must be a list")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(saved_groups)} "
                             f"param groups, the optimizer {len(self.param_groups)}")
        by_index: Dict[int, Tensor] = {}
        new_groups = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if not isinstance(saved, dict) or len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(f"{name}.load_state_dict: param group {i} has "
                                 f"{len(group['params'])} parameters here but a different "
                                 f"number (or none) in the state")
            missing = set(self.defaults) - set(saved)
            if missing:
                raise ValueError(f"{name}.load_state_dict: param group {i} lacks "
                                 f"hyperparameter(s) {sorted(missing)}")
            new = {k: (tuple(v) if isinstance(group.get(k), tuple) and isinstance(v, list)
                       else v) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            self._check_group(new)
            new_groups.append(new)
            for index, p in zip(saved["params"], group["params"]):
                by_index[int(index)] = p
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise ValueError(f"{name}.load_state_dict: 'state' must be a dict")
        new_state: Dict[Tensor, Dict[str, Any]] = {}
        for index, entry in saved_state.items():
            p = by_index.get(int(index)) if str(index).isdigit() else None
            if p is None:
                raise ValueError(f"{name}.load_state_dict: state for unknown parameter "
                                 f"index {index!r}")
            if not isinstance(entry, dict):
                raise ValueError(f"{name}.load_state_dict: state of parameter {index} "
                                 f"must be a dict")
            new_state[p] = {k: self._restore(name, index, k, v, p) for k, v in entry.items()}
        self.param_groups[:] = new_groups
        self.state = new_state

    @staticmethod
    def _restore(name: str, index: Any, key: str, value: Any, p: Tensor) -> Any:
        if isinstance(value, (bool, int, float)) or value is None:
            return value
        if isinstance(value, np.generic):
            return value.item()
        value = np.asarray(value)
        if value.shape != p.shape or value.dtype.kind not in "fiub":
            raise ValueError(f"{name}.load_state_dict: state {key!r} of parameter {index} "
                             f"has shape {value.shape} and dtype {value.dtype}; the "
                             f"parameter has shape {p.shape}")
        return np.array(value, dtype=p.dtype if value.dtype.kind == "f" else value.dtype)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines + [")"])
