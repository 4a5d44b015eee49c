"""Normalisation to zero mean and unit variance, with an optional per-channel affine map:
the core of BatchNorm and LayerNorm.

A primitive for speed. Composed from sums, broadcasts, products and divisions, one
BatchNorm records about fifteen graph nodes forward and more backward; as this op it
records one forward and five backward (NormalizeGrad for the input, two sums for weight
and bias), and each runs as one fused kernel. Gradients are still written in needle ops,
so second derivatives work.
"""

from __future__ import annotations

import math

from ..autograd import NDArray, Tensor, TensorOp
from ..backend_ndarray import fused
from .axes import Axes, keepdims_shape, normalize_axes
from .shape import broadcast_to, reshape

Shape = tuple[int, ...]


def _group_size(shape: Shape, axes: Shape) -> int:
    return math.prod(shape[a] for a in axes)


def _sum_kept(a: Tensor, axes: Shape) -> Tensor:
    """The sum of ``a`` over ``axes``, broadcast back to ``a``'s shape."""
    return broadcast_to(reshape(a.sum(axes), keepdims_shape(a.shape, axes)), a.shape)


def _inv_std(x: Tensor, axes: Shape, eps: float) -> Tensor:
    """1 / sqrt(var(x) + eps) over ``axes`` (biased variance), broadcast to x's shape."""
    n = _group_size(x.shape, axes)
    centered = x - _sum_kept(x, axes) / n
    return (_sum_kept(centered * centered, axes) / n + eps) ** -0.5


def _along(vector: Tensor, shape: Shape, channel_axis: int) -> Tensor:
    """A (C,) tensor laid along ``channel_axis`` and broadcast to ``shape``."""
    laid = reshape(vector, fused.channel_shape(len(shape), channel_axis, vector.shape[0]))
    return broadcast_to(laid, shape)


def _other_axes(ndim: int, channel_axis: int) -> Shape:
    return tuple(i for i in range(ndim) if i != channel_axis % ndim)


class Normalize(TensorOp):
    """f(x) = h = (x - mean x) r, r = 1 / sqrt(var x + eps), statistics over ``axes``
    (biased variance); with (C,) ``weight`` and ``bias`` along ``channel_axis``,
    f(x, w, b) = h w + b. df/dx g = r (g' - mean g' - h mean(g' h)) with g' = g w
    (NormalizeGrad); df/dw g = sum(g h), df/db g = sum(g) over the other axes.

    After ``compute`` the op keeps the batch ``mean`` and ``var`` (NDArrays keeping the
    reduced axes as size 1, e.g. for BatchNorm's running statistics), ``normalized`` (h)
    and ``inv_std``. Given ``normalized`` and ``inv_std`` it returns them without computing
    (the same h, recorded again as a function of x)."""

    def __init__(self, axes: Shape, eps: float = 1e-5, channel_axis: int = -1,
                 normalized: NDArray | None = None, inv_std: NDArray | None = None):
        self.axes = axes
        self.eps = eps
        self.channel_axis = channel_axis
        self.normalized = normalized
        self.inv_std = inv_std

    def compute(self, x: NDArray, weight: NDArray | None = None,
                bias: NDArray | None = None) -> NDArray:
        if self.normalized is None:
            self.normalized, self.mean, self.var, self.inv_std = fused.normalize(
                x, self.axes, self.eps)
        if weight is None or bias is None:
            return self.normalized
        return fused.affine(self.normalized, weight, bias, self.channel_axis)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = node.inputs[0]
        assert self.normalized is not None and self.inv_std is not None  # set by compute
        backward = NormalizeGrad(self.axes, self.eps, self.normalized, self.inv_std,
                                 self.channel_axis)
        if len(node.inputs) == 1:
            return backward(out_grad, x)
        others = _other_axes(x.ndim, self.channel_axis)
        normalized = Normalize(self.axes, self.eps, self.channel_axis, self.normalized,
                               self.inv_std)(x)
        return (backward(out_grad, x, node.inputs[1]), (out_grad * normalized).sum(others),
                out_grad.sum(others))


def normalize(x: Tensor, axes: Axes = -1, eps: float = 1e-5, weight: Tensor | None = None,
              bias: Tensor | None = None, channel_axis: int = -1) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (the last by default), then times
    ``weight`` plus ``bias`` when given: (C,) tensors along ``channel_axis``."""
    op = Normalize(normalize_axes(axes, x.ndim), eps, channel_axis)
    if weight is None or bias is None:
        return op(x)
    if weight.shape != (x.shape[channel_axis],) or bias.shape != weight.shape:
        raise ValueError(f"normalize: weight and bias must have shape ({x.shape[channel_axis]},) "
                         f"for input {x.shape} and channel_axis {channel_axis}, got "
                         f"{weight.shape} and {bias.shape}")
    return op(x, weight, bias)


class NormalizeGrad(TensorOp):
    """f(g, x[, w]) = r (g' - mean g' - h mean(g' h)), g' = g w (w (C,) along
    ``channel_axis``) or g: the adjoint of Normalize at x, where h = Normalize(x) and
    r = 1 / sqrt(var x + eps) come cached from the forward pass.

    With F(u) = f(u, x) (no weight): df/dg u = w F(u) (F is self-adjoint);
    df/dw u = sum(g F(u)) over the other axes; and
    df/dx u = -(r/n) [sum(u f) h + sum(g' h) F(u) + sum(u h) f], sums over the group."""

    def __init__(self, axes: Shape, eps: float, normalized: NDArray, inv_std: NDArray,
                 channel_axis: int = -1):
        self.axes = axes
        self.eps = eps
        self.normalized = normalized
        self.inv_std = inv_std
        self.channel_axis = channel_axis

    def compute(self, g: NDArray, x: NDArray, weight: NDArray | None = None) -> NDArray:
        return fused.normalize_grad(g, self.normalized, self.inv_std, self.axes, weight,
                                    self.channel_axis)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, ...]:
        g, x = node.inputs[:2]
        unweighted = NormalizeGrad(self.axes, self.eps, self.normalized, self.inv_std)
        adjoint = unweighted(out_grad, x)  # F(u)
        h = Normalize(self.axes, self.eps, self.channel_axis, self.normalized,
                      self.inv_std)(x)
        weight = _along(node.inputs[2], x.shape, self.channel_axis) \
            if len(node.inputs) == 3 else None
        g_eff = g if weight is None else g * weight
        n = _group_size(x.shape, self.axes)
        inner = _sum_kept(out_grad * node, self.axes) * h + \
            _sum_kept(g_eff * h, self.axes) * adjoint + _sum_kept(out_grad * h, self.axes) * node
        grad_x = -(_inv_std(x, self.axes, self.eps) / n) * inner
        if weight is None:
            return adjoint, grad_x
        others = _other_axes(x.ndim, self.channel_axis)
        return adjoint * weight, grad_x, (g * adjoint).sum(others)
