"""Matrix multiplication: the op that reaches BLAS."""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import DeferredAdjoint, NDArray, Tensor, TensorOp, Value, sum_node_list
from .broadcast import as_tensor
from .promotion import check_one_dtype
from .shape import concatenate, reshape, sum_to_shape


class MatMul(TensorOp):
    """f(a, b) = a @ b with numpy's rules (1-D operands promoted and squeezed back, leading
    batch axes broadcast); df = (g @ b^T, a^T @ g), each summed back to its input's shape and
    computed only for an input that needs it.

    ``transpose_a`` / ``transpose_b`` use a^T / b^T (last two axes) instead, as BLAS does:
    the gradients then need no transpose nodes of their own. The node's inputs are always the
    two operands themselves, so ``gradient`` gives one adjoint per operand (course checkers
    call it directly). For a plain a @ b, b's adjoint a^T g is deferred (``ProductAdjoint``):
    a weight shared by many products (an RNN's W_hh at every time step) gets its adjoint as
    one product."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False):
        self.transpose_a = transpose_a
        self.transpose_b = transpose_b

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        a, b = _swap_last(a, self.transpose_a), _swap_last(b, self.transpose_b)
        if a.ndim > 2 and b.ndim == 2 and not self.transpose_a:  # stacked rows: one BLAS call
            rows = a.compact().reshape((-1, a.shape[-1])) @ b
            return rows.reshape(a.shape[:-1] + b.shape[-1:])
        return a @ b

    def gradient(self, out_grad: Tensor,
                 node: Tensor) -> tuple[Tensor | None, Tensor | ProductAdjoint | None]:
        lhs, rhs = node.inputs
        if lhs.ndim < 2 or rhs.ndim < 2 or lhs.shape[:-2] != rhs.shape[:-2]:
            if rhs.ndim == 2 and lhs.ndim > 2 and not self.transpose_a:
                return self._stacked_adjoints(out_grad, lhs, rhs)
            return self._promoted_adjoints(out_grad, lhs, rhs)
        return self._adjoints(out_grad, lhs, rhs, lhs.requires_grad, rhs.requires_grad)

    def _adjoints(self, out_grad: Tensor, lhs: Tensor, rhs: Tensor, need_lhs: bool,
                  need_rhs: bool) -> tuple[Tensor | None, Tensor | ProductAdjoint | None]:
        """The adjoints for operands of at least 2 dims and equal batch axes."""
        ta, tb = self.transpose_a, self.transpose_b
        grad_lhs = grad_rhs = None
        if need_lhs:  # d(op_a(a)) = g op_b(b)^T, transposed back when ta
            grad_lhs = MatMul(tb, True)(rhs, out_grad) if ta else MatMul(False, not tb)(out_grad,
                                                                                        rhs)
        if need_rhs:  # d(op_b(b)) = op_a(a)^T g, transposed back when tb
            grad_rhs = MatMul(True, ta)(out_grad, lhs) if tb else \
                MatMul(False, False)(lhs, out_grad) if ta else ProductAdjoint(lhs, out_grad)
        return grad_lhs, grad_rhs

    def _stacked_adjoints(self, out_grad: Tensor, lhs: Tensor,
                          rhs: Tensor) -> tuple[Tensor | None, Tensor | ProductAdjoint | None]:
        """N-D @ 2-D, computed as one product of stacked rows: b's adjoint is
        rows(a)^T @ rows(g), the sum over the batch of a_i^T g_i."""
        grad_lhs = MatMul(False, not self.transpose_b)(out_grad, rhs) if lhs.requires_grad \
            else None
        if not rhs.requires_grad:
            return grad_lhs, None
        rows_a = reshape(lhs, (-1, lhs.shape[-1]))
        rows_g = reshape(out_grad, (-1, out_grad.shape[-1]))
        grad_rhs = MatMul(True, False)(rows_g, rows_a) if self.transpose_b else \
            ProductAdjoint(rows_a, rows_g)
        return grad_lhs, grad_rhs

    def _promoted_adjoints(self, out_grad: Tensor, lhs: Tensor,
                           rhs: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """1-D operands and broadcast batch axes: the adjoints of the promoted, broadcast
        operands, squeezed and summed back to each operand's own shape."""
        a = reshape(lhs, (1,) + lhs.shape) if lhs.ndim == 1 else lhs
        b = reshape(rhs, rhs.shape + (1,)) if rhs.ndim == 1 else rhs
        rows = a.shape[-1] if self.transpose_a else a.shape[-2]
        cols = b.shape[-2] if self.transpose_b else b.shape[-1]
        batch = nd.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        g = reshape(out_grad, batch + (rows, cols))
        grad_a, grad_b = self._adjoints(g, a, b, lhs.requires_grad, rhs.requires_grad)
        if isinstance(grad_b, ProductAdjoint):
            grad_b = grad_b.value()
        return _sum_back(grad_a, lhs, front=True), _sum_back(grad_b, rhs, front=False)


def _sum_back(grad: Tensor | None, x: Tensor, front: bool) -> Tensor | None:
    """The adjoint of a promoted (1-D) and broadcast operand, as one for ``x`` itself."""
    if grad is None:
        return None
    if x.ndim == 1:  # drop the axis that promotion added
        grad = reshape(grad, grad.shape[:-2] + grad.shape[-1:] if front else grad.shape[:-1])
    return sum_to_shape(grad, x.shape)


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
    leading (batch) axes broadcast; both operands must have one dtype. One MatMul node."""
    like = lhs if isinstance(lhs, Tensor) else rhs
    lhs, rhs = as_tensor(lhs, like), as_tensor(rhs, like)
    if lhs.ndim == 0 or rhs.ndim == 0:
        raise ValueError(f"matmul needs tensors with at least 1 dim, got shapes "
                         f"{lhs.shape} @ {rhs.shape}")
    check_one_dtype("matmul", lhs, rhs, between=" @ ")
    inner = rhs.shape[-2] if rhs.ndim > 1 else rhs.shape[0]
    if lhs.shape[-1] != inner:
        raise ValueError(f"matmul: inner dimensions differ: lhs shape {lhs.shape} @ "
                         f"rhs shape {rhs.shape}")
    nd.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2])  # a clear error for batch axes
    return MatMul()(lhs, rhs)
