"""Matrix multiplication: the op that reaches BLAS."""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import NDArray, ProductAdjoint, Tensor, TensorOp
from .broadcast import as_tensor


class MatMul(TensorOp):
    """f(a, b) = a @ b over the last two axes (equal leading axes);
    df = (g @ b^T, a^T @ g), each computed only for an input that needs it."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a @ b

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        grad_lhs, grad_rhs = self.partial_adjoints(out_grad, node)
        return grad_lhs, grad_rhs.value() if grad_rhs is not None else None

    def partial_adjoints(self, out_grad: Tensor,
                         node: Tensor) -> tuple[Tensor | None, ProductAdjoint | None]:
        """a^T @ g is deferred: a weight shared by many products (an RNN's W_hh at every
        time step) gets its adjoint as one product of concatenations."""
        lhs, rhs = node.inputs
        grad_lhs = MatMul()(out_grad, transpose(rhs)) if lhs.requires_grad else None
        grad_rhs = ProductAdjoint(transpose(lhs), out_grad) if rhs.requires_grad else None
        return grad_lhs, grad_rhs


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
    if lhs.ndim == 1:
        out = matmul(reshape(lhs, (1, -1)), rhs)
        return reshape(out, out.shape[:-2] + out.shape[-1:])
    if rhs.ndim == 1:
        return reshape(matmul(lhs, reshape(rhs, (-1, 1))), lhs.shape[:-1])
    if rhs.ndim == 2 and lhs.ndim > 2:
        flat = MatMul()(reshape(lhs, (-1, lhs.shape[-1])), rhs)
        return reshape(flat, lhs.shape[:-1] + rhs.shape[-1:])
    if lhs.shape[:-2] != rhs.shape[:-2]:
        batch = nd.broadcast_shapes(lhs.shape[:-2], rhs.shape[:-2])
        lhs = broadcast_to(lhs, batch + lhs.shape[-2:])
        rhs = broadcast_to(rhs, batch + rhs.shape[-2:])
    return MatMul()(lhs, rhs)


from .shape import broadcast_to, reshape, transpose  # noqa: E402
