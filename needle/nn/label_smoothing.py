"""Label-smoothing cross-entropy (fast.ai's LabelSmoothingCrossEntropy)."""

from __future__ import annotations

from .. import ops
from ..autograd import Tensor
from .loss import _Loss, _reduce


class LabelSmoothingCrossEntropy(_Loss):
    """(1 - eps) CE(logits, y) + eps mean_c(-log softmax(logits)_c): the cross-entropy against
    targets 1 - eps + eps / C on the true class and eps / C elsewhere, as PyTorch's
    ``CrossEntropyLoss(label_smoothing=eps)``; logits (N, C), y (N,) class ids."""

    def __init__(self, eps: float = 0.1, reduction: str = "mean"):
        super().__init__(reduction)
        if not 0 <= eps <= 1:
            raise ValueError(f"LabelSmoothingCrossEntropy needs 0 <= eps <= 1, got {eps}")
        self.eps = eps

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        nll = ops.softmax_cross_entropy(logits, y, "none")
        uniform = ops.logsoftmax(logits).sum(axes=1) * (-1.0 / logits.shape[1])
        return _reduce(nll * (1 - self.eps) + uniform * self.eps, self.reduction)

    def extra_repr(self) -> str:
        return f"eps={self.eps}, reduction={self.reduction!r}"
