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


def check_one_dtype(name: str, *operands: Tensor | None, between: str = ", ") -> None:
    """A clear error unless every operand (None skipped) has one dtype: products (matmul,
    linear, conv) do not promote, as in PyTorch."""
    present = [t for t in operands if t is not None]
    if all(t.dtype == present[0].dtype for t in present):
        return
    got = between.join(f"{t.dtype} (shape {t.shape})" for t in present)
    raise TypeError(f"{name} needs operands of one dtype, got {got}; convert one, e.g. "
                    f"ndl.ops.astype(x, \"{present[-1].dtype}\")")


from .elementwise import astype  # noqa: E402  (AsType is an elementwise op)
