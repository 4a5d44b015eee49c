"""Normalisation to zero mean and unit variance, with an optional per-channel affine map,
as one op: replaces ``norm.normalize`` and ``norm.batch_norm``.

Composed from sums, broadcasts, products and divisions, one BatchNorm records about
fifteen graph nodes forward and more backward; as this op it records one forward node and
one backward op (NormalizeAffineGrad, with its three outputs), each a single fused kernel.
The gradients of the gradient ops are written in needle ops, so second derivatives work.
The forward pass's h = (x - mean) r and r = 1 / sqrt(var + eps) are saved on the output
node and handed to the gradient ops as constant inputs.
"""

from __future__ import annotations

import math
from typing import Any

from ...autograd import NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp
from ...backend_ndarray import Shape, fused
from ...reference import replaces
from .. import norm
from ..axes import Axes, keepdims_shape, normalize_axes
from ..norm import along


def _group_size(shape: Shape, axes: Shape) -> int:
    return math.prod(shape[a] for a in axes)


def _sum_kept(a: Tensor, axes: Shape) -> Tensor:
    """The sum of ``a`` over ``axes``, broadcast back to ``a``'s shape."""
    return a.sum(axes, keepdims=True).broadcast_to(a.shape)


def _inv_std(x: Tensor, axes: Shape, eps: float) -> Tensor:
    """1 / sqrt(var(x) + eps) over ``axes`` (biased variance), broadcast to x's shape."""
    n = _group_size(x.shape, axes)
    centered = x - _sum_kept(x, axes) / n
    return (_sum_kept(centered * centered, axes) / n + eps) ** -0.5


def _other_axes(ndim: int, channel_axis: int) -> Shape:
    return tuple(i for i in range(ndim) if i != channel_axis % ndim)


class Normalize(TensorOp):
    """f(x) = h = (x - mean x) r, r = 1 / sqrt(var x + eps), statistics over ``axes``
    (biased variance); with (C,) ``weight`` and ``bias`` along ``channel_axis``,
    f(x, w, b) = h w + b. df/dx g = r (g' - mean g' - h mean(g' h)) with g' = g w
    (NormalizeGrad); df/dw g = sum(g h), df/db g = sum(g) over the other axes.

    Saves (h, mean, var, r) on the output node, the statistics keeping the reduced axes
    as size 1 (``batch_norm`` returns mean and var for BatchNorm's running statistics)."""

    saves = True

    def __init__(self, axes: Shape, eps: float = 1e-5, channel_axis: int = -1):
        self.axes = axes
        self.eps = eps
        self.channel_axis = channel_axis

    def compute(self, x: NDArray, weight: NDArray | None = None,
                bias: NDArray | None = None) -> tuple[NDArray, tuple[NDArray, ...]]:
        saved = fused.normalize(x, self.axes, self.eps)
        if weight is None or bias is None:
            return saved[0], saved
        return fused.affine(saved[0], weight, bias, self.channel_axis), saved

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor | tuple[Tensor, ...]:
        x = node.inputs[0]
        normalized, inv_std = Tensor.make_const(node.saved[0]), Tensor.make_const(node.saved[3])
        if len(node.inputs) == 1:
            return NormalizeGrad(self.axes, self.eps)(out_grad, x, normalized, inv_std)
        grads = NormalizeAffineGrad(self.axes, self.eps, self.channel_axis)(
            out_grad, x, node.inputs[1], normalized, inv_std)
        return grads[0], grads[1], grads[2]


@replaces(norm.batch_norm)
def batch_norm(x: Tensor, axes: Axes = -1, eps: float = 1e-5, weight: Tensor | None = None,
               bias: Tensor | None = None,
               channel_axis: int = -1) -> tuple[Tensor, Tensor, Tensor]:
    """(y, mean, var) as ``norm.batch_norm``: mean and var are the saved statistics."""
    norm.check_affine(x, weight, bias, channel_axis)
    op = Normalize(normalize_axes(axes, x.ndim), eps, channel_axis)
    y = op(x) if weight is None or bias is None else op(x, weight, bias)
    _, mean, var, _ = y.saved
    return y, Tensor.make_const(mean), Tensor.make_const(var)


