"""Hypothesis strategies and input makers for the op tests, and ``check_op`` (both oracles).

Values come from a numpy RNG seeded by hypothesis, not from hypothesis floats: the ops are
checked at generic points (no ties, no kinks), while shapes, broadcast patterns and axes are
what hypothesis explores. ``NEEDLE_HYPOTHESIS_EXAMPLES`` raises the example count for a
deeper run (the default keeps the suite fast).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oracles import check_finite_differences, check_torch

Shape = tuple[int, ...]
Axes = int | tuple[int, ...] | None

EXAMPLES = int(os.environ.get("NEEDLE_HYPOTHESIS_EXAMPLES", "12"))
fast = settings(max_examples=EXAMPLES, deadline=None)

seeds = st.integers(0, 2**32 - 1)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
           max_side: int = 4) -> st.SearchStrategy[Shape]:
    """Array shapes; ``min_side=0`` adds empty arrays."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcast_pairs(min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                    max_side: int = 4) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Two shapes that broadcast together: size-1 and missing leading dims on either side."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=min_side,
        max_side=max_side,
    ).map(lambda b: (tuple(b.input_shapes[0]), tuple(b.input_shapes[1])))


@st.composite
def axes_for(draw: Any, ndim: int) -> Axes:
    """None, one axis or a tuple of distinct axes of an ``ndim``-dim array; may be negative."""
    kind = draw(st.sampled_from(["none", "int", "tuple"] if ndim else ["none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    if ndim == 0:
        return ()
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


@st.composite
def shape_and_axes(draw: Any, min_dims: int = 0, max_dims: int = 3, min_side: int = 1,
                   max_side: int = 4) -> tuple[Shape, Axes]:
    shape = draw(shapes(min_dims, max_dims, min_side, max_side))
    return shape, draw(axes_for(len(shape)))


@st.composite
def shape_and_axis(draw: Any, min_dims: int = 1, max_dims: int = 3, min_side: int = 1,
                   max_side: int = 4) -> tuple[Shape, int]:
    """A shape and one of its axes (possibly negative)."""
    shape = draw(shapes(min_dims, max_dims, min_side, max_side))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def normal(seed: int, *shapes: Shape) -> list[np.ndarray]:
    """Standard normal float64 arrays, one per shape."""
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def positive(seed: int, *shapes: Shape, low: float = 0.5) -> list[np.ndarray]:
    """Float64 arrays with values in [low, low + ~3): safe for log, sqrt and powers."""
    return [low + np.abs(a) for a in normal(seed, *shapes)]


def nonzero(seed: int, *shapes: Shape, low: float = 0.5) -> list[np.ndarray]:
    """Float64 arrays of either sign with |value| >= low: safe denominators."""
    return [np.sign(a) * (low + np.abs(a)) + (a == 0) * low for a in normal(seed, *shapes)]


def torch_dims(axes: Axes, ndim: int) -> tuple[int, ...]:
    """needle's ``axes`` as PyTorch's ``dim`` (None means every axis)."""
    if axes is None:
        return tuple(range(ndim))
    return (axes,) if isinstance(axes, int) else tuple(axes)


def torch_reduce(fn: Callable[..., Any], axes: Axes,
                 keepdims: bool = False) -> Callable[[Any], Any]:
    """PyTorch's reduction ``fn`` over needle's ``axes``; an empty tuple reduces nothing."""
    def reduce(x: Any) -> Any:
        dims = torch_dims(axes, x.ndim)
        return fn(x, dim=dims, keepdim=keepdims) if dims else x
    return reduce


def check_op(ndl_fn: Callable[..., Any], torch_fn: Callable[..., Any], *arrays: np.ndarray,
             name: str, wrt: Sequence[bool] | None = None, rtol: float = 1e-9,
             atol: float = 1e-12, finite_differences: bool = True) -> None:
    """Forward and gradients equal PyTorch's in float64, and backward() equals central
    differences in float64 (relative error < 1e-6), for every input in ``wrt``."""
    arrays = tuple(np.asarray(a, np.float64) for a in arrays)
    grad = [True] * len(arrays) if wrt is None else list(wrt)
    check_torch(ndl_fn, torch_fn, *arrays, grad=grad, rtol=rtol, atol=atol, name=name)
    if finite_differences:
        check_finite_differences(ndl_fn, *arrays, wrt=grad, name=name)
