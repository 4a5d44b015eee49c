"""The affine map of a Linear layer, x W + b, as one op (PyTorch's addmm / F.linear);
replaces ``compose.linear``."""

from __future__ import annotations

from ...autograd import NDArray, Tensor, TensorOp
from ...backend_ndarray import fused
from ...grad_mode import is_grad_enabled
from ..matmul import MatMul
from ..reduce import summation
from ...reference import replaces
from .. import compose


class Linear(TensorOp):
    """f(x, W, b) = x W + b for x (N, in), W (in, out), b (1, out) or (out,) added to every
    row; df = (g W^T, x^T g, sum of g over rows), each only for an input that needs it.

    Replaces ``compose.linear``: one graph node and one allocation instead of a product, a
    BroadcastTo of the bias and a sum (three nodes, two fresh arrays) per layer."""

    def compute(self, x: NDArray, weight: NDArray, bias: NDArray) -> NDArray:
        return fused.matmul_add(x, weight, bias)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        if not is_grad_enabled():  # nothing is recorded: the same products, without nodes
            return constants(linear_adjoints_of(out_grad.cached_data, *node.inputs))
        return linear_gradients(out_grad, *node.inputs)


def linear_adjoints_of(g: NDArray, x: Tensor, weight: Tensor,
                       bias: Tensor) -> tuple[NDArray | None, ...]:
    """``fused.linear_adjoints`` of g for the inputs of a Linear node, each where it needs a
    gradient."""
    return fused.linear_adjoints(g, x.cached_data, weight.cached_data,
                                 (x.requires_grad, weight.requires_grad, bias.requires_grad),
                                 bias_keepdims=bias.ndim == 2)


def constants(arrays: tuple[NDArray | None, ...]) -> tuple[Tensor | None, ...]:
    """Each array as a constant Tensor (None stays None): adjoints computed on arrays."""
    return tuple(None if a is None else Tensor.make_const(a) for a in arrays)


def linear_gradients(out_grad: Tensor, x: Tensor, weight: Tensor,
                     bias: Tensor) -> tuple[Tensor | None, ...]:
    """(g W^T, x^T g, sum of g over rows) for g the adjoint of x W + b, each only for an
    input that needs it."""
    grad_bias = summation(out_grad, 0, keepdims=bias.ndim == 2) if bias.requires_grad \
        else None
    return (MatMul(transpose_b=True)(out_grad, weight) if x.requires_grad else None,
            MatMul(transpose_a=True)(x, out_grad) if weight.requires_grad else None,
            grad_bias)


@replaces(compose.linear)
def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x W (+ b) for x (N, in), W (in, out) (needle's layout), b (1, out) or (out,)."""
    compose.check_linear(x, weight, bias)
    if bias is None:
        return MatMul()(x, weight)
    return Linear()(x, weight, bias)
