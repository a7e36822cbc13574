"""A compiled training step: what `torch.compile` is to eager PyTorch, for one thing,
the training step, in the manner of tinygrad's TinyJit: record what the eager step
ran, then replay it.

    step = tg.jit.compile_step(model, optimizer)          # label_smoothing, l1, clip_grad_norm
    for xb, yb in loader:
        loss, logits = step(xb, yb)                       # == eager_step(...), bitwise

The eager step (`eager_step`: zero_grad, forward, loss, backward, optional clipping,
optimizer.step()) is the reference and stays the readable code. Its cost beyond the
array work is Python: modules, Tensors, building and walking the graph. The compiled
step keeps the array work and drops that Python, for any `nn.Module`:

- The first two steps with batches of a kind run eagerly and are recorded
  (`autograd.recording`): every Function the forward and the loss applied, with its
  inputs and options, and every `autograd.recorded` call (dropout's mask, `randn_like`:
  draws a replay makes again, from the same generator in the same order).
- If the two recordings agree, the replay is written as one Python function
  (`TrainStep.source`) that calls each Function's own `forward`, then, newest first,
  its own `backward`, as the engine would, and then `clip_grad_norm_` and the
  optimizer's own `step()`. No layer, loss or optimizer is written twice: the
  compiler knows Functions, not layers. Results are bitwise the eager step's.
- A replay first checks what it was recorded for (the batch's shape, dtype and
  layout; grad mode; each module's attributes, parameters, mode and hooks; the
  optimizer's param groups) and otherwise steps eagerly and records again. A step
  whose Python depends on the data (reads a tensor's value, or two recordings
  differ) runs eagerly, with one warning.

`record.py` holds the recording and the replay's writer, `step.py` the `TrainStep`.
`tests/test_jit.py` checks the contract: the same parameters, gradients, optimizer
state, running statistics, random draws and losses as eager after several steps,
bitwise, for every layer, loss and optimizer option, Sequential and subclassed models.
"""
from .record import NonFiniteLoss, StepResult, Unsupported
from .step import TrainStep, compile_step, eager_step

__all__ = ["compile_step", "TrainStep", "StepResult", "eager_step", "NonFiniteLoss",
           "Unsupported"]
