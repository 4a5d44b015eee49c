"""Reductions: sum and max over axes (int, tuple or None for all)."""

from __future__ import annotations

from ..autograd import NDArray, Tensor, TensorOp
from .axes import Axes, as_array_axes, keepdims_shape, normalize_axes
from .elementwise import astype


class Summation(TensorOp):
    """f(a) = sum of a over ``axes`` (kept as size 1 with ``keepdims``); df = g broadcast
    back over those axes."""

    def __init__(self, axes: Axes = None, keepdims: bool = False):
        self.axes = as_array_axes(axes)
        self.keepdims = keepdims

    def compute(self, a: NDArray) -> NDArray:
        return a.sum(axis=self.axes, keepdims=self.keepdims)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        shape = node.inputs[0].shape
        kept = out_grad if self.keepdims else out_grad.reshape(keepdims_shape(shape, self.axes))
        return kept.broadcast_to(shape)


def summation(a: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    return Summation(normalize_axes(axes, a.ndim), keepdims)(a)


class Max(TensorOp):
    """f(a) = max of a over ``axes``; df = g split evenly among the maximal entries."""

    def __init__(self, axes: Axes = None):
        self.axes = as_array_axes(axes)

    def compute(self, a: NDArray) -> NDArray:
        return a.max(axis=self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        a = node.inputs[0]
        kept = keepdims_shape(a.shape, self.axes)
        is_max = astype(a == node.reshape(kept).broadcast_to(a.shape), out_grad.dtype)
        count = summation(is_max, self.axes, keepdims=True).broadcast_to(a.shape)
        return out_grad.reshape(kept).broadcast_to(a.shape) * is_max / count


def amax(a: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """The max over ``axes`` (numpy's and PyTorch's amax; ``ndl.max`` is this function)."""
    axes = normalize_axes(axes, a.ndim)
    out = Max(axes)(a)
    return out.reshape(keepdims_shape(a.shape, axes)) if keepdims else out

