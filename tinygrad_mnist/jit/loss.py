"""The compiled loss (softmax cross-entropy against integer labels, as
`fused.CrossEntropy` computes it), the L1 penalty of `nn.utils.l1_penalty` and the
gradient clipping of `nn.utils.clip_grad_norm_`: op for op as the eager code, so the
numbers are bitwise the same.
"""
from __future__ import annotations

from typing import Any, Callable, List

import numpy as np

from .. import _kernels as K
from .layers import fixed, like
from .plan import Builder, Unsupported, Value


def cross_entropy(b: Builder, logits: Value, y: np.ndarray, label_smoothing: float
                  ) -> Callable[[], Value]:
    """Write the mean cross-entropy of `logits` (N, C) at the labels `y` into the
    forward section (as `loss`, a float32 scalar); return the function that writes its
    backward (d loss/d logits, for an upstream gradient of 1) and returns that
    gradient's buffer."""
    if logits.array.ndim != 2:
        raise Unsupported(f"cross-entropy of logits {logits.array.shape}")
    if y.dtype.kind not in "iub" or y.shape != logits.array.shape[:1]:
        raise Unsupported(f"labels {y.shape} of {y.dtype}")
    logits = fixed(b, logits, "logits_copy")
    a = logits.array
    n, c = a.shape
    s = float(label_smoothing)
    labels = "y" if y.dtype == np.intp else "y.astype(intp)"
    b.check(f"{labels}.view(uintp).max() < {c}")             # check_labels: each in [0, C)
    b.namespace["logits"] = a
    b.comment(f"cross-entropy, mean over {n} rows, label smoothing {s}: fused.CrossEntropy")
    row_max = b.view("row_max", np.zeros(n, a.dtype))
    if a.ndim == 2 and c < 64 and n > 1:                      # K.row_max's transposed copy
        transposed = b.view("logits_T_copy", np.zeros((c, n), a.dtype))
        b.emit(f"copyto({transposed.name}, {b.view('logits_T', a.T).name})",
               f"npmax({transposed.name}, axis=0, out={row_max.name})")
    else:
        b.emit(f"npmax({logits.name}, axis=1, out={row_max.name})")
    row_max_col = b.view("row_max_col", row_max.array[:, None])
    shifted = b.view("shifted", like(lambda: a - K.row_max(a, 1)))
    probs = b.view("probs", like(lambda: np.exp(shifted.array)))
    sums = b.view("sums", like(lambda: K.row_sums(probs.array)))
    sums_col = b.view("sums_col", sums.array[:, None])
    log_sums = b.view("log_sums", like(lambda: np.log(sums.array)))
    ones_c = b.name(f"ones_{c}", K.ones(c, a.dtype))
    starts = b.name("row_starts", K.label_positions(n, c, np.zeros(n, np.intp)))
    at = b.view("at_label", np.zeros(n, np.intp))
    picked = b.view("at_label_shifted", np.zeros(n, a.dtype))
    losses = b.view("losses", like(lambda: log_sums.array - picked.array))
    shifted_flat = b.view("shifted_flat", shifted.array.ravel())
    b.emit(f"subtract({logits.name}, {row_max_col.name}, out={shifted.name})",
           f"exp({shifted.name}, out={probs.name})",
           f"matmul({probs.name}, {ones_c}, out={sums.name})",        # K.row_sums
           f"{probs.name} /= {sums_col.name}",                        # softmax
           f"log({sums.name}, out={log_sums.name})",
           f"add({starts}, y, out={at.name})",                         # K.label_positions
           f"take({shifted_flat.name}, {at.name}, out={picked.name})",
           f"subtract({log_sums.name}, {picked.name}, out={losses.name})")  # -log p[label]
    if s:  # (1-s)·loss + (s/C)·(C·log_sums - Σ shifted)
        smooth = b.view("smoothing_term", np.zeros(n, a.dtype))
        row_sums = b.view("shifted_row_sums", np.zeros(n, a.dtype))
        b.emit(f"multiply({losses.name}, {1 - s!r}, out={losses.name})",
               f"multiply({log_sums.name}, {c}, out={smooth.name})",
               f"matmul({shifted.name}, {ones_c}, out={row_sums.name})",
               f"subtract({smooth.name}, {row_sums.name}, out={smooth.name})",
               f"multiply({smooth.name}, {s / c!r}, out={smooth.name})",
               f"{losses.name} += {smooth.name}")
    b.emit(f"loss = npsum({losses.name}) / {n}")

    def backward() -> Value:
        b.comment("cross-entropy: d loss/d logits = (softmax - target)/N, in place in probs")
        if s:
            b.emit(f"subtract({probs.name}, {s / c!r}, out={probs.name})")
        probs_flat = b.view("probs_flat", probs.array.ravel())
        b.emit(f"{probs_flat.name}[{at.name}] -= {1 - s!r}",
               f"{probs.name} *= {1.0 / n!r}")
        return probs._replace(requires_grad=True)

    return backward


def l1_penalty(b: Builder, params: List[Any], l1: float) -> Callable[[], None]:
    """Add l1·Σ|p| (as `nn.utils.l1_penalty`: Σ over p of Σ p·sign(p)) to `loss`;
    return the function that writes its gradient, l1·sign(p), into each gradient."""
    l1_array = b.name("l1", np.asarray(l1, dtype=b.namespace["logits"].dtype))
    signs, products = [], []
    b.comment(f"L1 penalty: loss + {l1!r}·Σ|p| (nn.utils.l1_penalty)")
    for i, p in enumerate(params):
        data = b.param_names[p]
        sign = b.view(f"sign_{i}", like(lambda: np.sign(p.data)))
        product = b.view(f"abs_{i}", like(lambda: p.data * sign.array))
        term = f"npsum(multiply({data}, {sign.name}, out={product.name}))"
        b.emit(f"sign({data}, out={sign.name})",
               f"penalty = {term}" if i == 0 else f"penalty = penalty + {term}")
        signs.append(sign)
        products.append(product)
    b.emit(f"loss = loss + multiply({l1_array}, penalty)")

    def backward() -> None:
        b.comment("L1 penalty: d/dp = l1·sign(p), added to each gradient")
        for p, sign, product in zip(params, signs, products):
            grad = b.grads.get(p)
            if grad is not None:
                b.emit(f"multiply({sign.name}, {l1_array}, out={product.name})",
                       f"{grad.name} += {product.name}")

    return backward


def clip_grad_norm(b: Builder, params: List[Any], max_norm: float) -> None:
    """Scale the gradients of `params` (in this order) as nn.utils.clip_grad_norm_
    does: by max_norm/(‖g‖₂ + 1e-6) when that is below 1."""
    grads = [b.grads[p].name for p in params if p in b.grads]
    if not grads:
        return
    b.comment(f"clip_grad_norm_(model.parameters(), {max_norm!r})")
    squares = " + ".join(f"float(vdot({g}, {g}))" for g in grads)
    b.emit(f"total_norm = math.sqrt({squares})",
           f"coef = {float(max_norm)!r} / (total_norm + 1e-6)",
           "if not coef >= 1.0:")
    b.emit(*[f"    {g} *= coef" for g in grads])
