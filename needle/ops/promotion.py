"""Type promotion of two tensor operands, with PyTorch's rules.

The result takes the higher category (bool < integer < floating); within one category a
tensor with dimensions outranks a 0-d one (``float32 (3,) + float64 ()`` is float32), and
operands of equal rank take the wider type. Python numbers never promote a tensor. Every
binary op converts its operands with explicit ``AsType`` nodes, so gradients come back in
each operand's own dtype.
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def result_type(lhs: Tensor, rhs: Tensor) -> np.dtype:
    """The dtype of a binary op's result on ``lhs`` and ``rhs`` (PyTorch's rules)."""
    a, b = lhs.dtype, rhs.dtype
    if a == b:
        return a
    rank_a, rank_b = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if rank_a != rank_b:
        return a if rank_a > rank_b else b
    if (lhs.ndim == 0) != (rhs.ndim == 0):
        return b if lhs.ndim == 0 else a
    return np.promote_types(a, b)


def promote(lhs: Tensor, rhs: Tensor) -> tuple[Tensor, Tensor]:
    """Both operands in their common dtype (each unchanged when it already has it)."""
    dtype = result_type(lhs, rhs)
    return astype(lhs, dtype), astype(rhs, dtype)


from .elementwise import astype  # noqa: E402  (AsType is an elementwise op)
