"""`TrainStep`: a training step that runs eagerly the first time it sees a batch of a
new kind and from then on runs the plan compiled from it; and `eager_step`, the
reference it must agree with."""
from __future__ import annotations

import math
import warnings
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from .. import nn
from ..tensor import Tensor, from_numpy
from .layers import LAYERS, Emitter
from .loss import clip_grad_norm as emit_clip_grad_norm
from .loss import cross_entropy, l1_penalty
from .plan import Builder, NonFiniteLoss, StepResult, Unsupported, Value
from .updates import grad_holder, optimizer_step

Plan = Callable[[np.ndarray, np.ndarray], Optional[StepResult]]
MAX_PLANS = 8          # plans kept per step (one per batch shape seen, typically two)
MAX_REBUILDS = 50      # a kind whose plan keeps going out of date stays eager


def eager_step(model: nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray,
               label_smoothing: float = 0.0, l1: float = 0.0,
               clip_grad_norm: Optional[float] = None) -> StepResult:
    """One training step, eagerly: the reference that a compiled step reproduces.
    A loss that is not finite raises NonFiniteLoss (a FloatingPointError) before any
    gradient or parameter changes."""
    optimizer.zero_grad()
    logits = model(from_numpy(x))
    loss = nn.functional.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if l1:
        loss = loss + l1 * nn.utils.l1_penalty(model.parameters())
    value = float(loss.data)
    if not math.isfinite(value):
        raise NonFiniteLoss(value)
    loss.backward()
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    return StepResult(value, logits.data)


# ----------------------------------------------------------------------- analysis
def layers_of(model: nn.Module) -> Tuple[List[nn.Module], List[nn.Sequential]]:
    """The layers an `nn.Sequential` (a subclass too, if it keeps Sequential's forward)
    applies in order, nested Sequentials opened up; and the Sequentials."""
    if not isinstance(model, nn.Sequential) or type(model).forward is not nn.Sequential.forward:
        raise Unsupported(f"{type(model).__name__} is not an nn.Sequential (the compiler "
                          f"reads a model as a sequence of layers)")
    layers: List[nn.Module] = []
    containers = [model]
    for layer in model:
        if isinstance(layer, nn.Sequential):
            inner, nested = layers_of(layer)
            layers += inner
            containers += nested
        else:
            layers.append(layer)
    return layers, containers


def emitter_for(layer: nn.Module) -> Emitter:
    """The compiled form of `layer`, by class: its own, or its base's if it keeps the
    base's forward."""
    for cls in type(layer).__mro__:
        emitter = LAYERS.get(cls)
        if emitter is not None:
            if type(layer).forward is not cls.forward:
                break
            return emitter
    raise Unsupported(f"the compiler does not know {type(layer).__name__}")


