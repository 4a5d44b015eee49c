"""Softmax cross-entropy of logits and integer labels as one op (PyTorch's cross_entropy);
replaces ``loss.softmax_cross_entropy`` (logsumexp minus the picked logit)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd import NDArray, Tensor, TensorOp
from ...backend_ndarray import fused
from ...grad_mode import backward_frees_graph
from ...reference import replaces
from .. import loss
from .softmax import softmax


class SoftmaxCrossEntropy(TensorOp):
    """f(z) = logsumexp(z_i) - z_i[y_i] for logits z (N, C) and labels y (N,), averaged
    ("mean"), summed ("sum") or per row ("none"); df = (softmax(z) - onehot(y)) g, g over
    N for "mean" (SoftmaxCrossEntropyGrad).

    Replaces ``loss.softmax_cross_entropy``: a log-softmax, a gather, a sum and a scale take
    four forward and about eleven backward nodes; this takes one and one. The labels are
    constants; the softmax probabilities, as e^z (N, C) and the rows' 1 / sum e^z (N, 1)
    (``fused.softmax_cross_entropy``), are saved on the output node for the gradient."""

    saves = True

    def __init__(self, labels: np.ndarray, reduction: str = "mean"):
        self.labels = labels
        self.reduction = reduction

    def compute(self, logits: NDArray) -> tuple[NDArray, tuple[NDArray, NDArray]]:
        loss, exps, inv_sums = fused.softmax_cross_entropy(logits, self.labels, self.reduction)
        return loss, (exps, inv_sums)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        exps, inv_sums = node.saved
        grad = SoftmaxCrossEntropyGrad(self.labels, self.reduction, inv_sums,
                                       in_place=backward_frees_graph())
        return grad(node.inputs[0], out_grad, Tensor.make_const(exps))


@replaces(loss.softmax_cross_entropy)
def softmax_cross_entropy(logits: Tensor, labels: Any, reduction: str = "none") -> Tensor:
    """The softmax cross-entropy of ``logits`` (N, C) against class ids ``labels`` (N,) (a
    Tensor or array, integers or whole floats, no gradient): per row (N,) by default, or
    its "mean" or "sum"; a clear error for ids outside [0, C)."""
    return SoftmaxCrossEntropy(loss.check_cross_entropy(logits, labels, reduction),
                               reduction)(logits)


class SoftmaxCrossEntropyGrad(TensorOp):
    """f(z, g, e) = (s - onehot(y)) c with s = softmax(z) = e r, the forward pass's e^z (a
    constant input) times its rows' 1 / sum e^z (``inv_sums`` r, a constant like the
    labels), and c = g / N ("mean"), g ("sum") or g_i per row ("none").

    df/dz u = s (uc - sum(uc s)) per row (the softmax Jacobian at uc = u c);
    df/dg u = sum((s - onehot(y)) u), over N for "mean" (per row for "none")."""

    def __init__(self, labels: np.ndarray, reduction: str, inv_sums: NDArray,
                 in_place: bool = False):
        self.labels = labels
        self.reduction = reduction
        self.inv_sums = inv_sums
        self.in_place = in_place

    def _scale(self, g: Any, n: int) -> Any:
        """c: g / N for "mean", g for "sum" (a scalar), g as a column (N, 1) for "none"."""
        if self.reduction == "none":
            return g.reshape((n, 1))
        return g * (1 / n) if self.reduction == "mean" else g

    def compute(self, logits: NDArray, g: NDArray, exps: NDArray) -> NDArray:
        return fused.softmax_cross_entropy_grad(exps, self.inv_sums, self.labels,
                                                self._scale(g.compact(), logits.shape[0]),
                                                in_place=self.in_place)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor, None]:
        logits, g, _ = node.inputs
        n, classes = logits.shape
        probs = softmax(logits)
        scaled = out_grad * self._scale(g, n).broadcast_to(logits.shape)
        row_sums = (scaled * probs).sum(1).reshape((n, 1))
        grad_logits = probs * (scaled - row_sums.broadcast_to(logits.shape))
        minus_one_hot = Tensor.make_const(
            logits.device.one_hot(classes, self.labels, dtype=str(logits.dtype)) * -1)
        per_row = ((probs + minus_one_hot) * out_grad).sum(1)
        grad_g = per_row if self.reduction == "none" else self._scale(per_row.sum(), n)
        return grad_logits, grad_g, None
