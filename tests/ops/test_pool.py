"""The MaxPool primitive equals the composed max over im2col windows (values, first and
second derivatives) and PyTorch's max_pool2d where no ties occur."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import ops


def composed(a: ndl.Tensor, k: int) -> ndl.Tensor:
    return ops.amax(ops.im2col(a, k, stride=k), (3, 4))


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(2, 9), w=st.integers(2, 9), c=st.integers(1, 4),
       k=st.integers(2, 3), ties=st.booleans(), seed=st.integers(0, 2**31))
def test_primitive_equals_composition(n, h, w, c, k, ties, seed):
    if h < k or w < k:
        return
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 3, (n, h, w, c)) if ties else rng.standard_normal((n, h, w, c))
    weights = rng.standard_normal((n, h // k, w // k, c))
    results = []
    for pool in (ops.max_pool, composed):
        x = ndl.Tensor(values, dtype="float64", requires_grad=True)
        out = pool(x, k)
        (out * ndl.Tensor(weights, dtype="float64")).sum().backward(create_graph=True)
        first = x.grad
        (first * first).sum().backward()  # through the gradient's own gradient
        results.append((out.numpy(), first.numpy(), None))
    (out_a, grad_a, _), (out_b, grad_b, _) = results
    np.testing.assert_allclose(out_a, out_b, rtol=0, atol=0)
    np.testing.assert_allclose(grad_a, grad_b, rtol=1e-12, atol=1e-12)


def test_second_derivative_in_the_output_adjoint():
    """d/dv of sum(grad_x(v)^2) with grad_x = MaxPoolGrad(v): 2 v at each window's max."""
    rng = np.random.default_rng(0)
    values, adjoint = rng.standard_normal((2, 4, 6, 3)), rng.standard_normal((2, 2, 3, 3))
    grads = []
    for pool in (ops.max_pool, composed):
        x = ndl.Tensor(values, dtype="float64", requires_grad=True)
        v = ndl.Tensor(adjoint, dtype="float64", requires_grad=True)
        (pool(x, 2) * v).sum().backward(create_graph=True)
        (x.grad * x.grad).sum().backward()
        grads.append(v.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-12)


def test_matches_torch_without_ties():
    rng = np.random.default_rng(1)
    values = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)  # NCHW, odd sizes
    x = ndl.Tensor(values, requires_grad=True)
    out = ndl.nn.MaxPool2d(2)(x)
    out.backward(ndl.Tensor(np.ones(out.shape, np.float32)))
    tx = torch.tensor(values, requires_grad=True)
    tout = torch.nn.functional.max_pool2d(tx, 2)
    tout.backward(torch.ones_like(tout))
    np.testing.assert_array_equal(out.numpy(), tout.detach().numpy())
    np.testing.assert_array_equal(x.grad.numpy(), tx.grad.numpy())


@ndl.reference_mode(False)  # the choice being tested is the fast path's
def test_max_pool2d_uses_the_primitive_only_for_non_overlapping_windows():
    x = ndl.Tensor(np.zeros((1, 4, 4, 1)))
    assert isinstance(ops.max_pool2d(x, 2).op, ops.MaxPool)
    assert not isinstance(ops.max_pool2d(x, 2, stride=1).op, ops.MaxPool)
    assert not isinstance(ops.max_pool2d(x, 2, padding=1).op, ops.MaxPool)


def test_the_routed_gradient_keeps_float32_with_ties():
    """Ties divide the gradient among them; that division must not turn float32 into
    float64 (MaxPoolGrad's own result, before backward casts adjoints back)."""
    a = ndl.Tensor(np.ones((1, 4, 4, 2), np.float32))  # every element ties in its window
    y = ops.max_pool(a, 2)
    g = ndl.Tensor(np.full((1, 2, 2, 2), 4.0, np.float32))
    routed = ops.MaxPoolGrad(2)(g, a, y)
    assert routed.dtype == np.float32
    np.testing.assert_array_equal(routed.numpy(), np.ones((1, 4, 4, 2), np.float32))


def test_a_window_of_nans_gets_no_gradient_and_no_warning():
    """As before the no-tie shortcut: NaN != NaN, so a NaN window has no maximum to route
    to; its gradient is 0, and no 0/0 warning is raised."""
    import warnings

    values = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    values[0, 0, 0, 0] = np.nan
    x = ndl.Tensor(values, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ops.max_pool(x, 2).sum().backward()
    grad = x.grad.numpy()[0, :, :, 0]
    assert grad[:2, :2].sum() == 0  # the NaN window
    np.testing.assert_array_equal(grad[2:, 2:], [[0, 0], [0, 1]])


@pytest.mark.parametrize("k", [15, 16, 17])
def test_ties_in_windows_of_more_than_255_elements_share_the_gradient(k):
    """A k x k window of zeros (after a ReLU) ties k^2 times; the tie count must not wrap
    around in a small integer type: each element gets 1/k^2, the window's total stays 1."""
    x = ndl.Tensor(np.zeros((1, k, k, 2), np.float32), requires_grad=True)
    ops.max_pool(x, k).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.full((1, k, k, 2), 1 / k ** 2), rtol=1e-6)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 4), w=st.integers(1, 4), c=st.integers(1, 5),
       k=st.integers(1, 4), ties=st.booleans(), seed=st.integers(0, 2**31))
def test_the_gradient_by_rows_equals_the_per_offset_loop_bitwise(n, h, w, c, k, ties, seed):
    """``_routed_by_rows`` (windows covering a contiguous input) gives bitwise the values of
    the per-offset loop, ties of every count (1/3 included) and NaN windows too."""
    from needle.ops.fused import pool

    rng = np.random.default_rng(seed)
    shape = (n, h * k, w * k, c)
    values = rng.integers(0, 3, shape) if ties else rng.standard_normal(shape)
    values = values.astype(np.float32)
    values.flat[rng.integers(0, values.size)] = np.nan
    a = ndl.Tensor(values)
    y = ops.max_pool(a, k)
    g = ndl.Tensor(rng.standard_normal(y.shape).astype(np.float32))
    routed = {}
    for by_rows in (True, False):
        pool.BY_ROWS = by_rows
        try:
            routed[by_rows] = ops.MaxPoolGrad(k)(g, a, y).numpy()
        finally:
            pool.BY_ROWS = True
    np.testing.assert_array_equal(routed[True], routed[False])
