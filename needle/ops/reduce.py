"""Reductions: sum and max over axes (int, tuple or None for all)."""

from __future__ import annotations

from ..autograd import NDArray, Tensor, TensorOp
from .axes import Axes, as_array_axes, keepdims_shape, normalize_axes


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
        kept = out_grad if self.keepdims else reshape(out_grad, keepdims_shape(shape, self.axes))
        return broadcast_to(kept, shape)


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
        is_max = astype(a == broadcast_to(reshape(node, kept), a.shape), out_grad.dtype)
        count = broadcast_to(reshape(summation(is_max, self.axes), kept), a.shape)
        return broadcast_to(reshape(out_grad, kept), a.shape) * is_max / count


def max(a: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    axes = normalize_axes(axes, a.ndim)
    out = Max(axes)(a)
    return reshape(out, keepdims_shape(a.shape, axes)) if keepdims else out


from .elementwise import astype  # noqa: E402
from .shape import broadcast_to, reshape  # noqa: E402
