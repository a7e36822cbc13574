"""Loss functions as modules: `loss = criterion(output, target)`."""
from __future__ import annotations

from ..tensor import ArrayLike, Tensor
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = F.check_reduction(type(self).__name__, reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits against labels or probabilities (`F.cross_entropy`)."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.cross_entropy(input, target, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities at integer labels (`F.nll_loss`)."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.nll_loss(input, target, self.reduction)


class MSELoss(_Loss):
    """Squared error (`F.mse_loss`)."""

    def forward(self, input: Tensor, target: ArrayLike) -> Tensor:
        return F.mse_loss(input, target, self.reduction)
