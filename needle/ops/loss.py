"""Softmax cross-entropy of logits and integer class ids, composed from log-softmax.

The fused ``fused.softmax_cross_entropy`` replaces ``softmax_cross_entropy`` below.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from .logarithmic import logsoftmax

REDUCTIONS = ("mean", "sum", "none")


def class_ids(labels: Any, classes: int, what: str = "labels") -> np.ndarray:
    """``labels`` (a Tensor or array of integers or whole floats) as an int64 array, or a
    clear error for fractions and for ids outside [0, classes)."""
    ids = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if ids.dtype.kind == "f" and not np.array_equal(ids, np.round(ids)):
        raise ValueError(f"{what} must be whole numbers, got dtype {ids.dtype} with fractions")
    if ids.dtype.kind not in "fiub":
        raise TypeError(f"{what} must be integers, got dtype {ids.dtype}")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= classes):
        raise IndexError(f"{what} must lie in [0, {classes}), got values in "
                         f"[{ids.min()}, {ids.max()}]")
    return ids


def check_cross_entropy(logits: Tensor, labels: Any, reduction: str) -> np.ndarray:
    """The class ids for logits (N, C), or a clear error for bad shapes and reductions."""
    shape = labels.shape if isinstance(labels, Tensor) else np.shape(labels)
    if logits.ndim != 2 or tuple(shape) != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{tuple(shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return class_ids(labels, logits.shape[1])


def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "none") -> Tensor:
    """-log softmax(z_i)[y_i] = logsumexp(z_i) - z_i[y_i] for logits z (N, C) and class ids
    y (N,) (no gradient): per row (N,) by default, or its "mean" or "sum". (log softmax
    never adds the max back, so large logits lose no precision.)"""
    ids = check_cross_entropy(logits, labels, reduction)
    one_hot = Tensor.make_const(logits.device.one_hot(logits.shape[1], ids,
                                                      dtype=str(logits.dtype)))
    losses = -(logsoftmax(logits) * one_hot).sum(1)
    if reduction == "none":
        return losses
    total = losses.sum()
    return total / max(logits.shape[0], 1) if reduction == "mean" else total
