"""Shape ops: reshape, broadcast, permute, flip, pad, dilate, stack, split, concatenate."""

from __future__ import annotations

from typing import Sequence

from .. import backend_ndarray as nd
from ..autograd import NDArray, Tensor, TensorOp, TensorTuple, TensorTupleOp
from .axes import Axes, Shape, as_array_axes, normalize_axes
from .indexing import getitem
from .reduce import summation
from .tuple import make_tuple


class Reshape(TensorOp):
    """f(a) = a viewed with a new shape; f' reshapes the adjoint back."""

    def __init__(self, shape: Shape):
        self.shape = tuple(shape)

    def compute(self, a: NDArray) -> NDArray:
        return a.compact().reshape(self.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return reshape(out_grad, node.inputs[0].shape)


def reshape(a: Tensor, shape: Shape) -> Tensor:
    return Reshape(shape)(a)


class BroadcastTo(TensorOp):
    """f(a) = a repeated along size-1 and new leading axes; f' sums over those axes.

    This is the only op that un-broadcasts: every implicit broadcast becomes one of these."""

    def __init__(self, shape: Shape):
        self.shape = tuple(shape)

    def compute(self, a: NDArray) -> NDArray:
        return a.broadcast_to(self.shape)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return sum_to_shape(out_grad, node.inputs[0].shape)


def broadcast_to(a: Tensor, shape: Shape) -> Tensor:
    return a if a.shape == tuple(shape) else BroadcastTo(shape)(a)


def sum_to_shape(grad: Tensor, shape: Shape) -> Tensor:
    """The adjoint of an operand of ``shape`` that was broadcast to ``grad.shape``: ``grad``
    summed over the new leading axes and the stretched size-1 axes."""
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, d in enumerate(shape)
                                      if d == 1 and grad.shape[i + lead] != 1)
    grad = summation(grad, axes) if axes else grad
    return reshape(grad, shape) if grad.shape != tuple(shape) else grad


