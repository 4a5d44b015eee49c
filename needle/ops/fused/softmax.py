"""Softmax as one op: replaces ``compose.softmax`` (exp of the shifted input over its sum)."""

from __future__ import annotations

from ...autograd import NDArray, Tensor, TensorOp
from ...reference import replaces
from .. import compose
from ..axes import normalize_axes
from ..logarithmic import _shift_by_max


class Softmax(TensorOp):
    """f(a) = e^(a - max a) / sum e^(a - max a) along ``axis``; df = f (g - sum(g f)).

    Replaces ``compose.softmax``, whose shift, exp, sum, broadcast and division record five
    nodes forward and about eight backward (attention applies one per layer)."""

    def __init__(self, axis: int = -1):
        self.axis = axis

    def compute(self, a: NDArray) -> NDArray:
        shifted, _ = _shift_by_max(a, self.axis)
        e = shifted.exp()
        return e / e.sum(axis=self.axis, keepdims=True).broadcast_to(a.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        total = (out_grad * node).sum(self.axis, keepdims=True)
        return node * (out_grad - total.broadcast_to(node.shape))


@replaces(compose.softmax)
def softmax(a: Tensor, axis: int = -1) -> Tensor:
    """softmax along ``axis`` (the last by default)."""
    return Softmax(normalize_axes(axis, a.ndim)[0])(a)
