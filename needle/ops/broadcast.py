"""Implicit broadcasting made explicit: the one place where operands get BroadcastTo nodes."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor


def is_scalar(value: Any) -> bool:
    """True for Python and numpy numbers (operands of the ``*_scalar`` ops)."""
    return isinstance(value, (int, float, np.generic))


def as_tensor(value: Any, like: Tensor, dtype: Any = None) -> Tensor:
    """``value`` as a Tensor on ``like``'s device; numbers and arrays become constants."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, NDArray):
        return Tensor.make_const(value)
    dtype = like.dtype if dtype is None and is_scalar(value) else dtype
    return Tensor.make_const(nd.array(value, dtype=dtype, device=like.device))


def broadcast_tensors(*tensors: Tensor) -> list[Tensor]:
    """The tensors, each broadcast (with a BroadcastTo node) to their common shape."""
    shape = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != shape:
            shape = nd.broadcast_shapes(shape, t.shape)
    return [t if t.shape == shape else t.broadcast_to(shape) for t in tensors]


def binary_operands(lhs: Any, rhs: Any) -> list[Tensor]:
    """Two operands as Tensors of one shape and one dtype (either may be a number or numpy
    array); dtypes follow PyTorch's promotion (``promotion.py``)."""
    if isinstance(lhs, Tensor) and isinstance(rhs, Tensor):  # the hot path of binary ops
        a, b = lhs.cached_data, rhs.cached_data
        if a.shape == b.shape and a.dtype == b.dtype:
            return [lhs, rhs]  # the common case: nothing to convert
    like = lhs if isinstance(lhs, Tensor) else rhs
    lhs, rhs = as_tensor(lhs, like), as_tensor(rhs, like)
    if lhs.dtype != rhs.dtype:
        from .promotion import promote  # promotion builds on the elementwise ops, which use this

        lhs, rhs = promote(lhs, rhs)
    return broadcast_tensors(lhs, rhs)

