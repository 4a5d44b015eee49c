"""Ops composed from primitives: no backward code of their own."""

from __future__ import annotations

from typing import Any

from ..autograd import Tensor
from .axes import Axes, normalize_axes
from .broadcast import is_scalar
from .elementwise import add, add_scalar, negate, power_scalar
from .reduce import summation


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