def build(model: nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray,
          label_smoothing: float, l1: float, clip_grad_norm: Optional[float],
          shared: Optional[Dict[Any, Any]] = None) -> Plan:
    """Compile the step for batches like (x, y), right after an eager step on them;
    raises Unsupported with the reason. `shared` holds the buffers the plans of one
    TrainStep share."""
    layers, containers = layers_of(model)
    params = list(model.parameters())
    trainable = [p for p in params if p.requires_grad]
    optimized = [p for group in optimizer.param_groups for p in group["params"]]
    if len(optimized) != len(trainable) or set(map(id, optimized)) != set(map(id, trainable)):
        raise Unsupported("the optimizer does not hold exactly the model's trainable "
                          "parameters")
    b = Builder(f"A training step of {type(model).__name__} with "
                f"{type(optimizer).__name__}, compiled by tinygrad_mnist.jit for x "
                f"{x.shape} {x.dtype}, y {y.shape} {y.dtype}.", shared)
    b.check(f"x.__class__ is ndarray and x.shape == {x.shape} and x.strides == "
            f"{x.strides} and x.dtype == {b.name('x_dtype', x.dtype)}")
    b.check(f"y.__class__ is ndarray and y.shape == {y.shape} and y.dtype == "
            f"{b.name('y_dtype', y.dtype)}")
    for i, container in enumerate(containers):
        name = b.name("model" if i == 0 else f"sequential_{i}", container)
        b.check(f"tuple({name}) == {b.name(f'{name}_layers', tuple(container))}")
    hooked = [m for m in [*containers, *layers] if m.has_hooks()]
    if hooked:
        raise Unsupported(f"{type(hooked[0]).__name__} has forward hooks, which run only "
                          f"eagerly")
    names = [b.name_of(m, f"module_{i}") for i, m in enumerate([*containers, *layers])]
    b.check(" and ".join(f"not {name}.has_hooks()" for name in names))  # added since: eager
    value = Value("x", x, False, fixed=False)
    backwards = []
    for i, layer in enumerate(layers):
        value, backward = emitter_for(layer)(b, layer, value, f"l{i}")
        backwards.append(backward)
    if not value.requires_grad:
        raise Unsupported("nothing to train: the loss does not depend on a parameter")
    logits = value
    loss_backward = cross_entropy(b, logits, y, label_smoothing)
    l1_backward = l1_penalty(b, params, l1) if l1 else None
    b.emit("loss_value = float(loss)",
           "if not isfinite(loss_value):",
           "    raise NonFiniteLoss(loss_value)")
    b.section = "backward"
    g: Optional[Value] = loss_backward()
    for backward in reversed(backwards):
        if g is None:
            break
        if backward is not None:                     # None: the layer passed x through
            g = backward(g)
    if l1_backward is not None:
        l1_backward()
    if set(map(id, b.grads)) != set(map(id, trainable)):
        raise Unsupported("a trainable parameter gets no gradient")
    if clip_grad_norm is not None:
        emit_clip_grad_norm(b, params, clip_grad_norm)
    optimizer_step(b, optimizer)
    b.result = f"StepResult(loss_value, {logits.name})"
    plan = b.compile()
    plan.source = b.source
    adopt_gradients(b)
    return plan


def adopt_gradients(b: Builder) -> None:
    """Move the eager step's gradients into the plan's buffers and leave those in
    `p.grad`: the same values, and the eager step's arrays can be freed now rather
    than at the next step."""
    for p, grad in b.grads.items():
        eager = p.grad if p.grad is None or isinstance(p.grad, np.ndarray) else p.grad.data
        if eager is not None and eager is not grad.array:
            np.copyto(grad.array, eager)
        p.grad = b.namespace[grad_holder(b, p, grad)]


