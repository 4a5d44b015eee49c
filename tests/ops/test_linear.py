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
