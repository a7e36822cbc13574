"""The compiled optimizer step.

SGD (momentum, dampening, Nesterov, weight decay), Adam and AdamW (weight decay,
amsgrad) are written out: the same NumPy operations, in the same order, as their
`update` methods in `optim/`, on the optimizer's own state arrays and the same flat
pieces (`_kernels.flat_pieces`), with the hyperparameters read from the param groups
at every step (a scheduler changes `lr`, OneCycleLR `momentum` and `betas` too). So
the numbers are bitwise the eager step's, and `optimizer.state_dict()` stays valid.
Whatever changes which operations run (momentum or weight decay turning zero,
nesterov, amsgrad) is a guard condition. Any other optimizer is called as it is: the
gradients are put in `p.grad` and `optimizer.step()` runs.

These must change with `optim.SGD.update` and `optim.Adam.update`; tests/test_jit.py
compares them bitwise for every option.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .. import _kernels as K
from .. import optim
from ..tensor import from_numpy
from .plan import Builder, Unsupported, Value

def _flags(b: Builder, group_name: str, group: Dict[str, Any], *keys: str) -> Dict[str, bool]:
    """Each hyperparameter's truth value (which is what chooses the operations), kept
    by a guard condition."""
    flags = {}
    for key in keys:
        flags[key] = bool(group[key])
        b.check(f"{'' if flags[key] else 'not '}{group_name}[{key!r}]")
    return flags


def _pieces(b: Builder, p: Any, names: List[str], arrays: List[Optional[np.ndarray]],
            scratch: Dict[np.dtype, List[np.ndarray]]) -> Tuple[str, List[Optional[str]]]:
    """The update pieces of (θ, grad, state arrays...) of parameter `p`, as the optimizer
    cuts them (`_kernels.flat_pieces`), each with two scratch views (tmp, g_buf). Returns
    the loop header over the pieces ("" for one piece) and the names the update's lines
    use: the loop's variables, or for one piece the arrays' own names."""
    pieces = K.flat_pieces(*arrays)
    tmp, g_buf = scratch[arrays[0].dtype]
    with_scratch = [tuple(piece) + (tmp[:piece[0].size].reshape(piece[0].shape),
                                    g_buf[:piece[0].size].reshape(piece[0].shape)
                                    if g_buf.size else None)
                    for piece in pieces]
    names = names + ["tmp", "g_buf"]
    owner = b.param_names[p]
    if len(with_scratch) == 1:
        return "", [None if a is None else
                    b.name_of(a, f"{owner}_{name}") if name not in ("tmp", "g_buf")
                    else b.view(f"{name}_{a.size}", a).name
                    for name, a in zip(names, with_scratch[0])]
    if g_buf.size == 0:
        names[-1] = "_"                                   # no weight decay: no g_buf
    bound = b.name(f"{owner}_pieces", with_scratch)
    return f"for {', '.join(names)} in {bound}:", names


def _write(b: Builder, header: str, lines: List[str]) -> None:
    if header:
        b.emit(header, *["    " + line for line in lines])
    else:
        b.emit(*lines)


def _update_arrays(optimizer: Any, p: Any, grad: Value) -> List[np.ndarray]:
    """θ, its gradient and its state arrays: what `flat_pieces` cuts (whole, when one of
    them is not contiguous, as a convolution's weight gradient is not)."""
    state = [a for a in optimizer.state.get(p, {}).values()
             if isinstance(a, np.ndarray) and a.shape == p.data.shape]
    return [p.data, grad.array, *state]


def _state(optimizer: Any, p: Any, name: str) -> np.ndarray:
    array = optimizer.state.get(p, {}).get(name)
    if array is None:
        raise Unsupported(f"the optimizer has no {name!r} for a parameter yet")
    return array


# ------------------------------------------------------------------------------ SGD
def sgd(b: Builder, optimizer: optim.SGD, g: str, group: Dict[str, Any],
        params: List[Tuple[Any, Value]], scratch) -> None:
    f = _flags(b, g, group, "momentum", "dampening", "weight_decay", "nesterov")
    dtypes = {p.data.dtype for p, _ in params}
    b.section = "prologue"
    b.emit(f"{g}_lr = float({g}['lr'])")
    for dt in dtypes:  # momentum and lr as 0-d arrays of θ's dtype, as SGD makes them
        dtype = b.name(f"dtype_{dt}", dt)
        b.emit(f"{g}_lr_{dt} = scalar({g}_lr, {dtype})")
        if f["momentum"]:
            b.emit(f"{g}_momentum_{dt} = scalar(float({g}['momentum']), {dtype})")
    if f["dampening"]:
        b.emit(f"{g}_one_minus_dampening = 1.0 - float({g}['dampening'])")
    if f["weight_decay"]:
        b.emit(f"{g}_weight_decay = float({g}['weight_decay'])")
    b.section = "update"
    b.comment(f"SGD (optim.SGD.update): momentum {f['momentum']}, dampening "
              f"{f['dampening']}, nesterov {f['nesterov']}, weight decay {f['weight_decay']}")
    for i, (p, grad) in enumerate(params):
        dt = p.data.dtype
        buffer = _state(optimizer, p, "momentum_buffer") if f["momentum"] else None
        if f["momentum"]:
            s = b.name(f"{b.param_names[p]}_state", optimizer.state[p])
            b.check(f"{b.state_name}.get({b.param_objects[p]}) is {s}")
        header, (theta, gr, momentum_buffer, tmp, g_buf) = _pieces(
            b, p, ["theta", "grad", "momentum_buffer"], [p.data, grad.array, buffer], scratch)
        lr, m = f"{g}_lr_{dt}", f"{g}_momentum_{dt}"
        lines, d = [], gr
        if f["weight_decay"]:
            lines += [f"multiply({theta}, {g}_weight_decay, out={g_buf})", f"{g_buf} += {gr}"]
            d = g_buf
        if f["momentum"]:
            lines.append(f"{momentum_buffer} *= {m}")
            lines.append(f"{momentum_buffer} += multiply({d}, {g}_one_minus_dampening, "
                         f"out={tmp})" if f["dampening"] else f"{momentum_buffer} += {d}")
            if f["nesterov"]:
                lines.append(f"add(multiply({momentum_buffer}, {m}, out={tmp}), {d}, out={tmp})")
                d = tmp
            else:
                d = momentum_buffer
        lines.append(f"{theta} -= multiply({d}, {lr}, out={d if d == g_buf else tmp})")
        _write(b, header, lines)


# ----------------------------------------------------------------------- Adam, AdamW
def adam(b: Builder, optimizer: optim.Adam, g: str, group: Dict[str, Any],
         params: List[Tuple[Any, Value]], scratch) -> None:
    f = _flags(b, g, group, "weight_decay", "amsgrad")
    decoupled = type(optimizer).decoupled_weight_decay
    b.section = "prologue"
    b.emit(f"{g}_lr = float({g}['lr'])",
           f"{g}_beta1, {g}_beta2 = (float(beta) for beta in {g}['betas'])",
           f"{g}_eps = float({g}['eps'])")
    if f["weight_decay"]:
        b.emit(f"{g}_weight_decay = float({g}['weight_decay'])")
        if decoupled:
            b.emit(f"{g}_decay = 1.0 - {g}_lr * {g}_weight_decay")
    b.section = "update"
    b.comment(f"{type(optimizer).__name__} (optim.Adam.update): weight decay "
              f"{'decoupled' if decoupled else 'L2'} {f['weight_decay']}, amsgrad "
              f"{f['amsgrad']}")
    for i, (p, grad) in enumerate(params):
        arrays = [_state(optimizer, p, "exp_avg"), _state(optimizer, p, "exp_avg_sq"),
                  _state(optimizer, p, "max_exp_avg_sq") if f["amsgrad"] else None]
        if not isinstance(optimizer.state[p].get("step"), int):
            raise Unsupported("an Adam step counter that is not an int")
        s = b.name(f"{b.param_names[p]}_state", optimizer.state[p])
        b.check(f"{b.state_name}.get({b.param_objects[p]}) is {s}")
        header, (theta, gr, exp_avg, exp_avg_sq, max_sq, tmp, g_buf) = _pieces(
            b, p, ["theta", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"],
            [p.data, grad.array] + arrays, scratch)
        # _prepare: the step counter and the bias corrections, per parameter
        b.emit(f"{s}['step'] = t = {s}['step'] + 1",
               f"step_size = {g}_lr / (1.0 - {g}_beta1 ** t)",
               f"bias_correction2_sqrt = math.sqrt(1.0 - {g}_beta2 ** t)")
        lines, d = [], gr
        if f["weight_decay"] and decoupled:
            lines.append(f"{theta} *= {g}_decay")
        elif f["weight_decay"]:
            lines += [f"multiply({theta}, {g}_weight_decay, out={g_buf})", f"{g_buf} += {gr}"]
            d = g_buf
        lines += [f"{exp_avg} *= {g}_beta1",
                  f"{exp_avg} += multiply({d}, 1.0 - {g}_beta1, out={tmp})",
                  f"{exp_avg_sq} *= {g}_beta2",
                  f"{exp_avg_sq} += multiply(multiply({d}, {d}, out={tmp}), 1.0 - {g}_beta2, "
                  f"out={tmp})"]
        if f["amsgrad"]:
            lines.append(f"maximum({max_sq}, {exp_avg_sq}, out={max_sq})")
        lines += [f"sqrt({max_sq if f['amsgrad'] else exp_avg_sq}, out={tmp})",
                  f"{tmp} /= bias_correction2_sqrt",
                  f"{tmp} += {g}_eps",
                  f"divide({exp_avg}, {tmp}, out={tmp})",
                  f"{tmp} *= step_size",
                  f"{theta} -= {tmp}"]
        _write(b, header, lines)


Update = Callable[..., None]
#: Optimizers whose update is written out, by class (exactly that class: a subclass
#: may have changed the update), with the state arrays that update was written for.
UPDATES: Dict[type, Tuple[Update, Dict[str, Optional[str]]]] = {
    optim.SGD: (sgd, {"momentum_buffer": "momentum"}),
    optim.Adam: (adam, {"exp_avg": None, "exp_avg_sq": None, "max_exp_avg_sq": "amsgrad"}),
    optim.AdamW: (adam, {"exp_avg": None, "exp_avg_sq": None, "max_exp_avg_sq": "amsgrad"}),
}


def grad_holder(b: Builder, p: Any, grad: Value) -> str:
    """What to assign to `p.grad` for the gradient buffer `grad`: the array itself where
    `.grad` holds an array, a Tensor sharing it (made once) where `.grad` holds a Tensor
    (as the eager step left it)."""
    if p.grad is None or isinstance(p.grad, np.ndarray):
        return grad.name
    holder = b.shared.get(("holder", p))
    if holder is None or holder.data is not grad.array:
        holder = b.shared[("holder", p)] = from_numpy(grad.array)
    return b.name_of(holder, f"{grad.name}_tensor")


def optimizer_step(b: Builder, optimizer: Any) -> None:
    """Guards on the optimizer's groups and state, then the update (written out, or
    optimizer.step()), and `p.grad` left holding each gradient as after eager."""
    opt = b.name("optimizer", optimizer)
    groups = optimizer.param_groups
    b.check(f"len({opt}.param_groups) == {len(groups)}")
    state = b.state_name = b.name("optimizer_state", optimizer.state)
    b.check(f"{opt}.state is {state} and len({state}) == {len(optimizer.state)}")
    for group in groups:
        for p in group["params"]:
            b.param_objects.setdefault(p, b.name("param", p))
    grouped = []
    for i, group in enumerate(groups):
        g = b.name(f"group_{i}", group)
        plist = b.name(f"group_{i}_params", group["params"])
        b.check(f"{opt}.param_groups[{i}] is {g} and {g}['params'] is {plist} and "
                f"len({plist}) == {len(group['params'])}")
        grouped.append((g, group, [(p, b.grads[p]) for p in group["params"] if p in b.grads]))
    b.section = "update"
    b.comment("p.grad holds each gradient, as after an eager step")
    for p, grad in b.grads.items():
        b.emit(f"{b.param_objects[p]}.grad = {grad_holder(b, p, grad)}")
    update, state_arrays = UPDATES.get(type(optimizer), (None, None))
    if update is None or type(optimizer).state_arrays != state_arrays:
        # Not written out, or its state changed since it was: the optimizer's own step.
        b.comment(f"{type(optimizer).__name__}: its own step()")
        b.emit(f"{opt}.step()")
        return
    largest: Dict[np.dtype, int] = {}                  # the largest update piece, by dtype
    for _, _, params in grouped:
        for p, grad in params:
            size = max(piece[0].size for piece in K.flat_pieces(*_update_arrays(optimizer, p,
                                                                                   grad)))
            largest[p.data.dtype] = max(largest.get(p.data.dtype, 0), size)
    decay = any(group["weight_decay"] for group in groups)
    scratch = {}
    for dt, n in largest.items():          # tmp, and g_buf where weight decay needs it
        pair = b.shared.get(("scratch", dt))
        if pair is None or pair[0].size < n or (decay and pair[1].size < n):
            pair = b.shared[("scratch", dt)] = [np.zeros(n, dt), np.zeros(n if decay else 0, dt)]
        scratch[dt] = pair
    for g, group, params in grouped:
        update(b, optimizer, g, group, params, scratch)
