"""Reductions (summation, max): axes None/int/tuple (negative too), keepdims, empty axes."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from oracles import check_torch
from strategies import check_op, fast, normal, seeds, shape_and_axes, torch_reduce


@fast
@given(case=shape_and_axes(min_side=0), keepdims=st.booleans(), seed=seeds)
def test_summation(case, keepdims, seed):
    shape, axes = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.summation(x, axes, keepdims=keepdims),
             torch_reduce(torch.sum, axes, keepdims), a, name=f"summation {shape} {axes}")
    np.testing.assert_allclose(ndl.Tensor(a).sum(axes, keepdims).numpy(),
                               np.sum(a, axis=axes, keepdims=keepdims), rtol=1e-5, atol=1e-5)


def test_sum_over_an_empty_axis_is_zero():
    x = ndl.Tensor(np.zeros((0, 3)))
    np.testing.assert_array_equal(x.sum(0).numpy(), np.zeros(3))
    assert x.sum(1).shape == (0,)


@fast
@given(case=shape_and_axes(), seed=seeds)
def test_max(case, seed):
    shape, axes = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.max(x, axes), torch_reduce(torch.amax, axes), a,
             name=f"max {shape} {axes}")
    np.testing.assert_array_equal(ndl.Tensor(a).max(axes).numpy(),  # float64 stays float64
                                  np.max(a, axis=axes))


def test_max_keepdims_and_tensor_method():
    (a,) = normal(1, (2, 3, 4))
    check_op(lambda x: x.max(-1, keepdims=True), lambda x: x.amax(-1, keepdim=True), a,
             name="max keepdims")
    check_op(lambda x: x.max(), lambda x: x.amax(), a, name="max of all")


def test_max_splits_the_gradient_among_ties_like_torch_amax():
    a = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    check_torch(lambda x: ndl.max(x, 1), lambda x: x.amax(1), a, name="max with ties")
    check_torch(lambda x: ndl.max(x), lambda x: x.amax(), a, name="max with ties, all axes")


def test_max_over_an_empty_axis_is_an_error():
    x = ndl.Tensor(np.zeros((0, 3)))
    assert x.max(1).shape == (0,)  # the reduced axis is not empty: fine
    with pytest.raises(ValueError, match=r"empty axis.*\(0, 3\)"):
        x.max(0)