class Permute(TensorOp):
    """f(a) = a with its axes reordered (a view); f' applies the inverse permutation."""

    def __init__(self, axes: Sequence[int]):
        self.axes = tuple(axes)

    def compute(self, a: NDArray) -> NDArray:
        return a.permute(self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        inverse = sorted(range(len(self.axes)), key=lambda i: self.axes[i])
        return permute(out_grad, inverse)


def permute(a: Tensor, axes: Sequence[int]) -> Tensor:
    return Permute(normalize_axes_order(axes, a.ndim))(a)


def normalize_axes_order(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    """A permutation of ``range(ndim)``, negative axes allowed; a clear error otherwise."""
    order = tuple(a % ndim if -ndim <= a < ndim else -1 for a in axes) if ndim else tuple(axes)
    if sorted(order) != list(range(ndim)):
        raise ValueError(f"permute needs a permutation of the {ndim} axes, got {tuple(axes)}")
    return order


def transpose(a: Tensor, axes: tuple[int, int] | None = None) -> Tensor:
    """Swap two axes: the last two by default (needle's convention, not a full reversal)."""
    if a.ndim < 2 and axes is None:
        raise ValueError(f"transpose needs at least 2 dims, got shape {a.shape}")
    i, j = axes if axes is not None else (-2, -1)
    order = list(range(a.ndim))
    order[i], order[j] = order[j], order[i]
    return permute(a, order)


class Flip(TensorOp):
    """f(a) = a reversed along ``axes``; f' flips the adjoint the same way."""

    def __init__(self, axes: Axes):
        self.axes = as_array_axes(axes)

    def compute(self, a: NDArray) -> NDArray:
        return a.flip(self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return flip(out_grad, self.axes)


def flip(a: Tensor, axes: Axes) -> Tensor:
    return Flip(normalize_axes(axes, a.ndim))(a)


class Pad(TensorOp):
    """f(a) = a with ``(before, after)`` zeros on each axis; f' crops the adjoint."""

    def __init__(self, axes: Sequence[tuple[int, int]]):
        self.axes = tuple((int(lo), int(hi)) for lo, hi in axes)

    def compute(self, a: NDArray) -> NDArray:
        return a.pad(self.axes)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        crop = tuple(slice(lo, lo + d) for (lo, _), d in zip(self.axes, node.inputs[0].shape))
        return getitem(out_grad, crop)


def pad(a: Tensor, axes: Sequence[tuple[int, int]]) -> Tensor:
    """a with ``(before, after)`` zeros on each axis (one non-negative pair per axis)."""
    widths = [tuple(pair) for pair in axes]
    if len(widths) != a.ndim or any(len(w) != 2 or not all(isinstance(n, int) and n >= 0
                                                           for n in w) for w in widths):
        raise ValueError(f"pad needs one (before, after) pair of non-negative ints per axis "
                         f"of a tensor of shape {a.shape}, got {tuple(axes)}")
    return Pad(axes)(a)


def _dilated_view(axes: tuple[int, ...], dilation: int, ndim: int) -> tuple[slice, ...]:
    step = dilation + 1
    return tuple(slice(None, None, step) if i in axes else slice(None) for i in range(ndim))


class Dilate(TensorOp):
    """f(a) = a with ``dilation`` zeros after each element along ``axes``; f' = undilate."""

    def __init__(self, axes: Axes, dilation: int):
        self.axes = axes
        self.dilation = dilation

    def compute(self, a: NDArray) -> NDArray:
        axes = normalize_axes(self.axes, a.ndim)
        shape = tuple(d * (self.dilation + 1) if i in axes else d for i, d in enumerate(a.shape))
        out = nd.full(shape, 0, a.dtype, a.device)
        out[_dilated_view(axes, self.dilation, a.ndim)] = a
        return out

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return undilate(out_grad, self.axes, self.dilation)


def _check_dilation(dilation: int, name: str) -> None:
    if not isinstance(dilation, int) or dilation < 0:
        raise ValueError(f"{name}: dilation must be an int >= 0, got {dilation!r}")


def dilate(a: Tensor, axes: Axes, dilation: int) -> Tensor:
    _check_dilation(dilation, "dilate")
    return Dilate(axes, dilation)(a)


class UnDilate(TensorOp):
    """f(a) = every (dilation+1)-th element of a along ``axes``; f' = dilate, cropped to a's
    shape (a's length along an axis need not be a multiple of dilation+1)."""

    def __init__(self, axes: Axes, dilation: int):
        self.axes = axes
        self.dilation = dilation

    def compute(self, a: NDArray) -> NDArray:
        return a[_dilated_view(normalize_axes(self.axes, a.ndim), self.dilation, a.ndim)]

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        grad, shape = dilate(out_grad, self.axes, self.dilation), node.inputs[0].shape
        return grad if grad.shape == shape else getitem(grad, tuple(slice(d) for d in shape))


def undilate(a: Tensor, axes: Axes, dilation: int) -> Tensor:
    _check_dilation(dilation, "undilate")
    return UnDilate(axes, dilation)(a)


class Stack(TensorOp):
    """f(a_1..a_n) = the a_i joined along a new axis; f' splits the adjoint along it."""

    def __init__(self, axis: int):
        self.axis = axis

    def compute(self, args: tuple[NDArray, ...]) -> NDArray:
        return nd.stack(args, self.axis)

    def gradient(self, out_grad: Tensor, node: Tensor) -> TensorTuple:
        return split(out_grad, self.axis)


def stack(args: Sequence[Tensor] | TensorTuple, axis: int = 0) -> Tensor:
    values = args if isinstance(args, TensorTuple) else make_tuple(*args)
    return Stack(axis)(values)


class Split(TensorTupleOp):
    """f(a) = the slices of a along ``axis`` (that axis removed); f' stacks the adjoints."""

    def __init__(self, axis: int):
        self.axis = axis

    def compute(self, a: NDArray) -> tuple[NDArray, ...]:
        index: list[slice | int] = [slice(None)] * a.ndim
        slices = []
        for i in range(a.shape[self.axis]):
            index[self.axis] = i
            slices.append(a[tuple(index)])
        return tuple(slices)

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> Tensor:
        return stack(out_grad, self.axis)


def split(a: Tensor, axis: int = 0) -> TensorTuple:
    return Split(normalize_axes(axis, a.ndim)[0])(a)


class Concatenate(TensorOp):
    """f(a_1..a_n) = the a_i joined along an existing axis; f' slices the adjoint apart."""

    def __init__(self, axis: int):
        self.axis = axis

    def compute(self, args: tuple[NDArray, ...]) -> NDArray:
        return nd.concatenate(args, self.axis)

    def gradient(self, out_grad: Tensor, node: Tensor) -> TensorTuple:
        index: list[slice] = [slice(None)] * out_grad.ndim
        pieces, start = [], 0
        for size in (x.shape[self.axis] for x in node.inputs[0].cached_data):
            index[self.axis] = slice(start, start + size)
            pieces.append(getitem(out_grad, tuple(index)))
            start += size
        return make_tuple(*pieces)


def concatenate(args: Sequence[Tensor] | TensorTuple, axis: int = 0) -> Tensor:
    values = args if isinstance(args, TensorTuple) else make_tuple(*args)
    ndim = len(values.cached_data[0].shape) if len(values) else 1
    return Concatenate(normalize_axes(axis, ndim)[0])(values)

