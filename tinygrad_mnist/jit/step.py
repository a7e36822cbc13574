"""`TrainStep`: a training step that records its first steps of each kind of batch and
then replays them; and `eager_step`, the reference it must agree with."""
from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import numpy as np

from .. import autograd, nn
from ..tensor import Tensor, from_numpy
from .record import (Compiler, NonFiniteLoss, Recording, Ref, StepResult, Unsupported,
                     compare, unchanged, watching_reads)

Plan = Callable[[np.ndarray, np.ndarray], Optional[StepResult]]
LossFn = Callable[[Any, Any], Tensor]
MAX_PLANS = 8          # plans kept per step (one per batch shape seen, typically two)
MAX_REBUILDS = 50      # a kind whose plan keeps going out of date stays eager


def forward_and_loss(model: nn.Module, x: np.ndarray, y: np.ndarray,
                     label_smoothing: float = 0.0, l1: float = 0.0,
                     loss_fn: Optional[LossFn] = None) -> Tuple[Tensor, Any]:
    """The loss of the batch and the model's output: `loss_fn(output, y)`, or the
    cross-entropy with label smoothing, plus l1·Σ|p| if l1."""
    output = model(from_numpy(x))
    if loss_fn is None:
        loss = nn.functional.cross_entropy(output, y, label_smoothing=label_smoothing)
    else:
        loss = loss_fn(output, y)
        if not isinstance(loss, Tensor):
            raise TypeError(f"loss_fn must return a Tensor, got {type(loss).__name__}")
    if l1:
        loss = loss + l1 * nn.utils.l1_penalty(model.parameters())
    return loss, output


def arrays(output: Any) -> Any:
    """The model's output as arrays (a Tensor's array; a tuple of them for a tuple)."""
    if isinstance(output, Tensor):
        return output.data
    if isinstance(output, (tuple, list)):
        return tuple(arrays(o) for o in output)
    return output


def finish(model: nn.Module, optimizer: Any, loss: Tensor,
           clip_grad_norm: Optional[float]) -> float:
    """The rest of an eager step after the loss: its value (NonFiniteLoss if it is not
    finite), backward, optional clipping and the optimizer's step."""
    value = float(loss.data)
    if not math.isfinite(value):
        raise NonFiniteLoss(value)
    loss.backward()
    if clip_grad_norm is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm)
    optimizer.step()
    return value


def eager_step(model: nn.Module, optimizer: Any, x: np.ndarray, y: np.ndarray,
               label_smoothing: float = 0.0, l1: float = 0.0,
               clip_grad_norm: Optional[float] = None,
               loss_fn: Optional[LossFn] = None) -> StepResult:
    """One training step, eagerly: the reference that a compiled step reproduces.
    A loss that is not finite raises NonFiniteLoss (a FloatingPointError) before any
    gradient or parameter changes."""
    optimizer.zero_grad()
    loss, output = forward_and_loss(model, x, y, label_smoothing, l1, loss_fn)
    return StepResult(finish(model, optimizer, loss, clip_grad_norm), arrays(output))


