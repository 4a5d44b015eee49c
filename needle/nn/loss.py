"""Loss functions: (prediction, target) -> a scalar (or per-sample) Tensor, PyTorch-style."""

from __future__ import annotations

import numpy as np

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


def _class_ids(y: Tensor | np.ndarray, logits: Tensor) -> np.ndarray:
    """Labels as an int array of shape (N,), checked against the logits (N, C)."""
    labels = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
    if labels.shape != logits.shape[:1] or logits.ndim != 2:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{labels.shape}")
    labels = labels.astype(np.int64, copy=False)  # float ids (e.g. language-model targets)
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


class SoftmaxLoss(Module):
    """Mean over the batch of logsumexp(logits_i) - logits_i[y_i]; logits (N, C), y (N,)
    integer class ids. ``reduction`` "sum" or "none" (per sample, (N,)) as in PyTorch."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        labels = _class_ids(y, logits)
        picked = ops.logsoftmax(logits)[np.arange(logits.shape[0]), labels]
        if self.reduction == "mean":  # one scale op instead of a negation and a division
            return picked.sum() * (-1.0 / max(logits.shape[0], 1))
        return _reduce(-picked, self.reduction)


class CrossEntropyLoss(SoftmaxLoss):
    """PyTorch's name for SoftmaxLoss: softmax cross-entropy of logits (N, C) and ids (N,)."""


class MSELoss(Module):
    """Mean of (prediction - target)^2 over all elements (shapes must match)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"MSELoss needs equal shapes, got prediction {prediction.shape} "
                             f"and target {target.shape}")
        diff = prediction - target
        return _reduce(diff * diff, self.reduction)


class BCEWithLogitsLoss(Module):
    """Binary cross-entropy of logits z and targets y in [0, 1]: softplus(z) - z y, the
    stable form of -[y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))]."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction(reduction)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        if logits.shape != target.shape:
            raise ValueError(f"BCEWithLogitsLoss needs equal shapes, got logits {logits.shape} "
                             f"and target {target.shape}")
        zeros = init.zeros_like(logits)
        softplus = ops.logsumexp(ops.stack([zeros, logits], axis=0), axes=0)  # log(1 + e^z)
        return _reduce(softplus - logits * target, self.reduction)