# --------------------------------------------------------------------- the step
class TrainStep:
    """A compiled training step: `step(x, y)` does exactly what `eager_step` does
    (zero_grad, forward, cross-entropy, the optional L1 penalty, backward, optional
    gradient clipping, optimizer.step()) and returns a `StepResult(loss, logits)`.

    The first call with batches of a kind (shape, dtype and memory layout of x, shape
    and dtype of y, the model's train/eval modes) runs eagerly; then the step is
    compiled for that kind into plain Python over NumPy (`source` shows it): every
    buffer allocated once and reused, no graph, no per-op checks, elementwise work in
    place where the eager step computes the same thing into new arrays. Later calls of
    that kind run the plan, with bitwise the eager step's results. A plan starts by
    checking that the model and optimizer are still as it was built for (the same
    layers, parameters, param groups, optimizer state, dropout probabilities, the
    hyperparameters that choose the update's operations, ...); if anything differs it
    is built again after an eager step. A model the compiler cannot read (not an
    nn.Sequential of the layers in `jit.layers.LAYERS`) runs eagerly, with one warning.

    The logits of a compiled step are a buffer that the next step overwrites.
    """

    def __init__(self, model: nn.Module, optimizer: Any, *, loss: str = "cross_entropy",
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 clip_grad_norm: Optional[float] = None, debug: bool = False):
        if loss != "cross_entropy":
            raise ValueError(f"TrainStep: loss must be 'cross_entropy', got {loss!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"TrainStep: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        if not l1 >= 0:
            raise ValueError(f"TrainStep: l1 must be >= 0, got {l1}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"TrainStep: clip_grad_norm must be > 0, got {clip_grad_norm}")
        self.model, self.optimizer = model, optimizer
        self.label_smoothing, self.l1 = float(label_smoothing), float(l1)
        self.clip_grad_norm = None if clip_grad_norm is None else float(clip_grad_norm)
        self.debug = debug
        self.eager_steps = 0          # steps that ran eagerly (first of a kind, fallback)
        self.builds = 0               # plans compiled
        self._plan: Optional[Plan] = None
        self._plans: Dict[Tuple, Plan] = {}
        self._eager_kinds: Dict[Tuple, str] = {}   # batch kinds that stay eager, and why
        self._rebuilds: Dict[Tuple, int] = {}
        self._shared: Dict[Any, Any] = {}          # buffers all plans share
        self._warned: Set[str] = set()

    def __call__(self, x: Any, y: Any) -> StepResult:
        plan = self._plan
        if plan is not None:
            result = plan(x, y)
            if result is not None:
                return result
        return self._slow_step(x, y)

    def eager(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        """The reference step on (x, y), whatever plans exist."""
        return eager_step(self.model, self.optimizer, x, y, self.label_smoothing, self.l1,
                          self.clip_grad_norm)

    @property
    def source(self) -> Optional[str]:
        """The Python source of the plan that ran last (None before there is one)."""
        return None if self._plan is None else self._plan.source

    @property
    def reasons(self) -> List[str]:
        """Why some batches ran eagerly (empty if every kind was compiled)."""
        return sorted(set(self._eager_kinds.values()))

    def reset(self) -> None:
        """Forget every plan (the next step of each kind runs eagerly and recompiles)."""
        self._plan = None
        self._plans.clear()
        self._eager_kinds.clear()
        self._rebuilds.clear()
        self._shared.clear()

    # --------------------------------------------------------------- internals
    def _kind(self, x: np.ndarray, y: np.ndarray) -> Tuple:
        return (x.shape, x.strides, x.dtype.str, y.shape, y.dtype.str,
                tuple(m.training for m in self.model.modules()))

    def _slow_step(self, x: Any, y: Any) -> StepResult:
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        kind = self._kind(x, y)
        plan = self._plans.get(kind)
        if plan is not None:
            result = plan(x, y)
            if result is not None:
                self._plan = plan
                return result
            del self._plans[kind]          # out of date: the model or optimizer changed
            self._plan = None
        result = self.eager(x, y)
        self.eager_steps += 1
        if kind not in self._eager_kinds:
            self._compile(kind, x, y)
        return result

    def _compile(self, kind: Tuple, x: np.ndarray, y: np.ndarray) -> None:
        try:
            if self._rebuilds.get(kind, 0) >= MAX_REBUILDS:
                raise Unsupported(f"its plan went out of date {MAX_REBUILDS} times")
            plan = build(self.model, self.optimizer, x, y, self.label_smoothing, self.l1,
                         self.clip_grad_norm, self._shared)
        except Unsupported as e:
            self._eager_kinds[kind] = str(e)
            if str(e) not in self._warned:
                self._warned.add(str(e))
                warnings.warn(f"tinygrad_mnist.jit: {e}; this training step runs eagerly",
                              RuntimeWarning, stacklevel=4)
            return
        self._rebuilds[kind] = self._rebuilds.get(kind, 0) + 1
        self.builds += 1
        if len(self._plans) >= MAX_PLANS:
            del self._plans[next(iter(self._plans))]
        self._plans[kind] = self._plan = plan
        if self.debug:
            print(plan.source)


def compile_step(model: nn.Module, optimizer: Any, *, loss: str = "cross_entropy",
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 clip_grad_norm: Optional[float] = None, debug: bool = False) -> TrainStep:
    """A compiled training step of `model` with `optimizer` (see `TrainStep`):

        step = tg.jit.compile_step(model, optimizer, label_smoothing=0.1)
        for xb, yb in loader:
            loss, logits = step(xb, yb)
    """
    return TrainStep(model, optimizer, loss=loss, label_smoothing=label_smoothing, l1=l1,
                     clip_grad_norm=clip_grad_norm, debug=debug)
