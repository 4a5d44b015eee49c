"""Loss functions: (prediction, target) -> a scalar (or per-sample) Tensor, PyTorch-style."""

from __future__ import annotations

from typing import Any

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


class CrossEntropyLoss(_Loss):
    """PyTorch's CrossEntropyLoss: softmax cross-entropy of logits (N, C) or (N, C, d1, ...)
    and class ids (N,) or (N, d1, ...). Targets equal to ``ignore_index`` add nothing (and
    "mean" averages over the others); ``label_smoothing`` ε mixes the one-hot target with
    the uniform: loss = (1 - ε) nll + ε mean_c(-log p_c). See ``functional.cross_entropy``."""

    def __init__(self, weight: None | str = None, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        if isinstance(weight, str):  # needle's earlier CrossEntropyLoss(reduction) still works
            reduction = weight
        super().__init__(reduction)
        if weight is not None and not isinstance(weight, str):
            raise NotImplementedError("CrossEntropyLoss(weight=...) (class weights) is not "
                                      "supported; see docs/compat.md")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(logits, target, self.ignore_index, self.reduction,
                             self.label_smoothing)

    def extra_repr(self) -> str:
        return f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, " \
               f"label_smoothing={self.label_smoothing}"


def cross_entropy(logits: Tensor, target: Any, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """PyTorch's ``F.cross_entropy`` for logits (N, C, d1, ...) and ids (N, d1, ...). The
    plain (N, C) case with nothing ignored or smoothed is the fused softmax cross-entropy."""
    _check_reduction(reduction)
    ids = np.asarray(target.numpy() if isinstance(target, Tensor) else target)
    if logits.ndim < 2 or ids.shape != (logits.shape[0],) + logits.shape[2:]:
        raise ValueError(f"cross_entropy expects logits (N, C, d1, ...) and class ids "
                         f"(N, d1, ...), got shapes {logits.shape} and {ids.shape}")
    ignored = ids == ignore_index
    if logits.ndim == 2 and label_smoothing == 0.0 and not ignored.any():
        return ops.softmax_cross_entropy(logits, target, reduction)
    classes = logits.shape[1]
    if logits.ndim > 2:  # classes last, then one row per position
        order = (0,) + tuple(range(2, logits.ndim)) + (1,)
        logits = ops.permute(logits, order)
    rows = logits.reshape((-1, classes))
    flat, keep = ids.reshape(-1).astype(np.int64), ~ignored.reshape(-1)
    if keep.any() and (flat[keep].min() < 0 or flat[keep].max() >= classes):
        raise IndexError(f"cross_entropy: class ids must lie in [0, {classes}) (or equal "
                         f"ignore_index={ignore_index}), got values in "
                         f"[{flat[keep].min()}, {flat[keep].max()}]")
    log_p = ops.logsoftmax(rows, -1)
    losses = -log_p[np.arange(len(flat)), np.where(keep, flat, 0)]
    if label_smoothing:
        losses = losses * (1 - label_smoothing) - log_p.mean(1) * label_smoothing
    losses = losses * Tensor(keep.astype(losses.dtype), device=losses.device,
                             requires_grad=False)
    if reduction == "none":
        return losses.reshape(ids.shape)
    total = losses.sum()
    return total if reduction == "sum" else total / float(keep.sum())


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
