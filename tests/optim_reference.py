"""The optimizers as they were before the per-piece `update` refactor, kept as a
regression guard: a verbatim, self-contained copy of `tinygrad_mnist/optim/`
`optimizer.py`, `sgd.py`, `adam.py`, `rmsprop.py` and `adagrad.py` as last changed by
commit 5893520 (only the imports differ: `Tensor` and `enable_grad` come from the
package). `test_optim_formulas.py` checks that today's optimizers give bitwise these
parameters and states.
"""
from __future__ import annotations

import functools
import math
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np

from tinygrad_mnist.autograd import enable_grad
from tinygrad_mnist.tensor import Tensor

ParamGroup = Dict[str, Any]
Params = Union[Iterable[Tensor], Iterable[ParamGroup]]

BLOCK, BLOCKED_ABOVE = 1 << 15, 1 << 17
"""A parameter of more than BLOCKED_ABOVE elements (512 KiB of float32) is updated in
pieces of BLOCK elements (128 KiB); a smaller one, whole."""


def flat_pieces(*arrays: Optional[np.ndarray]) -> List[Tuple[Any, ...]]:
    """Matching flat pieces of BLOCK elements of same-sized arrays (a None stays None);
    the whole arrays as the one piece if they have at most BLOCKED_ABOVE elements or
    are not all contiguous (a piece must be a view)."""
    size = arrays[0].size
    if size <= BLOCKED_ABOVE or not all(a is None or a.flags.c_contiguous for a in arrays):
        return [arrays]
    flat = [a if a is None else a.reshape(-1) for a in arrays]
    return [tuple(f if f is None else f[i:i + BLOCK] for f in flat)
            for i in range(0, size, BLOCK)]


