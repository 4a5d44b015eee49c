"""Normalisation to zero mean and unit variance, with an optional per-channel affine map:
the core of BatchNorm and LayerNorm.

A primitive for speed. Composed from sums, broadcasts, products and divisions, one
BatchNorm records about fifteen graph nodes forward and more backward; as this op it
records one forward node and one backward op (NormalizeAffineGrad, with its three
outputs), each a single fused kernel. The gradients of the gradient ops are written in
needle ops, so second derivatives work.
"""

from __future__ import annotations

import math

from ..autograd import NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp
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
        if len(node.inputs) == 1:
            return NormalizeGrad(self.axes, self.eps, self.normalized, self.inv_std)(out_grad, x)
        grads = NormalizeAffineGrad(self.axes, self.eps, self.normalized, self.inv_std,
                                    self.channel_axis)(out_grad, x, node.inputs[1])
        return grads[0], grads[1], grads[2]


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
    """f(g, x) = r (g - mean g - h mean(g h)), the adjoint of Normalize at x, where
    h = Normalize(x) and r = 1 / sqrt(var x + eps) come cached from the forward pass.

    f is linear and self-adjoint in g, so df/dg u = f(u, x); and
    df/dx u = -(r/n) [sum(u f) h + sum(g h) f(u, x) + sum(u h) f], sums over the group."""

    def __init__(self, axes: Shape, eps: float, normalized: NDArray, inv_std: NDArray):
        self.axes = axes
        self.eps = eps
        self.normalized = normalized
        self.inv_std = inv_std

    def compute(self, g: NDArray, x: NDArray) -> NDArray:
        return fused.normalize_grad(g, self.normalized, self.inv_std, self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        g, x = node.inputs
        adjoint = self.again(out_grad, x)
        return adjoint, self.adjoint_x(out_grad, node, g, x, adjoint)

    def again(self, g: Tensor, x: Tensor) -> Tensor:
        """This adjoint map applied to another g (same x, same cached forward values)."""
        return NormalizeGrad(self.axes, self.eps, self.normalized, self.inv_std)(g, x)

    def normalized_of(self, x: Tensor) -> Tensor:
        """h = Normalize(x) as a node of the graph, from the cached values."""
        return Normalize(self.axes, self.eps, -1, self.normalized, self.inv_std)(x)

    def adjoint_x(self, u: Tensor, f: Tensor, g: Tensor, x: Tensor, f_u: Tensor) -> Tensor:
        """d<u, f(g, x)>/dx = -(r/n) [sum(u f) h + sum(g h) f(u, x) + sum(u h) f]."""
        h, axes = self.normalized_of(x), self.axes
        inner = _sum_kept(u * f, axes) * h + _sum_kept(g * h, axes) * f_u + \
            _sum_kept(u * h, axes) * f
        return -(_inv_std(x, axes, self.eps) / _group_size(x.shape, axes)) * inner


class NormalizeAffineGrad(TensorTupleOp):
    """f(g, x, w) = (dx, dw, db), the adjoints of Normalize(x, w, b) = h w + b:
    dx = F(g w) with F the adjoint map of Normalize (NormalizeGrad), dw = sum(g h) and
    db = sum(g) over the axes other than ``channel_axis``; one fused kernel for all three.

    Its own gradient, for cotangents (u, u_w, u_b): to g, w F(u) + u_w h + u_b; to x, the
    x-adjoint of F at g w plus F(g u_w); to w, sum(g F(u)) (w, u_w, u_b laid along the
    channel axis)."""

    def __init__(self, axes: Shape, eps: float, normalized: NDArray, inv_std: NDArray,
                 channel_axis: int):
        self.adjoint_map = NormalizeGrad(axes, eps, normalized, inv_std)
        self.channel_axis = channel_axis

    def compute(self, g: NDArray, x: NDArray, weight: NDArray) -> tuple[NDArray, ...]:
        adjoint = self.adjoint_map
        return fused.normalize_affine_grad(g, adjoint.normalized, adjoint.inv_std,
                                           adjoint.axes, weight, self.channel_axis)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Tensor, ...]:
        g, x, weight = node.inputs
        u, u_weight, u_bias = out_grad[0], out_grad[1], out_grad[2]
        adjoint, axis = self.adjoint_map, self.channel_axis
        w = _along(weight, x.shape, axis)
        f_u, h = adjoint.again(u, x), adjoint.normalized_of(x)
        grad_g = w * f_u + _along(u_weight, x.shape, axis) * h + _along(u_bias, x.shape, axis)
        grad_x = adjoint.adjoint_x(u, node[0], g * w, x, f_u) + \
            adjoint.again(g * _along(u_weight, x.shape, axis), x)
        return grad_g, grad_x, (g * f_u).sum(_other_axes(x.ndim, axis))
