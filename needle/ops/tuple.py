"""Tuple ops: pack Tensors into a TensorTuple and take one back out."""

from __future__ import annotations

from .. import backend_ndarray as nd
from ..autograd import (NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp,
                        TupleElementAdjoint)


class MakeTensorTuple(TensorTupleOp):
    """f(a_1..a_n) = (a_1..a_n); f' hands each element its adjoint."""

    def compute(self, *args: NDArray) -> tuple[NDArray, ...]:
        return tuple(args)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Tensor, ...]:
        return tuple(out_grad[i] for i in range(len(out_grad)))


def make_tuple(*args: Tensor) -> TensorTuple:
    return MakeTensorTuple()(*args)


class TupleGetItem(TensorOp):
    """f(t) = t[index]; f' is the adjoint at ``index`` and zeros elsewhere.

    In ``backward`` the zeros stay implicit: the engine sums element adjoints per element
    (``TupleElementAdjoint``) and fills in zeros once, only for elements never taken."""

    def __init__(self, index: int):
        self.index = index

    def compute(self, a: tuple[NDArray, ...]) -> NDArray:
        return a[self.index]

    def gradient(self, out_grad: Tensor, node: Tensor) -> TensorTuple:
        parts = node.inputs[0].cached_data
        grads = [out_grad if i == self.index else
                 Tensor.make_const(nd.full(x.shape, 0, x.dtype, x.device))
                 for i, x in enumerate(parts)]
        return make_tuple(*grads)

    def partial_adjoints(self, out_grad: Tensor, node: Tensor) -> tuple[TupleElementAdjoint]:
        return (TupleElementAdjoint(self.index, out_grad),)


def tuple_get_item(value: TensorTuple, index: int) -> Tensor:
    return TupleGetItem(index)(value)