def check_range(owner: str, name: str, value: Any, low: float = 0.0,
                high: Optional[float] = None) -> None:
    """Raise a ValueError unless low <= value (< high); NaN fails."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    ok = low <= value and (high is None or value < high)
    if not ok:
        limit = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{owner}: invalid {name} {value!r}: must be {limit}")


@functools.lru_cache(maxsize=256)
def scalar(value: float, dtype: np.dtype) -> np.ndarray:
    """`value` as a read-only 0-d array of `dtype`. NumPy combines an array with one about
    twice as fast as with a Python float (~0.5 µs saved per call on small parameters)
    and rounds the same way: the float is cast to `dtype` either way."""
    out = np.array(value, dtype=dtype)
    out.flags.writeable = False
    return out


def with_weight_decay(grad: np.ndarray, theta: np.ndarray, weight_decay: float,
                      out: np.ndarray) -> np.ndarray:
    """grad + weight_decay·θ computed into `out` (`grad` itself if weight_decay is 0):
    L2 regularisation coupled to the gradient, which stays untouched."""
    if not weight_decay:
        return grad
    np.multiply(theta, weight_decay, out=out)
    out += grad
    return out


class Optimizer:
    """Base class. `params` is an iterable of tensors, or of dicts ("param groups")
    each with "params" and optional per-group hyperparameters overriding `defaults`."""

    def __init__(self, params: Params, defaults: Dict[str, Any]):
        self.defaults = dict(defaults)
        self.state: Dict[Tensor, Dict[str, Any]] = {}
        self.param_groups: List[ParamGroup] = []
        # parameter -> (its data array when the views were made, (view, view))
        self._scratches: Dict[Tensor, Tuple[np.ndarray, Tuple[np.ndarray, np.ndarray]]] = {}
        self._pools: Dict[np.dtype, List[np.ndarray]] = {}
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
            self._update_group(group)
        return loss

    def _update_group(self, group: ParamGroup) -> None:
        raise NotImplementedError

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {}

    def _with_grads(self, group: ParamGroup) -> Iterator[Tuple[Tensor, np.ndarray,
                                                               Dict[str, Any]]]:
        """(parameter, gradient, state) for each parameter of `group` with a gradient;
        the state is created by `_initial_state` the first time."""
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}.step: a parameter of shape "
                                 f"{p.data.shape} has a gradient of shape {p.grad.shape}")
            state = self.state.get(p)
            if state is None:
                state = self.state[p] = self._initial_state(p, group)
            yield p, p.grad.data, state

    def _blocks(self, p: Tensor, *arrays: Optional[np.ndarray],
                second: bool = False) -> Sequence[Tuple[Any, ...]]:
        """What an update of `p` works on, in matching pieces: tuples (θ, *arrays, a, b)
        with a and b scratch arrays (the same one unless `second`); a None in `arrays`
        stays None. A parameter of up to BLOCKED_ABOVE elements is one piece, the whole
        arrays; a larger one (stored contiguously, as parameters are) is cut into flat
        pieces of BLOCK elements. An update makes 4 to 12 passes over 4 to 7 arrays:
        piece by piece, every pass finds its pieces still in the CPU's L2 cache, where
        the whole arrays of a large weight would stream through memory once per pass
        (updating a 784-512-256-10 MLP with a 2 MB L2 cache per core: SGD with
        momentum 20 %, Adam 25 % faster)."""
        pieces = flat_pieces(p.data, *arrays)
        if len(pieces) == 1:
            return ((*pieces[0], *self._scratch(p, second)),)
        pool = self._pool(p.data.dtype, BLOCK, 2 if second else 1)
        a, b = pool[0], pool[1 if second else 0]
        return [(*piece, a[:piece[0].size], b[:piece[0].size]) for piece in pieces]

    def _scratch(self, p: Tensor, second: bool) -> Tuple[np.ndarray, np.ndarray]:
        """Two temporaries shaped like `p`, or (when `second` is false) the same one
        twice. They are views into flat buffers shared by every parameter, since one
        parameter's update is done before the next one starts: the buffers are as big
        as the largest parameter, allocated once, not one per parameter."""
        data, views = self._scratches.get(p, (None, None))
        if data is not p.data or (second and views[0] is views[1]):  # new, or data replaced
            data = p.data
            pool = self._pool(data.dtype, data.size, 2 if second else 1)
            a = pool[0][:data.size].reshape(data.shape)
            b = pool[1][:data.size].reshape(data.shape) if second else a
            views = (a, b)
            self._scratches[p] = (data, views)
        return views

    def _pool(self, dtype: np.dtype, size: int, count: int) -> List[np.ndarray]:
        """At least `count` flat buffers of `dtype` with room for `size` elements, sized
        for the largest parameter of that dtype in any group that is updated whole."""
        pool = self._pools.get(dtype, [])
        if len(pool) < count or len(pool[0]) < size:
            largest = max([p.data.size if p.data.size <= BLOCKED_ABOVE else BLOCK
                           for g in self.param_groups for p in g["params"]
                           if p.data.dtype == dtype] + [size])
            pool = self._pools[dtype] = [np.empty(largest, dtype)
                                         for _ in range(max(count, len(pool)))]
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


# ---------------------------------------- HEAD:tinygrad_mnist/optim/sgd.py
class SGD(Optimizer):
    """PyTorch's SGD. Per step, with g the gradient:

        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        b ← g at the first step, else momentum·b + (1 - dampening)·g
        g ← g + momentum·b if nesterov else b         (if momentum ≠ 0)
        θ ← θ - lr·g
    """

    def __init__(self, params: Params, lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        check_range("SGD", "momentum", group["momentum"])
        check_range("SGD", "dampening", group["dampening"])
        check_range("SGD", "weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum > 0 and zero "
                             "dampening")

    def _update_group(self, group: ParamGroup) -> None:
        lr, momentum = float(group["lr"]), float(group["momentum"])
        dampening, weight_decay = float(group["dampening"]), float(group["weight_decay"])
        nesterov = group["nesterov"]
        extra = bool(momentum and (dampening or nesterov))
        for p, grad, state in self._with_grads(group):
            m, step_size = scalar(momentum, p.data.dtype), scalar(lr, p.data.dtype)
            whole_buf, first = None, False
            if momentum:
                whole_buf = state.get("momentum_buffer")
                first = whole_buf is None
                if first:
                    whole_buf = state["momentum_buffer"] = np.empty_like(p.data)
            for theta, g, buf, a, b in self._blocks(p, grad, whole_buf, second=extra):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                step = g
                if momentum:
                    if first:                              # b ← g at the first step
                        np.copyto(buf, g)
                    else:
                        buf *= m
                        buf += np.multiply(g, 1.0 - dampening, out=b) if dampening else g
                    if nesterov:
                        step = np.multiply(buf, momentum, out=b)
                        step += g
                    else:
                        step = buf
                if step is a or step is b:
                    step *= step_size
                else:  # the gradient or the momentum buffer: scale into a free scratch array
                    step = np.multiply(step, step_size, out=a)
                theta -= step


# ---------------------------------------- HEAD:tinygrad_mnist/optim/adam.py
class Adam(Optimizer):
    """PyTorch's Adam. Per step t = 1, 2, ..., with g the gradient:

        g ← g + weight_decay·θ                        (Adam, if weight_decay ≠ 0)
        θ ← θ·(1 - lr·weight_decay)                   (AdamW instead)
        m ← β1·m + (1 - β1)·g;   v ← β2·v + (1 - β2)·g²
        v_max ← max(v_max, v), used in place of v     (if amsgrad)
        θ ← θ - lr/(1 - β1^t) · m / (√v/√(1 - β2^t) + eps)

    m, v and v_max start at zero; the maximum is taken before bias correction, as
    PyTorch does (and now documents).
    """

    decoupled_weight_decay = False

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_group(self, group: ParamGroup) -> None:
        name = type(self).__name__
        super()._check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        check_range(name, "beta1", betas[0], 0.0, 1.0)
        check_range(name, "beta2", betas[1], 0.0, 1.0)
        check_range(name, "eps", group["eps"])
        check_range(name, "weight_decay", group["weight_decay"])

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "exp_avg": np.zeros_like(p.data),
                "exp_avg_sq": np.zeros_like(p.data)}

    def _update_group(self, group: ParamGroup) -> None:
        lr, eps = float(group["lr"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        beta1, beta2 = (float(b) for b in group["betas"])
        amsgrad, decoupled = group["amsgrad"], self.decoupled_weight_decay
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            t = state["step"]
            whole_max = None
            if amsgrad:
                whole_max = state.get("max_exp_avg_sq")
                if whole_max is None:
                    whole_max = state["max_exp_avg_sq"] = np.zeros_like(p.data)
            for theta, g, exp_avg, exp_avg_sq, max_exp_avg_sq, b, a in self._blocks(
                    p, grad, state["exp_avg"], state["exp_avg_sq"], whole_max,
                    second=bool(weight_decay) and not decoupled):
                if decoupled:
                    if weight_decay:
                        theta *= 1.0 - lr * weight_decay
                else:
                    g = with_weight_decay(g, theta, weight_decay, out=a)
                exp_avg *= beta1
                exp_avg += np.multiply(g, 1.0 - beta1, out=b)
                exp_avg_sq *= beta2
                exp_avg_sq += np.multiply(np.multiply(g, g, out=b), 1.0 - beta2, out=b)
                second = exp_avg_sq
                if amsgrad:
                    second = np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
                denom = np.sqrt(second, out=b)
                denom /= math.sqrt(1.0 - beta2 ** t)
                denom += eps
                step = np.divide(exp_avg, denom, out=b)
                step *= lr / (1.0 - beta1 ** t)
                theta -= step


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ·(1 - lr·weight_decay) before the Adam
    step, which then sees the plain gradient (see `Adam`)."""

    decoupled_weight_decay = True

    def __init__(self, params: Params, lr: float = 1e-3,
                 betas: Tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ---------------------------------------- HEAD:tinygrad_mnist/optim/rmsprop.py
class RMSprop(Optimizer):
    """PyTorch's RMSprop. Per step, with g the gradient:

        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        v ← alpha·v + (1 - alpha)·g²
        ṽ ← v - ḡ², with ḡ ← alpha·ḡ + (1 - alpha)·g  (if centered; else ṽ = v)
        b ← momentum·b + g/(√ṽ + eps);  θ ← θ - lr·b   (if momentum > 0)
        θ ← θ - lr·g/(√ṽ + eps)                        (otherwise)

    v, ḡ and b start at zero.
    """

    def __init__(self, params: Params, lr: float = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        for key in ("alpha", "eps", "weight_decay", "momentum"):
            check_range("RMSprop", key, group[key])

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "square_avg": np.zeros_like(p.data)}

    def _update_group(self, group: ParamGroup) -> None:
        lr, alpha, eps = float(group["lr"]), float(group["alpha"]), float(group["eps"])
        weight_decay, momentum = float(group["weight_decay"]), float(group["momentum"])
        centered = group["centered"]
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            whole_avg = _buffer(state, "grad_avg", p.data) if centered else None
            whole_buf = _buffer(state, "momentum_buffer", p.data) if momentum > 0 else None
            for theta, g, square_avg, grad_avg, buf, b, a in self._blocks(
                    p, grad, state["square_avg"], whole_avg, whole_buf,
                    second=bool(weight_decay)):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                square_avg *= alpha
                square_avg += np.multiply(np.multiply(g, g, out=b), 1.0 - alpha, out=b)
                if centered:
                    grad_avg *= alpha
                    grad_avg += np.multiply(g, 1.0 - alpha, out=b)
                    avg = np.subtract(square_avg, np.multiply(grad_avg, grad_avg, out=b), out=b)
                    np.sqrt(avg, out=avg)
                else:
                    avg = np.sqrt(square_avg, out=b)
                avg += eps
                if momentum > 0:
                    buf *= momentum
                    buf += np.divide(g, avg, out=avg)
                    theta -= np.multiply(buf, lr, out=b)
                else:
                    step = np.divide(g, avg, out=avg)
                    step *= lr
                    theta -= step


def _buffer(state: dict, key: str, like: np.ndarray) -> np.ndarray:
    """state[key], created as zeros the first time it is needed."""
    buf = state.get(key)
    if buf is None:
        buf = state[key] = np.zeros_like(like)
    return buf


# ---------------------------------------- HEAD:tinygrad_mnist/optim/adagrad.py
class Adagrad(Optimizer):
    """PyTorch's Adagrad. Per step t = 1, 2, ..., with g the gradient:

        lr_t ← lr / (1 + (t - 1)·lr_decay)
        g ← g + weight_decay·θ                        (if weight_decay ≠ 0)
        s ← s + g²                                    (s starts at initial_accumulator_value)
        θ ← θ - lr_t·g/(√s + eps)
    """

    def __init__(self, params: Params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps))

    def _check_group(self, group: ParamGroup) -> None:
        super()._check_group(group)
        for key in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            check_range("Adagrad", key, group[key])

    def _initial_state(self, p: Tensor, group: ParamGroup) -> Dict[str, Any]:
        return {"step": 0, "sum": np.full_like(p.data, group["initial_accumulator_value"])}

    def _update_group(self, group: ParamGroup) -> None:
        lr, lr_decay, eps = float(group["lr"]), float(group["lr_decay"]), float(group["eps"])
        weight_decay = float(group["weight_decay"])
        for p, grad, state in self._with_grads(group):
            state["step"] += 1
            clr = lr / (1.0 + (state["step"] - 1) * lr_decay)
            for theta, g, total, b, a in self._blocks(p, grad, state["sum"],
                                                      second=bool(weight_decay)):
                g = with_weight_decay(g, theta, weight_decay, out=a)
                total += np.multiply(g, g, out=b)
                std = np.sqrt(total, out=b)
                std += eps
                step = np.divide(g, std, out=b)
                step *= clr
                theta -= step