# --------------------------------------------------------------------- the step
class TrainStep:
    """A compiled training step: `step(x, y)` does exactly what `eager_step` does
    (zero_grad, forward, the loss, backward, optional gradient clipping,
    optimizer.step()) and returns a `StepResult(loss, output)`.

    The first two calls with batches of a kind (shape, dtype and memory layout of x,
    shape and dtype of y) run eagerly and are recorded: the Functions the forward and
    the loss ran, with their inputs and options, and the recorded calls (random draws).
    If the two recordings agree, later calls of that kind replay them (`source` shows
    the replay): each Function's own forward, then its own backward, newest first,
    then clipping and `optimizer.step()` as in the eager step; no modules, no graph,
    no Tensors but the gradients'. The results are bitwise the eager step's. A replay
    first checks that the batch, the grad mode and the model (its modules' attributes,
    parameters, modes and hooks) and the optimizer's param groups are as recorded;
    if not, the step runs eagerly and records again.

    What runs eagerly, with one warning saying why: a model with forward hooks or in
    eval mode, an optimizer that does not hold exactly the model's trainable
    parameters, and a step whose Python depends on the data: a forward that reads a
    tensor's value (`.item()`, `bool(t)`, ...), or two recordings that differ (other
    ops, or a constant computed from the data outside the ops). With `check_every=N`
    every N-th replay of a kind is instead recorded again and compared.
    """

    def __init__(self, model: nn.Module, optimizer: Any, *, loss: str = "cross_entropy",
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 clip_grad_norm: Optional[float] = None, loss_fn: Optional[LossFn] = None,
                 check_every: Optional[int] = None, debug: bool = False):
        if loss != "cross_entropy":
            raise ValueError(f"TrainStep: loss must be 'cross_entropy' (or pass loss_fn), "
                             f"got {loss!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"TrainStep: label_smoothing must be in [0, 1], got "
                             f"{label_smoothing}")
        if not l1 >= 0:
            raise ValueError(f"TrainStep: l1 must be >= 0, got {l1}")
        if clip_grad_norm is not None and not clip_grad_norm > 0:
            raise ValueError(f"TrainStep: clip_grad_norm must be > 0, got {clip_grad_norm}")
        if loss_fn is not None and (label_smoothing or not callable(loss_fn)):
            raise ValueError("TrainStep: loss_fn must be a function (output, target) -> "
                             "Tensor, and label_smoothing applies only without it")
        if check_every is not None and not (isinstance(check_every, int) and check_every > 0):
            raise ValueError(f"TrainStep: check_every must be a positive int or None, got "
                             f"{check_every!r}")
        self.model, self.optimizer = model, optimizer
        self.label_smoothing, self.l1 = float(label_smoothing), float(l1)
        self.clip_grad_norm = None if clip_grad_norm is None else float(clip_grad_norm)
        self.loss_fn, self.check_every, self.debug = loss_fn, check_every, debug
        self.eager_steps = 0          # steps that ran eagerly (recorded, or fallback)
        self.builds = 0               # replays compiled
        self._plan: Optional[Plan] = None
        self._left = sys.maxsize      # replays before the next check (check_every)
        self._plans: Dict[Tuple, Plan] = {}
        self._recordings: Dict[Tuple, Recording] = {}   # kind -> the last recording
        self._eager_kinds: Dict[Tuple, str] = {}   # batch kinds that stay eager, and why
        self._rebuilds: Dict[Tuple, int] = {}
        self._changes: Dict[Tuple, int] = {}       # recordings outdated by the next one
        self._warned: Set[str] = set()         # every reason to step eagerly, once

    def __call__(self, x: Any, y: Any) -> StepResult:
        plan = self._plan
        if plan is not None:
            self._left -= 1
            if self._left:
                result = plan(x, y)
                if result is not None:
                    return result
        return self._slow_step(x, y)

    def eager(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        """The reference step on (x, y), whatever plans exist."""
        return eager_step(self.model, self.optimizer, x, y, self.label_smoothing, self.l1,
                          self.clip_grad_norm, self.loss_fn)

    @property
    def source(self) -> Optional[str]:
        """The Python source of the replay that ran last (None before there is one)."""
        return None if self._plan is None else self._plan.source

    @property
    def reasons(self) -> List[str]:
        """Why some batches ran eagerly (empty if every kind was compiled)."""
        return sorted(self._warned)

    def reset(self) -> None:
        """Forget every replay (the next steps of each kind record again)."""
        self._plan = None
        self._plans.clear()
        self._recordings.clear()
        self._eager_kinds.clear()
        self._rebuilds.clear()
        self._changes.clear()

    # --------------------------------------------------------------- internals
    def _slow_step(self, x: Any, y: Any) -> StepResult:
        x = x.data if isinstance(x, Tensor) else np.asarray(x)
        y = y.data if isinstance(y, Tensor) else np.asarray(y)
        if self.loss_fn is None and y.dtype.kind in "iu" and y.dtype != np.intp:
            y = y.astype(np.intp)              # as cross_entropy takes them
        kind = (x.shape, x.strides, x.dtype.str, y.shape, y.dtype.str)
        plan = self._plans.get(kind)
        if plan is not None and self._left > 0:
            result = plan(x, y)
            if result is not None:
                self._plan = plan
                return result
        if plan is not None and self._left > 0:  # out of date: record again
            del self._plans[kind]
            self._recordings.pop(kind, None)
        self._plan = None
        if kind in self._eager_kinds or not autograd.is_grad_enabled():
            self.eager_steps += 1
            return self.eager(x, y)
        return self._record(kind, x, y)

    def _record(self, kind: Tuple, x: np.ndarray, y: np.ndarray) -> StepResult:
        """An eager step on (x, y), recorded; with an earlier recording of the same
        kind that it agrees with, the replay is compiled."""
        try:
            params = self._check_model()
        except Unsupported as e:               # checked again at the next step
            self._warn(e)
            self.eager_steps += 1
            return self.eager(x, y)
        entries: list = []
        reads: List[str] = []
        watched = self._watched()
        self.optimizer.zero_grad()
        with watching_reads(reads), autograd.recording(entries):
            loss, output = forward_and_loss(self.model, x, y, self.label_smoothing, self.l1,
                                            self.loss_fn)
        result = StepResult(finish(self.model, self.optimizer, loss, self.clip_grad_norm),
                            arrays(output))
        self.eager_steps += 1
        try:
            if reads:
                raise Unsupported(f"the step reads a tensor's value into Python "
                                  f"(Tensor.{reads[0]}), so what it runs may depend on "
                                  f"the data")
            recording = Recording(entries, x, y, params)
            recording.watched = watched
            loss_ref, output_ref = recording.tensor(loss), self._output_ref(recording, output)
            earlier = self._recordings.get(kind)
            if earlier is not None and not unchanged(earlier.watched):
                earlier = None                 # recorded before the model changed
                self._changes[kind] = self._changes.get(kind, 0) + 1
                if self._changes[kind] > 2 * MAX_REBUILDS:
                    raise Unsupported("the model's attributes changed at every step")
            self._recordings[kind] = recording
            if earlier is not None:
                compare(earlier, recording)
                if kind in self._plans:        # a check (check_every): still the same
                    self._plan = self._plans[kind]
                    self._left = sys.maxsize if self.check_every is None else self.check_every + 1
                else:
                    self._compile(kind, recording, loss_ref, output_ref, x, y)
        except Unsupported as e:
            self._recordings.pop(kind, None)
            self._plans.pop(kind, None)
            self._give_up(kind, e)
        return result

    @staticmethod
    def _output_ref(recording: Recording, output: Any) -> Any:
        if isinstance(output, (tuple, list)):
            return tuple(TrainStep._output_ref(recording, o) for o in output)
        if not isinstance(output, Tensor):
            raise Unsupported(f"the model returned a {type(output).__name__}, not Tensors")
        return recording.tensor(output)

    def _check_model(self) -> List[Tensor]:
        """The model's parameters, if the model and optimizer can be compiled."""
        modules = list(self.model.modules())
        hooked = [m for m in modules if m.has_hooks()]
        if hooked:
            raise Unsupported(f"{type(hooked[0]).__name__} has forward hooks, which run "
                              f"only eagerly")
        if not all(m.training for m in modules):
            raise Unsupported("the model is in eval mode (a step compiles in training "
                              "mode, where no constant comes from running statistics)")
        params = list(self.model.parameters())
        trainable = {id(p) for p in params if p.requires_grad}
        optimized = [id(p) for g in self.optimizer.param_groups for p in g["params"]]
        if len(optimized) != len(trainable) or set(optimized) != trainable:
            raise Unsupported("the optimizer does not hold exactly the model's trainable "
                              "parameters")
        return params

    def _guard(self, c: Compiler, x: np.ndarray, y: np.ndarray) -> List[str]:
        """The conditions under which the replay holds, as Python source."""
        guard = [f"x.__class__ is ndarray and x.shape == {x.shape} and x.strides == "
                 f"{x.strides} and x.dtype == {c.bind('XDT', x.dtype)}",
                 f"y.__class__ is ndarray and y.shape == {y.shape} and y.dtype == "
                 f"{c.bind('YDT', y.dtype)}", "grad_enabled()"]
        # The same objects in each watched container: a tuple's == compares by identity
        # first, so it is quick while nothing changed (a changed object's == may even
        # raise: the replay then counts as out of date).
        for n, (container, values, mirrored) in enumerate(c.rec.watched):
            name = c.bind(f"W{n}", container)
            if not values:
                guard.append(f"not {name}")
            elif mirrored:                     # its objects are the attributes': their count
                guard.append(f"len({name}) == {len(values)}")
            else:
                items = f"{name}.values()" if isinstance(container, dict) else name
                guard.append(f"tuple({items}) == {c.bind(f'V{n}', values)}")
        guard += [f"P{k}.requires_grad is {p.requires_grad}"
                  for k, p in enumerate(c.rec.params)]
        return guard

    def _watched(self) -> List[Tuple[Any, tuple, bool]]:
        """What a replay assumes unchanged, as (container, the objects it holds, whether
        they are all attributes of its module too): each module's attributes
        (parameters, buffers, submodules, mode, hooks, settings such as dropout's p) and
        the optimizer's param groups and their parameter lists."""
        watched: List[Tuple[Any, tuple, bool]] = []
        for m in self.model.modules():
            state = vars(m)
            attributes = tuple(state.values())
            watched.append((state, attributes, False))
            for v in attributes:
                if type(v) in (dict, list):
                    held = tuple(v.values() if isinstance(v, dict) else v)
                    mirrored = all(any(h is a for a in attributes) for h in held)
                    watched.append((v, held, mirrored))
        groups = self.optimizer.param_groups
        watched.append((groups, tuple(groups), False))
        watched += [(g["params"], tuple(g["params"]), False) for g in groups]
        return watched

    @staticmethod
    def _classes(rec: Recording) -> int:
        """The number of classes of the cross-entropy's logits (its first input)."""
        for cls, refs, normal, options, needs, as_array in reversed(rec.ops):
            if "labels" in options and refs and refs[0].kind == "op":
                return rec.shapes[refs[0].index][0][-1]
        raise Unsupported("the cross-entropy did not run as one op")

    def _compile(self, kind: Tuple, rec: Recording, loss: Ref, output: Any,
                 x: np.ndarray, y: np.ndarray) -> None:
        if self._rebuilds.get(kind, 0) >= MAX_REBUILDS:
            raise Unsupported(f"its replay went out of date {MAX_REBUILDS} times")
        c = Compiler(rec, f"A training step of {type(self.model).__name__} with "
                          f"{type(self.optimizer).__name__}, replayed by tinygrad_mnist.jit "
                          f"for x {x.shape} {x.dtype}, y {y.shape} {y.dtype}.")
        guard = self._guard(c, x, y)
        if self.loss_fn is None and y.dtype.kind in "iu" and y.size:
            # a label outside [0, C) (ignore_index too): this batch steps eagerly, which
            # raises or ignores it as cross_entropy does; the replay stays
            c.bind("eager_once", self._eager_once)
            c.lines.append(f"if y.view({c.bind('uintp', np.uintp)}).max() >= "
                           f"{self._classes(rec)}:")
            c.lines.append("    return eager_once(x, y)")
        c.bind("zero_grad", self.optimizer.zero_grad)
        tail = []
        if self.clip_grad_norm is not None:
            c.bind("clip", nn.utils.clip_grad_norm_)
            c.bind("PARAMS", rec.params)
            tail.append(f"clip(PARAMS, {self.clip_grad_norm!r})")
        tail.append(f"{c.bind('optimizer_step', self.optimizer.step)}()")
        plan = c.compile(guard, loss, output, tail)
        plan.source = c.source
        self._rebuilds[kind] = self._rebuilds.get(kind, 0) + 1
        self.builds += 1
        if len(self._plans) >= MAX_PLANS:
            del self._plans[next(iter(self._plans))]
        self._plans[kind] = self._plan = plan
        self._left = sys.maxsize if self.check_every is None else self.check_every + 1
        if self.debug:
            print(plan.source)

    def _eager_once(self, x: np.ndarray, y: np.ndarray) -> StepResult:
        self.eager_steps += 1
        return self.eager(x, y)

    def _give_up(self, kind: Tuple, e: Unsupported) -> None:
        self._eager_kinds[kind] = str(e)
        self._warn(e)

    def _warn(self, e: Unsupported) -> None:
        if str(e) not in self._warned:
            self._warned.add(str(e))
            warnings.warn(f"tinygrad_mnist.jit: {e}; this training step runs eagerly",
                          RuntimeWarning, stacklevel=4)


def compile_step(model: nn.Module, optimizer: Any, *, loss: str = "cross_entropy",
                 label_smoothing: float = 0.0, l1: float = 0.0,
                 clip_grad_norm: Optional[float] = None, loss_fn: Optional[LossFn] = None,
                 check_every: Optional[int] = None, debug: bool = False) -> TrainStep:
    """A compiled training step of `model` (any `nn.Module`) with `optimizer` (see
    `TrainStep`):

        step = tg.jit.compile_step(model, optimizer, label_smoothing=0.1)
        for xb, yb in loader:
            loss, logits = step(xb, yb)

    `loss_fn(output, target) -> Tensor` replaces the cross-entropy (e.g. a VAE's
    reconstruction loss plus KL divergence, with target = the batch)."""
    return TrainStep(model, optimizer, loss=loss, label_smoothing=label_smoothing, l1=l1,
                     clip_grad_norm=clip_grad_norm, loss_fn=loss_fn,
                     check_every=check_every, debug=debug)
