"""Deferred partial adjoints: a weight shared by many products gets its adjoint as one
product of concatenations; op.gradient_as_tuple() still returns Tensors (course-style
gradient checks call it directly)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle.backend_ndarray import ndarray as nd_module
from oracles import check_finite_differences, check_torch


def _recurrence(h, w, xs):
    for x in xs:
        h = (x + h @ w).tanh()
    return h


@settings(max_examples=10, deadline=None)
@given(steps=st.integers(1, 5), batch=st.integers(1, 3), size=st.integers(1, 4),
       seed=st.integers(0, 2**32 - 1))
def test_shared_weight_gradient_equals_torch(steps, batch, size, seed):
    rng = np.random.default_rng(seed)
    h0 = rng.standard_normal((batch, size)) * 0.5
    w = rng.standard_normal((size, size)) * 0.5
    xs = rng.standard_normal((steps, batch, size)) * 0.5

    def ndl_fn(h, w, xs):
        return _recurrence(h, w, ndl.split(xs, 0))

    def torch_fn(h, w, xs):
        return _recurrence(h, w, torch.unbind(xs, 0))

    check_torch(ndl_fn, torch_fn, h0, w, xs, name=f"recurrence of {steps} steps")
    # five tanh steps can shrink the gradient to ~1e-7, where central differences keep only
    # four or five digits; PyTorch above is the exact oracle
    check_finite_differences(ndl_fn, h0, w, xs, atol=1e-4, rtol=1e-3, name="recurrence")


@ndl.reference_mode(False)  # the fast path's deferred adjoints
def test_shared_weight_adjoint_is_one_product(monkeypatch):
    w = ndl.Tensor(np.eye(4, dtype=np.float32) * 0.5)
    h = ndl.Tensor(np.ones((2, 4), np.float32), requires_grad=False)
    for _ in range(10):
        h = (h @ w).tanh()
    loss = h.sum()
    shapes = []
    real = nd_module.NDArray.__matmul__
    monkeypatch.setattr(nd_module.NDArray, "__matmul__",
                        lambda a, b: shapes.append((a.shape, b.shape)) or real(a, b))
    loss.backward()
    weight_products = [s for s in shapes if s[1][0] != 4]  # (4, k) @ (k, 4) products
    assert weight_products == [((4, 20), (20, 4))], shapes


def test_second_derivatives_through_a_shared_weight():
    w0 = np.array([[0.3, -0.2], [0.1, 0.4]])
    x0 = np.array([[1.0, -1.0]])

    def ndl_fn(w):
        h = ndl.Tensor(x0, dtype=w.dtype, requires_grad=False)
        for _ in range(3):
            h = (h @ w).tanh()
        h.sum().backward(create_graph=True)
        return w.grad

    def torch_fn(w):
        h = torch.tensor(x0, dtype=w.dtype)
        for _ in range(3):
            h = torch.tanh(h @ w)
        return torch.autograd.grad(h.sum(), w, create_graph=True)[0]

    check_torch(ndl_fn, torch_fn, w0, name="d/dw of a recurrence's weight gradient")


def test_op_gradients_still_return_tensors():
    a = ndl.Tensor(np.ones((2, 3), np.float32))
    b = ndl.Tensor(np.ones((3, 4), np.float32))
    out = a @ b
    grads = out.op.gradient_as_tuple(ndl.Tensor(np.ones((2, 4), np.float32)), out)
    assert all(isinstance(g, ndl.Tensor) for g in grads)
    np.testing.assert_allclose(grads[1].numpy(), 2 * np.ones((3, 4)))
    parts = ndl.split(a, 0)
    first = parts[0]
    tuple_grad, = first.op.gradient_as_tuple(ndl.Tensor(np.ones(3, np.float32)), first)
    assert isinstance(tuple_grad, ndl.TensorTuple)
    np.testing.assert_allclose(tuple_grad[0].numpy(), np.ones(3))
    np.testing.assert_allclose(tuple_grad[1].numpy(), np.zeros(3))
