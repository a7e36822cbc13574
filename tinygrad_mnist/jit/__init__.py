"""A compiled training step: what `torch.compile` is to eager PyTorch, for one thing,
the training step.

    step = tg.jit.compile_step(model, optimizer)          # label_smoothing, l1, clip_grad_norm
    for xb, yb in loader:
        loss, logits = step(xb, yb)                       # == eager_step(...), bitwise

The eager step (`eager_step`: zero_grad, forward, cross-entropy, backward, optional
clipping, optimizer.step()) is the reference and stays the readable code. Its cost
beyond the array work is Python per op: input checks, new arrays, saving for backward,
building and walking the graph, the optimizer's loop. The compiled step removes it:

- The step is *structured*, not traced: the compiler reads the model as an
  `nn.Sequential` of layers it knows (`layers.LAYERS`, by class: Linear, ReLU,
  LeakyReLU, Tanh, Sigmoid, Dropout, Flatten, Conv2d, MaxPool2d, AvgPool2d,
  BatchNorm1d/2d), the loss and the optimizer, so nothing a user function does can be
  silently frozen. Anything else runs eagerly, with one warning.
- The first step with batches of a kind runs eagerly. Then each layer's emitter writes
  its forward and backward as lines of Python over NumPy, doing what the layer's
  eager `Function`s do, op for op, into buffers allocated once, laid out in memory as
  the eager arrays are (so BLAS sums in the same order): the results are bitwise the
  eager step's. Elementwise chains are fused where NumPy allows without changing a
  number: ReLU in place over the Linear output, the bias added into the matmul's
  output, the cross-entropy gradient made in place in the softmax, ReLU's mask
  written straight as floats, max-pool's first search round written directly.
- SGD and Adam/AdamW updates are written out op for op on the optimizer's own state
  (`updates.py`); other optimizers run their own `step()`.
- The plan is one Python function (`TrainStep.source`, printed with `debug=True`) that
  first checks that everything it was built for still holds (batch shape and layout,
  modes, layers, parameters, param groups, optimizer state, hyperparameters that pick
  the operations) and otherwise steps eagerly and recompiles. The last, smaller batch
  of an epoch gets its own plan.

`plan.py` builds the source, `layers.py` and `loss.py` hold the emitters, `updates.py`
the optimizers, `step.py` the `TrainStep`. `tests/test_jit.py` checks the contract:
the same parameters, optimizer state, running statistics, dropout masks and losses as
eager after several steps, bitwise, for every layer and optimizer option.
"""
from .plan import NonFiniteLoss, StepResult, Unsupported
from .step import TrainStep, compile_step, eager_step

__all__ = ["compile_step", "TrainStep", "StepResult", "eager_step", "NonFiniteLoss",
           "Unsupported"]
