"""Indexing ops: ``a[index]`` and its adjoint, the scatter-add ``index_add``; ``where``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor, TensorOp
from .axes import Shape
from .broadcast import as_tensor, broadcast_tensors


class GetItem(TensorOp):
    """f(a) = a[index] (ints, slices, integer arrays); f' scatters the adjoint back."""

    def __init__(self, index: Any):
        self.index = index

    def compute(self, a: NDArray) -> NDArray:
        return a[self.index]

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return IndexAdd(self.index, node.inputs[0].shape)(out_grad)


def getitem(a: Tensor, index: Any) -> Tensor:
    """``a[index]`` like numpy: ints and slices give views, integer arrays gather rows."""
    index = _host_index(index)
    _check_in_range(index, a.shape, "getitem")
    return GetItem(index)(a)


def _check_in_range(index: Any, shape: Shape, name: str) -> None:
    """A clear IndexError naming the shape for an int or integer array out of range
    (negative ones count from the end, as in numpy)."""
    items = index if isinstance(index, tuple) else (index,)
    if all(isinstance(item, slice) or item is None or item is Ellipsis for item in items):
        return  # slices never leave the array
    try:  # numpy's own rules, on a view of shape ``shape`` that holds no memory
        np.broadcast_to(np.empty((), np.bool_), shape)[index]
    except IndexError as exc:
        raise IndexError(f"{name}: index out of range for a tensor of shape {tuple(shape)}: "
                         f"{exc}") from None


def _host_index(index: Any) -> Any:
    """The index with Tensors, lists and boolean masks turned into integer arrays."""
    items = index if isinstance(index, tuple) else (index,)
    out: list[Any] = []
    for item in items:
        if isinstance(item, Tensor):
            item = item.cached_data.numpy()
        elif isinstance(item, NDArray):
            item = item.numpy()
        if isinstance(item, (list, np.ndarray)):
            item = np.asarray(item)
            if item.dtype == np.bool_:
                out.extend(item.nonzero())
                continue
            if item.dtype.kind not in "iu":
                raise IndexError(f"index arrays must hold integers or booleans, got {item.dtype}")
        out.append(item)
    return tuple(out) if isinstance(index, tuple) or len(out) > 1 else out[0]


class IndexAdd(TensorOp):
    """f(v) = zeros(shape) with v added at ``index`` (repeats accumulate); f' = v[index]."""

    def __init__(self, index: Any, shape: Shape):
        self.index = index
        self.shape = tuple(shape)

    def compute(self, values: NDArray) -> NDArray:
        return nd.index_add(self.shape, self.index, values)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return GetItem(self.index)(out_grad)


def index_add(values: Tensor, index: Any, shape: Shape) -> Tensor:
    """zeros(shape) with ``values`` added at ``index`` (repeated positions accumulate)."""
    index = _host_index(index)
    _check_in_range(index, shape, "index_add")
    return IndexAdd(index, shape)(values)


class Where(TensorOp):
    """f(c, a, b) = a where c else b (c: booleans, no gradient); f' routes the adjoint."""

    def compute(self, condition: NDArray, lhs: NDArray, rhs: NDArray) -> NDArray:
        return nd.where(condition, lhs, rhs)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[None, Tensor, Tensor]:
        condition = node.inputs[0]
        return None, where(condition, out_grad, 0.0), where(condition, 0.0, out_grad)


def where(condition: Tensor, lhs: Tensor | float, rhs: Tensor | float) -> Tensor:
    """Elementwise ``lhs`` where ``condition`` holds, else ``rhs``, with broadcasting."""
    like = condition if isinstance(condition, Tensor) else lhs if isinstance(lhs, Tensor) else rhs
    dtype = next((x.dtype for x in (lhs, rhs) if isinstance(x, Tensor)), "float32")
    lhs, rhs = (as_tensor(x, like, dtype) for x in (lhs, rhs))
    condition = as_tensor(condition, like, None)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: the condition must be boolean, got dtype {condition.dtype}")
    return Where()(*broadcast_tensors(condition, lhs, rhs))


def setitem(a: Tensor, index: Any, value: Tensor | float) -> Tensor:
    """A copy of ``a`` with ``a[index]`` replaced by ``value`` (broadcast): the recorded form
    of ``a[index] = value``; the adjoint of ``a`` is zero at ``index``, ``value``'s is the
    adjoint there (summed where an integer index repeats a position)."""
    host = _host_index(index)
    mask = np.zeros(a.shape, dtype=bool)
    mask[host] = True
    condition = Tensor.make_const(nd.array(mask, dtype="bool", device=a.device))
    if not isinstance(value, Tensor):
        return where(condition, value, a)
    target = mask[host].shape
    values = value if value.shape == target else value.broadcast_to(target)
    return where(condition, IndexAdd(host, a.shape)(values), a)
