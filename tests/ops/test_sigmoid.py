"""The Sigmoid primitive against PyTorch and finite differences, at any magnitude."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
import torch

import needle as ndl
from oracles import check_finite_differences, check_torch


@settings(max_examples=15, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=3), scale=st.sampled_from([1, 5]),
       seed=st.integers(0, 2**32 - 1))
def test_sigmoid_equals_torch_and_finite_differences(shape, scale, seed):
    x = np.random.default_rng(seed).standard_normal(shape) * scale
    check_torch(ndl.sigmoid, torch.sigmoid, x, name=f"sigmoid {shape}")
    check_finite_differences(ndl.sigmoid, x / scale, name=f"sigmoid {shape}")


def test_second_derivative_equals_torch():
    x = np.array([-2.0, 0.3, 1.5])

    def ndl_fn(a):
        ndl.sigmoid(a).sum().backward(create_graph=True)
        return a.grad

    def torch_fn(a):
        return torch.autograd.grad(torch.sigmoid(a).sum(), a, create_graph=True)[0]

    check_torch(ndl_fn, torch_fn, x, name="sigmoid'")


def test_sigmoid_never_overflows():
    x = ndl.Tensor(np.array([-1e4, -100.0, 0.0, 100.0, 1e4], np.float32))
    y = ndl.sigmoid(x)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), [0, 0, 0.5, 1, 1], atol=1e-30)
    assert np.isfinite(x.grad.numpy()).all()


def _second_derivative_check(ndl_op, torch_op, x):
    def ndl_fn(a):
        (ndl_op(a) * ndl_op(a * 0.7)).sum().backward(create_graph=True)
        return a.grad

    def torch_fn(a):
        loss = (torch_op(a) * torch_op(a * 0.7)).sum()
        return torch.autograd.grad(loss, a, create_graph=True)[0]

    check_torch(ndl_fn, torch_fn, x, name=f"{ndl_op.__name__}''")


def test_activation_gradient_ops_differentiate_again():
    """TanhGrad, SigmoidGrad and ReLUGrad: first and second derivatives against PyTorch."""
    x = np.random.default_rng(3).standard_normal((3, 4))
    for ndl_op, torch_op in ((ndl.tanh, torch.tanh), (ndl.sigmoid, torch.sigmoid),
                             (ndl.relu, torch.relu)):
        check_torch(ndl_op, torch_op, x, name=ndl_op.__name__)
        _second_derivative_check(ndl_op, torch_op, x)
