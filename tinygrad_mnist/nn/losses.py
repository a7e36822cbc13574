"""Loss functions as modules: `loss = criterion(output, target)`."""
from __future__ import annotations

from typing import Optional

from ..tensor import ArrayLike, Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = F.check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    """A loss with PyTorch's `weight`, kept as a buffer (in `state_dict`, as PyTorch's);
    size_average and reduce hold their places, as in PyTorch, but only `reduction` is
    taken."""

    def __init__(self, weight: Optional[ArrayLike] = None, size_average: None = None,
                 reduce: None = None, reduction: str = "mean"):
        F.check_legacy(type(self).__name__, size_average, reduce)
        if isinstance(weight, str):
            raise TypeError(f"{type(self).__name__}: weight must be a tensor of weights, "
                            f"got the string {weight!r} (give reduction={weight!r} by name)")
        super().__init__(reduction)
        self.register_buffer("weight", weight)


class _LabelLoss(_WeightedLoss):
    """A loss of integer class labels: per-class `weight` and `ignore_index`."""

    def __init__(self, weight: Optional[ArrayLike] = None, size_average: None = None,
                 ignore_index: int = -100, reduce: None = None, reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)


class CrossEntropyLoss(_LabelLoss):
    """Softmax cross-entropy of logits against labels or probabilities (`F.cross_entropy`)."""

    def __init__(self, weight: Optional[ArrayLike] = None, size_average: None = None,
                 ignore_index: int = -100, reduce: None = None, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__(weight, size_average, ignore_index, reduce, reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_LabelLoss):
    """Negative log-likelihood of log-probabilities at integer labels (`F.nll_loss`)."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    """Squared error (`F.mse_loss`)."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.mse_loss(input, target, self.reduction)


class L1Loss(_Loss):
    """Absolute error (`F.l1_loss`)."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.l1_loss(input, target, self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (`F.binary_cross_entropy`); `weight` scales
    each element's loss."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Binary cross-entropy of logits (`F.binary_cross_entropy_with_logits`), with
    PyTorch's `weight` and `pos_weight`."""

    def __init__(self, weight: Optional[ArrayLike] = None, size_average: None = None,
                 reduce: None = None, reduction: str = "mean",
                 pos_weight: Optional[ArrayLike] = None):
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
