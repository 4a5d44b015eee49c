"""Normalisation to zero mean and unit variance: the core of BatchNorm and LayerNorm.

A primitive for speed. Composed from sums, broadcasts and divisions, one normalisation
records about a dozen graph nodes forward and twice that backward; as one op with one
gradient op it records two. Both still have gradients written in needle ops, so second
derivatives work.
"""

from __future__ import annotations

import math

from ..autograd import NDArray, Tensor, TensorOp
from .axes import Axes, keepdims_shape, normalize_axes
from .shape import broadcast_to, reshape


def _group_size(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return math.prod(shape[a] for a in axes)


def _sum_kept(a: Tensor, axes: tuple[int, ...]) -> Tensor:
    """The sum of ``a`` over ``axes``, broadcast back to ``a``'s shape."""
    return broadcast_to(reshape(a.sum(axes), keepdims_shape(a.shape, axes)), a.shape)


def _inv_std(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    """1 / sqrt(var(x) + eps) over ``axes`` (biased variance), broadcast to x's shape."""
    n = _group_size(x.shape, axes)
    centered = x - _sum_kept(x, axes) / n
    return (_sum_kept(centered * centered, axes) / n + eps) ** -0.5


class Normalize(TensorOp):
    """f(x) = (x - mean x) r, r = 1 / sqrt(var x + eps), statistics over ``axes`` (biased
    variance); f'(x) g = r (g - mean g - f mean(g f)), computed by NormalizeGrad.

    After ``compute`` the op keeps the batch ``mean`` and ``var`` (keepdims NDArrays,
    e.g. for BatchNorm's running statistics) and ``inv_std`` for the gradient."""

    def __init__(self, axes: tuple[int, ...], eps: float = 1e-5):
        self.axes = axes
        self.eps = eps

    def compute(self, x: NDArray) -> NDArray:
        n = _group_size(x.shape, self.axes)
        self.mean = x.sum(axis=self.axes, keepdims=True) / n
        centered = x - self.mean.broadcast_to(x.shape)
        self.var = (centered * centered).sum(axis=self.axes, keepdims=True) / n
        self.inv_std = ((self.var + self.eps) ** -0.5).broadcast_to(x.shape)
        return centered * self.inv_std

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return NormalizeGrad(self.axes, self.eps, node.cached_data, self.inv_std)(
            out_grad, node.inputs[0])


def normalize(x: Tensor, axes: Axes = -1, eps: float = 1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (the last by default)."""
    return Normalize(normalize_axes(axes, x.ndim), eps)(x)


class NormalizeGrad(TensorOp):
    """f(g, x) = r (g - mean g - h mean(g h)), the adjoint of Normalize at x, where
    h = Normalize(x) and r = 1 / sqrt(var x + eps) come cached from the forward pass.

    f is linear and self-adjoint in g, so df/dg u = f(u, x); and
    df/dx u = -(r/n) [sum(u f) h + sum(g h) f(u, x) + sum(u h) f], sums over the group."""

    def __init__(self, axes: tuple[int, ...], eps: float, normalized: NDArray,
                 inv_std: NDArray):
        self.axes = axes
        self.eps = eps
        self.normalized = normalized
        self.inv_std = inv_std

    def compute(self, g: NDArray, x: NDArray) -> NDArray:
        n = _group_size(g.shape, self.axes)
        h = self.normalized
        g_mean = g.sum(axis=self.axes, keepdims=True) / n
        gh_mean = (g * h).sum(axis=self.axes, keepdims=True) / n
        return (g - g_mean.broadcast_to(g.shape) - h * gh_mean.broadcast_to(g.shape)) * \
            self.inv_std

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        g, x = node.inputs
        grad_u = NormalizeGrad(self.axes, self.eps, self.normalized, self.inv_std)(out_grad, x)
        h = Normalize(self.axes, self.eps)(x)
        n = _group_size(x.shape, self.axes)
        inner = _sum_kept(out_grad * node, self.axes) * h + \
            _sum_kept(g * h, self.axes) * grad_u + _sum_kept(out_grad * h, self.axes) * node
        return grad_u, -(_inv_std(x, self.axes, self.eps) / n) * inner
