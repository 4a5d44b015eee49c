"""Fused activations: sigmoid and the adjoints of tanh, sigmoid and relu as one node each
(an LSTM step applies three sigmoids and two tanh; an MLP a relu per layer).

Each replaces a composition in ``ops/`` (``compose.sigmoid``, ``Tanh.gradient``,
``ReLU.gradient``); in reference mode those run instead, and ``tests/ops/test_fused.py``
checks that both agree in value and in first and second derivatives.
"""

from __future__ import annotations

from ...autograd import NDArray, Tensor, TensorOp
from ...backend_ndarray import fused
from ...reference import replaces
from .. import compose, elementwise


class Sigmoid(TensorOp):
    """f(a) = 1 / (1 + e^-a), computed as (1 + tanh(a/2)) / 2 so it never overflows;
    df = g f (1 - f) (one SigmoidGrad node).

    Replaces ``compose.sigmoid``, which records four nodes forward and about six backward."""

    def compute(self, a: NDArray) -> NDArray:
        return (a * 0.5).tanh() * 0.5 + 0.5

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return SigmoidGrad()(out_grad, node)


class SigmoidGrad(TensorOp):
    """f(g, y) = g y (1 - y), the sigmoid's adjoint given its output y;
    df = (V y (1 - y), V g (1 - 2 y)).

    Replaces ``g * y * (1 - y)``: one node and one pass instead of three."""

    def compute(self, g: NDArray, y: NDArray) -> NDArray:
        return g * (y * (1 - y))

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        g, y = node.inputs
        return SigmoidGrad()(out_grad, y), out_grad * g * (1 - y * 2.0)


@replaces(compose.sigmoid)
def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid()(a)


class Tanh(elementwise.Tanh):
    """tanh (``elementwise.Tanh``) whose adjoint is one TanhGrad node."""

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return TanhGrad()(out_grad, node)


class TanhGrad(TensorOp):
    """f(g, y) = g (1 - y^2), tanh's adjoint given its output y; df = (V (1 - y^2), -2 V g y).

    Replaces ``elementwise.Tanh.gradient``'s ``g * (1 - y * y)``: one node where that
    records three."""

    def compute(self, g: NDArray, y: NDArray) -> NDArray:
        return g * (1 - y * y)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        g, y = node.inputs
        return TanhGrad()(out_grad, y), out_grad * g * y * -2.0


@replaces(elementwise.tanh)
def tanh(a: Tensor) -> Tensor:
    return Tanh()(a)


class ReLU(elementwise.ReLU):
    """relu (``elementwise.ReLU``) whose adjoint is one ReLUGrad node."""

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return ReLUGrad()(out_grad, node)


class ReLUGrad(TensorOp):
    """f(g, y) = g [y > 0], relu's adjoint given its output y (y > 0 exactly where the
    input is); df = (V [y > 0], 0): linear in g, and the mask is flat in y.

    Replaces ``elementwise.ReLU.gradient``'s ``g * astype(y > 0, g.dtype)``: one node and
    one pass where that records three nodes (compare, cast, product)."""

    def compute(self, g: NDArray, y: NDArray) -> NDArray:
        return fused.multiply_where_positive(g, y)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, None]:
        return ReLUGrad()(out_grad, node.inputs[1]), None


@replaces(elementwise.relu)
def relu(a: Tensor) -> Tensor:
    return ReLU()(a)