@replaces(norm.normalize)
def normalize(x: Tensor, axes: Axes = -1, eps: float = 1e-5, weight: Tensor | None = None,
              bias: Tensor | None = None, channel_axis: int = -1) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (the last by default), then times
    ``weight`` plus ``bias`` when given: (C,) tensors along ``channel_axis``."""
    return batch_norm.fused(x, axes, eps, weight, bias, channel_axis)[0]  # type: ignore


class NormalizeGrad(TensorOp):
    """f(g, x, h, r) = r (g - mean g - h mean(g h)), the adjoint of Normalize at x, where
    h = Normalize(x) and r = 1 / sqrt(var x + eps) are the forward pass's (constants).

    f is linear and self-adjoint in g, so df/dg u = f(u, x); and
    df/dx u = -(r/n) [sum(u f) h + sum(g h) f(u, x) + sum(u h) f], sums over the group."""

    def __init__(self, axes: Shape, eps: float):
        self.axes = axes
        self.eps = eps

    def compute(self, g: NDArray, x: NDArray, normalized: NDArray,
                inv_std: NDArray) -> NDArray:
        return fused.normalize_grad(g, normalized, inv_std, self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Any, ...]:
        g, x, normalized, inv_std = node.inputs
        adjoint = self.again(out_grad, x, normalized, inv_std)
        return adjoint, self.adjoint_x(out_grad, node, g, x, adjoint), None, None

    def again(self, g: Tensor, x: Tensor, normalized: Tensor, inv_std: Tensor) -> Tensor:
        """This adjoint map applied to another g (same x, same forward values)."""
        return NormalizeGrad(self.axes, self.eps)(g, x, normalized, inv_std)

    def adjoint_x(self, u: Tensor, f: Tensor, g: Tensor, x: Tensor, f_u: Tensor) -> Tensor:
        """d<u, f(g, x)>/dx = -(r/n) [sum(u f) h + sum(g h) f(u, x) + sum(u h) f], with h
        recomputed as a function of x (second derivatives are rare)."""
        h, axes = Normalize(self.axes, self.eps)(x), self.axes
        inner = _sum_kept(u * f, axes) * h + _sum_kept(g * h, axes) * f_u + \
            _sum_kept(u * h, axes) * f
        return -(_inv_std(x, axes, self.eps) / _group_size(x.shape, axes)) * inner


class NormalizeAffineGrad(TensorTupleOp):
    """f(g, x, w, h, r) = (dx, dw, db), the adjoints of Normalize(x, w, b) = h w + b:
    dx = F(g w) with F the adjoint map of Normalize (NormalizeGrad), dw = sum(g h) and
    db = sum(g) over the axes other than ``channel_axis``; one fused kernel for all three.

    Its own gradient, for cotangents (u, u_w, u_b): to g, w F(u) + u_w h + u_b; to x, the
    x-adjoint of F at g w plus F(g u_w); to w, sum(g F(u)) (w, u_w, u_b laid along the
    channel axis)."""

    def __init__(self, axes: Shape, eps: float, channel_axis: int):
        self.adjoint_map = NormalizeGrad(axes, eps)
        self.channel_axis = channel_axis

    def compute(self, g: NDArray, x: NDArray, weight: NDArray, normalized: NDArray,
                inv_std: NDArray) -> tuple[NDArray, ...]:
        return fused.normalize_affine_grad(g, normalized, inv_std, self.adjoint_map.axes,
                                           weight, self.channel_axis)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Any, ...]:
        g, x, weight, normalized, inv_std = node.inputs
        u, u_weight, u_bias = out_grad[0], out_grad[1], out_grad[2]
        adjoint, axis = self.adjoint_map, self.channel_axis
        w = along(weight, x.shape, axis)
        f_u = adjoint.again(u, x, normalized, inv_std)
        h = Normalize(adjoint.axes, adjoint.eps)(x)
        grad_g = w * f_u + along(u_weight, x.shape, axis) * h + along(u_bias, x.shape, axis)
        grad_x = adjoint.adjoint_x(u, node[0], g * w, x, f_u) + \
            adjoint.again(g * along(u_weight, x.shape, axis), x, normalized, inv_std)
        return grad_g, grad_x, (g * f_u).sum(_other_axes(x.ndim, axis)), None, None
