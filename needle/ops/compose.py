"""Ops composed from primitives: no backward code of their own.

The last three are what needle's fused primitives compute (``ops/fused/``), written as
plain compositions: reference mode runs these, and the tests check both agree.
"""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from .axes import Axes, normalize_axes
from .broadcast import is_scalar
from .elementwise import add, add_scalar, exp, negate, power_scalar, tanh
from .matmul import matmul
from .promotion import check_one_dtype
from .reduce import amax, summation


def sub(lhs: Any, rhs: Any) -> Tensor:
    """lhs - rhs = lhs + (-rhs), broadcasting; either may be a number."""
    if is_scalar(rhs):
        return add_scalar(lhs, -rhs)
    if is_scalar(lhs):
        return add_scalar(negate(rhs), lhs)
    return add(lhs, negate(rhs))


def mean(a: Tensor, axes: Axes = None, keepdims: bool = False) -> Tensor:
    """The average over ``axes`` (all by default)."""
    axes = normalize_axes(axes, a.ndim)
    count = 1
    for axis in axes:
        count *= a.shape[axis]
    return summation(a, axes, keepdims=keepdims) / count


def sqrt(a: Tensor) -> Tensor:
    return power_scalar(a, 0.5)


def sigmoid(a: Tensor) -> Tensor:
    """1 / (1 + e^-a), written as the same function (1 + tanh(a/2)) / 2: e^-a overflows to
    inf for a < -88 in float32, and its gradient would then be 0 * inf = nan."""
    return (tanh(a * 0.5) + 1) * 0.5


def softmax(a: Tensor, axis: int = -1) -> Tensor:
    """e^(a - m) / sum e^(a - m) along ``axis``, m = max a (a constant: softmax does not
    change when a constant is subtracted, and e^(a - m) <= 1 never overflows)."""
    shift = amax(a, axis, keepdims=True).detach()
    e = exp(a - shift.broadcast_to(a.shape))
    return e / summation(e, axis, keepdims=True).broadcast_to(a.shape)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W (+ b) for x (N, in), W (in, out) (needle's layout), b (1, out) or (out,)."""
    check_linear(x, weight, bias)
    out = matmul(x, weight)
    return out if bias is None else out + bias.broadcast_to(out.shape)


def check_linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> None:
    """x (N, in), weight (in, out) and bias (out,) or (1, out), or a clear error."""
    x_shape, w_shape = x.shape, weight.shape
    if len(x_shape) != 2 or len(w_shape) != 2 or x_shape[1] != w_shape[0]:
        raise ValueError(f"linear needs x (N, in) and weight (in, out), got {x_shape} and "
                         f"{w_shape}")
    if bias is not None and bias.shape not in ((w_shape[1],), (1, w_shape[1])):
        raise ValueError(f"linear: bias must have shape ({w_shape[1]},) or "
                         f"(1, {w_shape[1]}), got {bias.shape}")
    if weight.dtype != x.dtype or (bias is not None and bias.dtype != x.dtype):
        check_one_dtype("linear", x, weight, bias)  # the error, naming the dtypes
