"""Axis helpers shared by the reductions and shape ops."""

from __future__ import annotations

from ..backend_ndarray import Axes, Shape


def as_array_axes(axes: Axes) -> Axes:
    """``axes`` with a list turned into a tuple, for the NDArray reductions."""
    return tuple(axes) if isinstance(axes, list) else axes


def normalize_axes(axes: Axes, ndim: int) -> tuple[int, ...]:
    """``axes`` as a sorted tuple of non-negative ints (None means all axes)."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int):
        axes = (axes,)
    out = []
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise ValueError(f"axis {axis} is out of range for a tensor with {ndim} dims")
        out.append(axis % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {tuple(axes)}")
    return tuple(sorted(out))


def keepdims_shape(shape: Shape, axes: Axes) -> Shape:
    """``shape`` with each reduced axis kept as size 1."""
    reduced = normalize_axes(axes, len(shape))
    return tuple(1 if i in reduced else d for i, d in enumerate(shape))


def reduced_shape(shape: Shape, axes: Axes) -> Shape:
    """``shape`` with the reduced axes removed."""
    reduced = normalize_axes(axes, len(shape))
    return tuple(d for i, d in enumerate(shape) if i not in reduced)
