"""matmul: 2-D, batched, broadcast leading axes and 1-D operands (PyTorch's rules)."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import needle as ndl
from strategies import broadcast_pairs, check_op, fast, normal, seeds


@st.composite
def matmul_shapes(draw):
    """lhs and rhs shapes with a shared inner dim, broadcastable batch dims, maybe 1-D."""
    lhs_batch, rhs_batch = draw(broadcast_pairs(max_dims=2, max_side=3))
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    lhs = (k,) if draw(st.integers(0, 4)) == 0 else lhs_batch + (m, k)
    rhs = (k,) if draw(st.integers(0, 4)) == 0 else rhs_batch + (k, n)
    return lhs, rhs


@fast
@given(case=matmul_shapes(), seed=seeds)
def test_matmul(case, seed):
    a, b = normal(seed, *case)
    check_op(ndl.matmul, torch.matmul, a, b, name=f"matmul {case[0]} @ {case[1]}")
    got = ndl.Tensor(a, dtype="float64") @ ndl.Tensor(b, dtype="float64")
    np.testing.assert_allclose(got.numpy(), np.matmul(a, b), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("lhs, rhs", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)),
                                      ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                                      ((4,), (2, 4, 3)), ((2, 3, 4), (4,))])
def test_matmul_common_layouts(lhs, rhs):
    a, b = normal(0, lhs, rhs)
    check_op(ndl.matmul, torch.matmul, a, b, name=f"matmul {lhs} @ {rhs}")


def test_matmul_of_transposed_and_sliced_views():
    a, b = normal(1, (5, 4), (6, 5))
    check_op(lambda x, y: x.transpose() @ y[::2].transpose(), lambda x, y: x.T @ y[::2].T,
             a, b, name="matmul of views")


def test_matmul_method_and_reflected_operator():
    a, b = normal(2, (3, 4), (4, 2))
    check_op(lambda x, y: x.matmul(y), torch.matmul, a, b, name="Tensor.matmul")
    out = a.astype(np.float32) @ ndl.Tensor(b.astype(np.float32))  # numpy defers to Tensor.__rmatmul__
    assert isinstance(out, ndl.Tensor)
    np.testing.assert_allclose(out.numpy(), a @ b, rtol=1e-5)


def test_matmul_skips_the_gradient_of_a_constant_operand():
    a, b = normal(3, (3, 4), (4, 2))
    x, w = ndl.Tensor(a, requires_grad=False), ndl.Tensor(b)
    (x @ w).sum().backward()
    assert x.grad is None
    np.testing.assert_allclose(w.grad.numpy(), a.T @ np.ones((3, 2)), rtol=1e-5)


@pytest.mark.parametrize("lhs, rhs", [((2, 3), (4, 5)), ((2, 3), (2,)), ((4,), (2, 3, 4))])
def test_matmul_shape_mismatch_names_both_shapes(lhs, rhs):
    x, y = ndl.Tensor(np.zeros(lhs)), ndl.Tensor(np.zeros(rhs))
    with pytest.raises(ValueError, match=rf"{lhs}.*{rhs}".replace("(", r"\(").replace(")", r"\)")):
        x @ y
