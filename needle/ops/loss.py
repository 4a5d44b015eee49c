"""Softmax cross-entropy as a primitive: a large-vocabulary loss in few passes over logits.

Composed from ``logsoftmax`` and ``getitem``, the loss of a language model with a 10,000-word
vocabulary reads and writes its (tokens, 10,000) logits about a dozen times; here the
forward reads them four times and the gradient three, reusing the forward's logsumexp.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import NDArray, Tensor, TensorOp
from .broadcast import as_tensor
from .indexing import getitem
from .reduce import summation
from .shape import broadcast_to, reshape


def _rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(len(labels)), labels


class SoftmaxCrossEntropy(TensorOp):
    """f(z)_n = logsumexp(z_n) - z_n[y_n] for logits z (N, C) and class ids y (N,);
    df/dz_n = g_n (softmax(z_n) - onehot(y_n)). A primitive for speed (see the module)."""

    def __init__(self, labels: np.ndarray):
        self.labels = labels

    def compute(self, z: NDArray) -> NDArray:
        shift = z.max(axis=1, keepdims=True)
        shifted = z - shift.broadcast_to(z.shape)
        # kept for the gradient: e^(z - max) and its row sums give softmax(z) in one pass
        self.exp_shifted = shifted.exp()
        self.sum_exp = self.exp_shifted.sum(axis=1)
        # log sum e^(z - max) - (z_y - max): exact even where |z| is large
        return self.sum_exp.log() - shifted[_rows(self.labels)]

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        z = node.inputs[0]
        lse = node + getitem(z, _rows(self.labels))
        grad = SoftmaxCrossEntropyGrad(self.labels, self.exp_shifted, self.sum_exp)
        return grad(z, lse, out_grad)


class SoftmaxCrossEntropyGrad(TensorOp):
    """f(z, lse, g) = g[:, None] (exp(z - lse[:, None]) - onehot(y)): the gradient of
    ``SoftmaxCrossEntropy`` at z with logsumexp lse, computed from the forward's cached
    e^(z - max) and its row sums; differentiable again (second derivatives).
    With P = exp(z - lse) and adjoint V: dz = g V P, dlse = -sum(g V P), dg = sum(V P) - V[y]."""

    def __init__(self, labels: np.ndarray, exp_shifted: NDArray, sum_exp: NDArray):
        self.labels = labels
        self.exp_shifted = exp_shifted
        self.sum_exp = sum_exp

    def compute(self, z: NDArray, lse: NDArray, g: NDArray) -> NDArray:
        # exp(z - lse) is the forward's e^(z - max) / sum, cached: one pass over the logits
        scale = (g.compact() / self.sum_exp).reshape((z.shape[0], 1))
        out = self.exp_shifted * scale.broadcast_to(z.shape)
        out[_rows(self.labels)] = out[_rows(self.labels)] - g
        return out

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        z, lse, g = node.inputs
        column = (z.shape[0], 1)
        probs = (z - broadcast_to(reshape(lse, column), z.shape)).exp()
        weighted = out_grad * probs
        grad_z = weighted * broadcast_to(reshape(g, column), z.shape)
        grad_lse = -summation(grad_z, 1)
        grad_g = summation(weighted, 1) - getitem(out_grad, _rows(self.labels))
        return grad_z, grad_lse, grad_g


def softmax_cross_entropy(logits: Tensor, labels: Any) -> Tensor:
    """Per-example losses logsumexp(z_n) - z_n[y_n] (N,) of logits (N, C) and class ids y
    (N,) (a Tensor or array, no gradient); a clear error for ids outside [0, C)."""
    ids = labels.numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if logits.ndim != 2 or ids.shape != logits.shape[:1]:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{ids.shape}")
    if ids.dtype.kind == "f" and not np.array_equal(ids, np.round(ids)):
        raise ValueError(f"labels must be whole numbers, got dtype {ids.dtype} with fractions")
    ids = ids.astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= logits.shape[1]):
        raise IndexError(f"labels must lie in [0, {logits.shape[1]}), got values in "
                         f"[{ids.min()}, {ids.max()}]")
    return SoftmaxCrossEntropy(ids)(as_tensor(logits, logits))
