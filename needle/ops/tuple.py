"""Tuple ops: pack Tensors into a TensorTuple and take one back out."""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import (DeferredAdjoint, NDArray, Tensor, TensorOp, TensorTuple,
                        TensorTupleOp, Value, sum_node_list)


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

    The zeros stay implicit (``TupleElementAdjoint``): a tuple's element adjoints are summed
    per element and zeros filled in once, only for elements never taken, so taking all n
    elements of a ``split`` costs n adjoints, not n tuples of n (mostly zero) arrays."""

    def __init__(self, index: int):
        self.index = index

    def compute(self, a: tuple[NDArray, ...]) -> NDArray:
        return a[self.index]

    def gradient(self, out_grad: Tensor, node: Tensor) -> TupleElementAdjoint:
        return TupleElementAdjoint(self.index, out_grad)


class TupleElementAdjoint(DeferredAdjoint):
    """The adjoint that element ``index`` of a TensorTuple received (``tuple_get_item``)."""

    __slots__ = ("index", "element")

    def __init__(self, index: int, element: Tensor):
        self.index = index
        self.element = element

    def value(self, node: Value) -> TensorTuple:
        """The whole tuple's adjoint: this element, zeros elsewhere."""
        return TupleElementAdjoint.combine([self], node)

    @classmethod
    def combine(cls, items: list[Any], node: Value) -> TensorTuple:
        """Element adjoints summed per element (plain tuple adjoints added to each); zeros
        for the elements that received none."""
        parts: list[list[Tensor]] = [[] for _ in node.cached_data]
        for item in items:
            if isinstance(item, cls):
                parts[item.index].append(item.element)
            else:
                for part, element in zip(parts, item):
                    part.append(element)
        return make_tuple(*[sum_node_list(part) if part else _zeros_like(x)
                            for part, x in zip(parts, node.cached_data)])


def _zeros_like(x: NDArray) -> Tensor:
    return Tensor.make_const(nd.full(x.shape, 0, x.dtype, x.device))


def tuple_get_item(value: TensorTuple, index: int) -> Tensor:
    return TupleGetItem(index)(value)
