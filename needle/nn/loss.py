"""Loss functions: (prediction, target) -> a scalar (or per-sample) Tensor, PyTorch-style."""

from __future__ import annotations

from .. import init, ops
from ..autograd import Tensor
from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return losses
    total = losses.sum()
    return total if reduction == "sum" else total / max(losses.size, 1)


class _Loss(Module):
    """A loss with PyTorch's ``reduction``: "mean", "sum" or "none"."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _ElementwiseLoss(_Loss):
    """A loss of two tensors of one shape: ``pointwise(prediction, target)`` reduced."""

    def pointwise(self, prediction: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"{type(self).__name__} needs equal shapes, got prediction "
                             f"{prediction.shape} and target {target.shape}")
        return _reduce(self.pointwise(prediction, target), self.reduction)


class SoftmaxLoss(_Loss):
    """Mean over the batch of logsumexp(logits_i) - logits_i[y_i]; logits (N, C), y (N,)
    class ids (IndexError outside [0, C)). ``reduction`` "sum" or "none" (per sample, (N,))
    as in PyTorch."""

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        return ops.softmax_cross_entropy(logits, y, self.reduction)


class CrossEntropyLoss(SoftmaxLoss):
    """PyTorch's name for SoftmaxLoss: softmax cross-entropy of logits (N, C) and ids (N,)."""


class MSELoss(_ElementwiseLoss):
    """Mean of (prediction - target)^2 over all elements (shapes must match)."""

    def pointwise(self, prediction: Tensor, target: Tensor) -> Tensor:
        diff = prediction - target
        return diff * diff


class BCEWithLogitsLoss(_ElementwiseLoss):
    """Binary cross-entropy of logits z and targets y in [0, 1]: softplus(z) - z y, the
    stable form of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]."""

    def pointwise(self, logits: Tensor, target: Tensor) -> Tensor:
        zeros = init.zeros_like(logits)
        softplus = ops.logsumexp(ops.stack([zeros, logits], axis=0), axes=0)  # log(1 + e^z)
        return softplus - logits * target
