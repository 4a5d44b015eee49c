"""Numerically stable log-sum-exp, log-softmax and softmax: primitives for stability."""

from __future__ import annotations

import math

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor, TensorOp
from .axes import Axes, as_array_axes, keepdims_shape, normalize_axes, reduced_shape
from .elementwise import exp
from .reduce import summation
from .shape import broadcast_to, reshape


def _shift_by_max(a: NDArray, axes: Axes) -> tuple[NDArray, NDArray]:
    """(a - max, max) over ``axes`` with keepdims: exp(a - max) <= 1 never overflows."""
    shift = a.max(axis=axes, keepdims=True)
    return a - shift.broadcast_to(a.shape), shift


def _stable_lse(a: NDArray, axes: Axes) -> NDArray:
    """log sum exp over ``axes`` with keepdims, shifting by the max so nothing overflows."""
    if a.size == 0:  # the log of an empty sum is -inf (PyTorch); the max would be undefined
        return nd.full(keepdims_shape(a.shape, axes), -math.inf, a.dtype, a.device)
    shifted, shift = _shift_by_max(a, axes)
    return shifted.exp().sum(axis=axes, keepdims=True).log() + shift


class LogSumExp(TensorOp):
    """f(a) = log sum_i exp a_i over ``axes``; df = g softmax(a), finite for any input."""

    def __init__(self, axes: Axes = None):
        self.axes = as_array_axes(axes)

    def compute(self, a: NDArray) -> NDArray:
        return _stable_lse(a, self.axes).reshape(reduced_shape(a.shape, self.axes))

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        a = node.inputs[0]
        kept = keepdims_shape(a.shape, self.axes)
        softmax = exp(a - broadcast_to(reshape(node, kept), a.shape))
        return broadcast_to(reshape(out_grad, kept), a.shape) * softmax


def logsumexp(a: Tensor, axes: Axes = None) -> Tensor:
    return LogSumExp(normalize_axes(axes, a.ndim))(a)


class LogSoftmax(TensorOp):
    """f(a) = a - logsumexp(a) along ``axis``; df = g - softmax(a) sum(g)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def compute(self, a: NDArray) -> NDArray:
        if a.size == 0:
            return a
        # (a - max) - log sum exp(a - max): never adds the max back, which would round
        # away the small terms in float32 when |a| is large
        shifted, _ = _shift_by_max(a, self.axis)
        return shifted - shifted.exp().sum(axis=self.axis, keepdims=True).log().broadcast_to(
            a.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        total = summation(out_grad, self.axis, keepdims=True)
        return out_grad - exp(node) * broadcast_to(total, node.shape)


def logsoftmax(a: Tensor, axis: int = -1) -> Tensor:
    """log softmax along ``axis`` (the last axis by default, as for 2-D logits)."""
    return LogSoftmax(normalize_axes(axis, a.ndim)[0])(a)
