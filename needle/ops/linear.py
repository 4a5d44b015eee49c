"""The affine map of a Linear layer, x W + b, as one op (PyTorch's addmm / F.linear)."""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor, TensorOp
from ..backend_ndarray import fused
from .matmul import MatMul


class Linear(TensorOp):
    """f(x, W, b) = x W + b for x (N, in), W (in, out), b (1, out) or (out,) added to every
    row; df = (g W^T, x^T g, sum of g over rows), each only for an input that needs it.

    A primitive for speed: one graph node and one allocation instead of a product, a
    BroadcastTo of the bias and a sum (three nodes, two fresh arrays) per layer."""

    def compute(self, x: NDArray, weight: NDArray, bias: NDArray) -> NDArray:
        return fused.matmul_add(x, weight, bias)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias = node.inputs
        return (MatMul(transpose_b=True)(out_grad, weight) if x.requires_grad else None,
                MatMul(transpose_a=True)(x, out_grad) if weight.requires_grad else None,
                _sum_rows(out_grad, bias.shape) if bias.requires_grad else None)


def _sum_rows(a: Tensor, shape: tuple[int, ...]) -> Tensor:
    """The sum of the rows of ``a`` (N, n) in ``shape`` (1, n) or (n,): for (1, n), one
    BLAS product 1^T a (faster than a reduction over axis 0, and one node)."""
    if len(shape) == 1:
        return a.sum(0)
    ones = Tensor.make_const(nd.full((1, a.shape[0]), 1, str(a.dtype), a.device))
    return MatMul()(ones, a)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W (+ b) for x (N, in), W (in, out) (needle's layout), b (1, out) or (out,)."""
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[0]:
        raise ValueError(f"linear needs x (N, in) and weight (in, out), got {x.shape} and "
                         f"{weight.shape}")
    if bias is None:
        return MatMul()(x, weight)
    if bias.shape not in ((weight.shape[1],), (1, weight.shape[1])):
        raise ValueError(f"linear: bias must have shape ({weight.shape[1]},) or "
                         f"(1, {weight.shape[1]}), got {bias.shape}")
    return Linear()(x, weight, bias)
