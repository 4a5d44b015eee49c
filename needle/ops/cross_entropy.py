"""Softmax cross-entropy of logits and integer labels as one op (PyTorch's cross_entropy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import NDArray, Tensor, TensorOp
from ..backend_ndarray import fused
from .logarithmic import softmax
from .shape import broadcast_to, reshape


class SoftmaxCrossEntropy(TensorOp):
    """f(z) = logsumexp(z_i) - z_i[y_i] for logits z (N, C) and labels y (N,), averaged
    ("mean"), summed ("sum") or per row ("none"); df = (softmax(z) - onehot(y)) g, g over
    N for "mean" (SoftmaxCrossEntropyGrad).

    A primitive for speed: a log-softmax, a gather, a sum and a scale take four forward
    and about eleven backward nodes; this takes one and one. The labels are constants."""

    def __init__(self, labels: np.ndarray, reduction: str = "mean"):
        self.labels = labels
        self.reduction = reduction

    def compute(self, logits: NDArray) -> NDArray:
        loss, self.probs = fused.softmax_cross_entropy(logits, self.labels, self.reduction)
        return loss

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return SoftmaxCrossEntropyGrad(self.labels, self.reduction, self.probs)(
            node.inputs[0], out_grad)


def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "none") -> Tensor:
    """The softmax cross-entropy of ``logits`` (N, C) against class ids ``labels`` (N,) (a
    Tensor or array, integers or whole floats, no gradient): per row (N,) by default, or
    its "mean" or "sum"; a clear error for ids outside [0, C)."""
    ids = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if logits.ndim != 2 or ids.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{ids.shape}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if ids.dtype.kind == "f" and not np.array_equal(ids, np.round(ids)):
        raise ValueError(f"labels must be whole numbers, got dtype {ids.dtype} with fractions")
    ids = ids.astype(np.int64, copy=False)
    if ids.size and (ids.min() < 0 or ids.max() >= logits.shape[1]):
        raise IndexError(f"labels must lie in [0, {logits.shape[1]}), got values in "
                         f"[{ids.min()}, {ids.max()}]")
    return SoftmaxCrossEntropy(ids, reduction)(logits)


class SoftmaxCrossEntropyGrad(TensorOp):
    """f(z, g) = (s - onehot(y)) c with s = softmax(z) (cached from the forward pass) and
    c = g / N ("mean"), g ("sum") or g_i per row ("none").

    df/dz u = s (uc - sum(uc s)) per row (the softmax Jacobian at uc = u c);
    df/dg u = sum((s - onehot(y)) u), over N for "mean" (per row for "none")."""

    def __init__(self, labels: np.ndarray, reduction: str, probs: NDArray):
        self.labels = labels
        self.reduction = reduction
        self.probs = probs

    def _scale(self, g: Any, n: int) -> Any:
        """c: g / N for "mean", g for "sum" (a scalar), g as a column (N, 1) for "none"."""
        if self.reduction == "none":
            return g.reshape((n, 1))
        return g * (1 / n) if self.reduction == "mean" else g

    def compute(self, logits: NDArray, g: NDArray) -> NDArray:
        return fused.softmax_cross_entropy_grad(self.probs, self.labels,
                                                self._scale(g.compact(), logits.shape[0]))

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        logits, g = node.inputs
        n, classes = logits.shape
        probs = softmax(logits)
        scaled = out_grad * broadcast_to(self._scale(g, n), logits.shape)
        row_sums = reshape((scaled * probs).sum(1), (n, 1))
        grad_logits = probs * (scaled - broadcast_to(row_sums, logits.shape))
        minus_one_hot = Tensor.make_const(
            logits.device.one_hot(classes, self.labels, dtype=str(logits.dtype)) * -1)
        per_row = ((probs + minus_one_hot) * out_grad).sum(1)
        grad_g = per_row if self.reduction == "none" else self._scale(per_row.sum(), n)
        return grad_logits, grad_g
