"""Einstein summation, `tg.einsum("ij,jk->ik", a, b)`: the primitive `Einsum` (NumPy's
einsum forward, its gradient another einsum) and the function that reads the equation."""
from __future__ import annotations

from typing import Any, Dict, Tuple

import numpy as np

from .autograd import Function
from .tensor import Tensor, as_tensor


class Einsum(Function):
    """np.einsum of operands with the subscripts `inputs` (one string of distinct letters
    per operand) to `output`. The gradient of an operand is the einsum of the upstream
    gradient with the other operands, back to that operand's subscripts; along a letter
    only that operand has (summed in forward) it is the same everywhere."""

    def forward(self, *operands, inputs: Tuple[str, ...], output: str):
        self.save_for_backward(operands, inputs, output)
        return np.einsum(",".join(inputs) + "->" + output, *operands)

    def backward(self, g):
        operands, inputs, output = self.saved
        grads = []
        for k, (x, subscripts) in enumerate(zip(operands, inputs)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            others = [j for j in range(len(operands)) if j != k]
            seen = set(output).union(*(inputs[j] for j in others))
            kept = "".join(c for c in subscripts if c in seen)
            spec = ",".join([output] + [inputs[j] for j in others]) + "->" + kept
            grad = np.einsum(spec, g, *(operands[j] for j in others))
            lonely = [i for i, c in enumerate(subscripts) if c not in seen]
            grads.append(np.broadcast_to(np.expand_dims(grad, lonely), x.shape).copy()
                         if lonely else grad)
        return tuple(grads)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, as `torch.einsum("ij,jk->ik", a, b)` (or with the operands in
    a list): each operand's dimensions named by letters, the output's after "->" (without
    it, the letters used once, in alphabetical order); letters missing from the output are
    summed over. Each letter at most once per operand, and no "..."."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = [o if isinstance(o, Tensor) else as_tensor(o) for o in operands]
    spec = equation.replace(" ", "")
    inputs_part, arrow, output = spec.partition("->")
    inputs = tuple(inputs_part.split(","))
    if not arrow:
        letters = "".join(inputs)
        output = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    problem = None
    if "." in spec:
        problem = "'...' is not supported; name every dimension"
    elif len(inputs) != len(tensors):
        problem = f"{len(inputs)} operand(s) in the equation, {len(tensors)} given"
    elif not all(c.isalpha() for c in "".join(inputs) + output) or any(
            len(set(s)) != len(s) for s in inputs + (output,)):
        problem = "name dimensions by letters, each at most once per operand and output"
    elif any(len(s) != t.ndim for s, t in zip(inputs, tensors)):
        problem = ("the letters do not match the operands' dimensions "
                   f"{[t.shape for t in tensors]}")
    elif not set(output) <= set("".join(inputs)):
        problem = "the output names a letter no operand has"
    if problem is None:
        sizes: Dict[str, int] = {}
        for s, t in zip(inputs, tensors):
            for c, n in zip(s, t.shape):
                if sizes.setdefault(c, n) != n:
                    problem = f"{c!r} is {sizes[c]} in one operand and {n} in another"
    if problem:
        raise ValueError(f"einsum {equation!r}: {problem}")
    dtype = np.result_type(*[t.dtype for t in tensors])
    tensors = [t if t.dtype == dtype else t.to(dtype) for t in tensors]
    return Einsum.apply(*tensors, inputs=inputs, output=output)
