"""Matrix multiplication: the op that reaches BLAS."""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import DeferredAdjoint, NDArray, Tensor, TensorOp, Value, sum_node_list
from .broadcast import as_tensor
from .shape import concatenate


class MatMul(TensorOp):
    """f(a, b) = a @ b over the last two axes (equal leading axes);
    df = (g @ b^T, a^T @ g), each computed only for an input that needs it.

    ``transpose_a`` / ``transpose_b`` use a^T / b^T (last two axes) instead, as BLAS does:
    the gradients then need no transpose nodes of their own. For a plain a @ b, b's
    adjoint a^T g is deferred (``ProductAdjoint``): a weight shared by many products (an
    RNN's W_hh at every time step) gets its adjoint as one product."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False):
        self.transpose_a = transpose_a
        self.transpose_b = transpose_b

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return _swap_last(a, self.transpose_a) @ _swap_last(b, self.transpose_b)

    def gradient(self, out_grad: Tensor,
                 node: Tensor) -> tuple[Tensor | None, Tensor | ProductAdjoint | None]:
        lhs, rhs = node.inputs
        ta, tb = self.transpose_a, self.transpose_b
        grad_lhs = grad_rhs = None
        if lhs.requires_grad:  # d(op_a(a)) = g op_b(b)^T, transposed back when ta
            grad_lhs = MatMul(tb, True)(rhs, out_grad) if ta else MatMul(False, not tb)(out_grad,
                                                                                        rhs)
        if rhs.requires_grad:  # d(op_b(b)) = op_a(a)^T g, transposed back when tb
            grad_rhs = MatMul(True, ta)(out_grad, lhs) if tb else \
                MatMul(False, False)(lhs, out_grad) if ta else ProductAdjoint(lhs, out_grad)
        return grad_lhs, grad_rhs


class ProductAdjoint(DeferredAdjoint):
    """A partial adjoint ``a^T @ g`` not multiplied out yet (a MatMul's right operand).

    A weight used at every time step of a recurrent network gets one per step; their sum
    is one product of stacked rows, [a_1; ..; a_n]^T @ [g_1; ..; g_n], which BLAS runs much
    faster than n small products and n - 1 additions."""

    __slots__ = ("a", "g")

    def __init__(self, a: Tensor, g: Tensor):
        self.a = a
        self.g = g

    def value(self, node: Value | None = None) -> Tensor:
        return MatMul(transpose_a=True)(self.a, self.g)

    @classmethod
    def combine(cls, items: list[Any], node: Value) -> Value:
        """sum_i a_i^T @ g_i as one product of concatenations when the factors are
        matrices; plain adjoints among ``items`` are added to it."""
        products = [x for x in items if isinstance(x, cls)]
        plain = [x for x in items if not isinstance(x, cls)]
        if len(products) > 1 and all(p.a.ndim == 2 for p in products):
            products = [cls(concatenate([p.a for p in products], axis=0),
                            concatenate([p.g for p in products], axis=0))]
        return sum_node_list(plain + [p.value() for p in products])


def _swap_last(a: NDArray, swap: bool) -> NDArray:
    """``a`` with its last two axes swapped (a view) when ``swap``."""
    if not swap:
        return a
    axes = list(range(a.ndim))
    axes[-2], axes[-1] = axes[-1], axes[-2]
    return a.permute(axes)


def matmul(lhs: Any, rhs: Any) -> Tensor:
    """Matrix product with PyTorch's rules: 1-D operands are promoted and squeezed back,
    leading (batch) axes broadcast, and an N-D @ 2-D product runs as one 2-D product."""
    like = lhs if isinstance(lhs, Tensor) else rhs
    lhs, rhs = as_tensor(lhs, like), as_tensor(rhs, like)
    if lhs.ndim == 0 or rhs.ndim == 0:
        raise ValueError(f"matmul needs tensors with at least 1 dim, got shapes "
                         f"{lhs.shape} @ {rhs.shape}")
    inner = rhs.shape[-2] if rhs.ndim > 1 else rhs.shape[0]
    if lhs.shape[-1] != inner:
        raise ValueError(f"matmul: inner dimensions differ: lhs shape {lhs.shape} @ "
                         f"rhs shape {rhs.shape}")
    if rhs.ndim == 1:  # before lhs: 1-D @ 1-D must end as a 0-d dot product
        return matmul(lhs, rhs.reshape((-1, 1))).reshape(lhs.shape[:-1])
    if lhs.ndim == 1:
        out = matmul(lhs.reshape((1, -1)), rhs)
        return out.reshape(out.shape[:-2] + out.shape[-1:])
    if rhs.ndim == 2 and lhs.ndim > 2:
        flat = MatMul()(lhs.reshape((-1, lhs.shape[-1])), rhs)
        return flat.reshape(lhs.shape[:-1] + rhs.shape[-1:])
    if lhs.shape[:-2] != rhs.shape[:-2]:
        batch = nd.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2])
        lhs = lhs.broadcast_to(batch + lhs.shape[-2:])
        rhs = rhs.broadcast_to(batch + rhs.shape[-2:])
    return MatMul()(lhs, rhs)


