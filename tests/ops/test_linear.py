"""ops.linear (x W + b in one op) against PyTorch's F.linear and finite differences."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import ops
from oracles import check_finite_differences, check_torch


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 5), fan_in=st.integers(1, 5), fan_out=st.integers(1, 5),
       bias_shape=st.sampled_from(["row", "vector"]), seed=st.integers(0, 2**16))
def test_linear_matches_torch_and_finite_differences(n, fan_in, fan_out, bias_shape, seed):
    local = np.random.default_rng(seed)
    x, w = local.standard_normal((n, fan_in)), local.standard_normal((fan_in, fan_out))
    b = local.standard_normal((1, fan_out) if bias_shape == "row" else (fan_out,))
    check_torch(ops.linear, lambda a, weight, bias: torch.nn.functional.linear(
        a, weight.T, bias.reshape(-1)).reshape(n, fan_out),
        *(v.astype(np.float32) for v in (x, w, b)), rtol=1e-5, atol=1e-5, name="linear")
    check_finite_differences(ops.linear, x, w, b, name="linear")


def test_linear_without_bias_and_second_derivative():
    local = np.random.default_rng(0)
    x, w = local.standard_normal((3, 2)), local.standard_normal((2, 4))
    check_finite_differences(ops.linear, x, w, name="linear without bias")
    bias = ndl.Tensor(local.standard_normal(4), dtype="float64")

    def weight_gradient(a, weight):
        with ndl.enable_grad():
            (ops.linear(a, weight, bias) ** 2).sum().backward(create_graph=True)
        return weight.grad

    check_finite_differences(weight_gradient, x, w, name="linear second derivative")


def test_linear_rejects_bad_shapes():
    x, w = ndl.Tensor(np.zeros((3, 2))), ndl.Tensor(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"x \(N, in\) and weight \(in, out\), got \(3, 2\) "
                                         r"and \(3, 4\)"):
        ops.linear(x, ndl.Tensor(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\) or \(1, 4\), got \(2, 4\)"):
        ops.linear(x, w, ndl.Tensor(np.zeros((2, 4))))


@pytest.mark.parametrize("bias_shape", [(4,), (1, 4)])
@pytest.mark.parametrize("x_grad", [True, False])
def test_linear_gradient_on_arrays_equals_the_recorded_ops_bitwise(bias_shape, x_grad):
    """A backward pass that records nothing takes Linear's adjoints on arrays
    (``fused.linear_adjoints``); one with ``create_graph`` builds MatMul and Summation
    nodes. The same values, bit for bit, also for a broadcast adjoint (a plain ``sum()``)
    and an input that needs no gradient."""
    local = np.random.default_rng(5)
    values = [local.standard_normal(s).astype(np.float32) for s in ((6, 3), (3, 4), bias_shape)]
    for loss in (lambda y: y.sum(), lambda y: (y * y).sum()):
        grads = []
        for create_graph in (False, True):
            x, w, b = (ndl.Tensor(v, requires_grad=g) for v, g in zip(values, (x_grad, 1, 1)))
            loss(ops.linear(x, w, b)).backward(create_graph=create_graph)
            grads.append([None if t.grad is None else t.grad.numpy() for t in (x, w, b)])
        assert (grads[0][0] is None) == (not x_grad)
        for on_arrays, recorded in zip(*grads):
            if on_arrays is not None:
                np.testing.assert_array_equal(on_arrays, recorded)
                assert on_arrays.dtype == np.float32
