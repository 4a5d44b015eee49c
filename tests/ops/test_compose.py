"""Compositions (sub, mean, sqrt) have no backward code of their own, so these tests check
that the primitives compose into the right values and gradients; sigmoid and softmax (now
primitives for speed and exactness) are checked here the same way."""

import numpy as np
import pytest
import torch
from hypothesis import given

import needle as ndl
from strategies import (broadcast_pairs, check_op, fast, normal, positive, seeds, shape_and_axes,
                        shape_and_axis, shapes, torch_reduce)


@fast
@given(pair=broadcast_pairs(), seed=seeds)
def test_sub(pair, seed):
    check_op(ndl.sub, torch.sub, *normal(seed, *pair), name=f"sub {pair}")
    (a,) = normal(seed, pair[0])
    check_op(lambda x: ndl.sub(x, 1.5), lambda x: x - 1.5, a, name="sub a number")
    check_op(lambda x: ndl.sub(1.5, x), lambda x: 1.5 - x, a, name="sub from a number")


@fast
@given(case=shape_and_axes(), seed=seeds)
def test_mean(case, seed):
    shape, axes = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.mean(x, axes), torch_reduce(torch.mean, axes), a,
             name=f"mean {shape} {axes}")
    check_op(lambda x: x.mean(axes, keepdims=True), torch_reduce(torch.mean, axes, True), a,
             name=f"mean keepdims {shape} {axes}")


UNARY = {"sigmoid": (ndl.sigmoid, torch.sigmoid, normal),
         "sqrt": (ndl.sqrt, torch.sqrt, positive)}


@pytest.mark.parametrize("name", sorted(UNARY))
@fast
@given(shape=shapes(min_side=0), seed=seeds)
def test_unary_compositions(name, shape, seed):
    ndl_fn, torch_fn, make = UNARY[name]
    (a,) = make(seed, shape)
    check_op(ndl_fn, torch_fn, a, name=name)


def test_sigmoid_saturates_without_overflow():
    x = ndl.Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], np.float32))
    y = ndl.sigmoid(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [0, 0, 0.5, 1, 1], atol=1e-7)
    assert np.isfinite(x.grad.numpy()).all()


@fast
@given(case=shape_and_axis(), seed=seeds)
def test_softmax(case, seed):
    shape, axis = case
    (a,) = normal(seed, shape)
    check_op(lambda x: ndl.softmax(x, axis), lambda x: torch.softmax(x, axis), a,
             name=f"softmax {shape} axis {axis}")


def test_sqrt_matches_numpy():
    (a,) = positive(0, (3, 4))
    np.testing.assert_allclose(ndl.Tensor(a).sqrt().numpy(), np.sqrt(a), rtol=1e-6)
