"""Shape ops: reshape, broadcast_to, permute/transpose, flip, pad, dilate/undilate,
stack/split and concatenate — vs PyTorch (float64), finite differences and numpy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from strategies import (axes_for, check_op, fast, normal, seeds, shape_and_axis, shapes,
                        torch_dims)


@st.composite
def reshapes(draw):
    """A shape and another one of the same size (dims shuffled, regrouped, maybe a -1)."""
    shape = draw(shapes(min_dims=0, max_dims=4))
    dims = draw(st.permutations(shape))
    cuts = sorted(draw(st.sets(st.integers(1, max(len(dims) - 1, 1)), max_size=3)))
    groups = [dims[i:j] for i, j in zip([0] + cuts, cuts + [len(dims)]) if i < j]
    target = [math.prod(g) for g in groups] or []
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return shape, tuple(target)


@fast
@given(case=reshapes(), seed=seeds)
def test_reshape(case, seed):
    shape, target = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.reshape(x, target), lambda x: x.reshape(target), a,
             name=f"reshape {shape} -> {target}")


def test_reshape_of_a_non_compact_view_and_tensor_method():
    (a,) = normal(0, (3, 4))
    check_op(lambda x: x.transpose().reshape(2, 6), lambda x: x.T.reshape(2, 6), a,
             name="reshape of a transposed view")
    check_op(lambda x: x[:, ::2].reshape((6,)), lambda x: x[:, ::2].reshape(6), a,
             name="reshape of a strided slice")


def test_reshape_size_mismatch_names_both_shapes():
    x = ndl.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 2\)"):
        ndl.reshape(x, (4, 2))


@st.composite
def broadcasts(draw):
    """A target shape and a shape that broadcasts to it (size-1 dims, fewer leading dims)."""
    target = draw(shapes(max_dims=4))
    lead = draw(st.integers(0, len(target)))
    shape = tuple(1 if draw(st.booleans()) else d for d in target[lead:])
    return shape, target


@fast
@given(case=broadcasts(), seed=seeds)
def test_broadcast_to(case, seed):
    shape, target = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.broadcast_to(x, target), lambda x: x.broadcast_to(target), a,
             name=f"broadcast_to {shape} -> {target}")


def test_broadcast_to_a_wrong_shape_names_both_shapes():
    x = ndl.Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 3\)"):
        ndl.broadcast_to(x, (4, 3))


@fast
@given(shape=shapes(max_dims=4), data=st.data(), seed=seeds)
def test_permute(shape, data, seed):
    order = data.draw(st.permutations(range(len(shape))))
    order = tuple(i - len(shape) if data.draw(st.booleans()) else i for i in order)
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.permute(x, order), lambda x: x.permute(order), a,
             name=f"permute {shape} {order}")


@fast
@given(shape=shapes(min_dims=2, max_dims=4), data=st.data(), seed=seeds)
def test_transpose_swaps_the_last_two_axes_or_the_two_given(shape, data, seed):
    ndim = len(shape)
    i, j = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(-ndim, ndim - 1))
    (a,) = normal(seed, shape)
    check_op(ndl.transpose, lambda x: x.transpose(-2, -1), a, name=f"transpose {shape}")
    check_op(lambda x: ndl.transpose(x, (i, j)), lambda x: x.transpose(i, j), a,
             name=f"transpose {shape} axes ({i}, {j})")
    assert ndl.Tensor(a).transpose().shape == shape[:-2] + (shape[-1], shape[-2])


def test_T_reverses_all_axes_like_numpy():
    (a,) = normal(1, (2, 3, 4))
    check_op(lambda x: x.T, lambda x: x.permute(2, 1, 0), a, name="T")
    np.testing.assert_array_equal(ndl.Tensor(a, dtype="float64").T.numpy(), a.T)


def test_permute_rejects_a_non_permutation():
    with pytest.raises(ValueError, match="permutation"):
        ndl.permute(ndl.Tensor(np.zeros((2, 3))), (0, 0))


@fast
@given(shape=shapes(max_dims=4), data=st.data(), seed=seeds)
def test_flip(shape, data, seed):
    axes = data.draw(axes_for(len(shape)))
    dims = torch_dims(axes, len(shape))
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.flip(x, axes), lambda x: torch.flip(x, dims), a,
             name=f"flip {shape} {axes}")
    np.testing.assert_array_equal(ndl.Tensor(a, dtype="float64").flip(axes).numpy(),
                                  np.flip(a, axes))


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_pad(shape, data, seed):
    widths = tuple(data.draw(st.tuples(st.integers(0, 2), st.integers(0, 2))) for _ in shape)
    torch_widths = [w for pair in reversed(widths) for w in pair]  # last axis first
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.pad(x, widths), lambda x: F.pad(x, torch_widths), a,
             name=f"pad {shape} {widths}")
    np.testing.assert_array_equal(ndl.pad(ndl.Tensor(a, dtype="float64"), widths).numpy(),
                                  np.pad(a, widths))


def torch_dilate(x, axes, dilation):
    """x with ``dilation`` zeros after each element along ``axes`` (differentiable)."""
    shape = [d * (dilation + 1) if i in axes else d for i, d in enumerate(x.shape)]
    out = x.new_zeros(shape)
    out[tuple(slice(None, None, dilation + 1) if i in axes else slice(None)
              for i in range(x.ndim))] = x
    return out


@fast
@given(shape=shapes(min_dims=1, max_dims=3), data=st.data(), seed=seeds)
def test_dilate_and_undilate(shape, data, seed):
    ndim = len(shape)
    axes = tuple(data.draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim)))
    dilation = data.draw(st.integers(0, 2))
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.dilate(x, axes, dilation), lambda x: torch_dilate(x, axes, dilation),
             a, name=f"dilate {shape} {axes} by {dilation}")
    step = tuple(slice(None, None, dilation + 1) if i in axes else slice(None)
                 for i in range(ndim))
    check_op(lambda x: ndl.undilate(x, axes, dilation), lambda x: x[step], a,
             name=f"undilate {shape} {axes} by {dilation}")
    x = ndl.Tensor(a, dtype="float64")
    np.testing.assert_array_equal(ndl.undilate(ndl.dilate(x, axes, dilation), axes,
                                               dilation).numpy(), a)


def test_dilate_inserts_zeros_after_each_element_like_needle():
    x = ndl.Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_array_equal(ndl.dilate(x, (1,), 2).numpy(),
                                  [[1, 0, 0, 2, 0, 0], [3, 0, 0, 4, 0, 0]])
    assert ndl.dilate(x, (0, 1), 1).shape == (4, 4)


@fast
@given(shape=shapes(max_dims=3), count=st.integers(1, 3), seed=seeds)
def test_stack(shape, count, seed):
    axis = seed % (2 * len(shape) + 2) - (len(shape) + 1)  # any of the ndim + 1 positions
    arrays = normal(seed, *[shape] * count)
    check_op(lambda *xs: ndl.stack(xs, axis), lambda *xs: torch.stack(xs, axis), *arrays,
             name=f"stack {count} x {shape} axis {axis}")
    np.testing.assert_array_equal(
        ndl.stack([ndl.Tensor(v, dtype="float64") for v in arrays], axis).numpy(),
        np.stack(arrays, axis))


@fast
@given(case=shape_and_axis(), seed=seeds)
def test_split(case, seed):
    shape, axis = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.split(x, axis), lambda x: torch.unbind(x, axis), a,
             name=f"split {shape} axis {axis}")
    parts = ndl.split(ndl.Tensor(a), axis)
    assert len(parts) == shape[axis]
    assert all(p.shape == shape[:axis % len(shape)] + shape[axis % len(shape) + 1:]
               for p in parts)


def test_split_then_stack_round_trips():
    (a,) = normal(2, (3, 2))
    check_op(lambda x: ndl.stack([p * p for p in ndl.split(x, 1)], 1), lambda x: x * x, a,
             name="stack(split)")


@fast
@given(case=shape_and_axis(min_side=0), sizes=st.lists(st.integers(0, 3), min_size=1,
                                                        max_size=3), seed=seeds)
def test_concatenate(case, sizes, seed):
    shape, axis = case
    pieces = [shape[:axis % len(shape)] + (n,) + shape[axis % len(shape) + 1:] for n in sizes]
    arrays = normal(seed, *pieces)
    check_op(lambda *xs: ndl.concatenate(xs, axis), lambda *xs: torch.cat(xs, axis), *arrays,
             name=f"concatenate {pieces} axis {axis}")


def test_concatenate_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 4\)"):
        ndl.concatenate([ndl.Tensor(np.zeros((2, 3))), ndl.Tensor(np.zeros((2, 4)))], 0)
