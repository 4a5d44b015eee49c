"""MatMul(transpose_a, transpose_b): forward, gradients and second derivatives."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle.ops import MatMul
from oracles import check_finite_differences, check_torch


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("lead", [(), (2,)])
def test_transposed_operands(ta, tb, lead):
    local = np.random.default_rng(0)
    a = local.standard_normal(lead + ((4, 3) if ta else (3, 4)))
    b = local.standard_normal(lead + ((5, 4) if tb else (4, 5)))

    def reference(x, y):
        return (x.transpose(-1, -2) if ta else x) @ (y.transpose(-1, -2) if tb else y)

    check_torch(MatMul(ta, tb), reference, a.astype(np.float32), b.astype(np.float32),
                rtol=1e-4, atol=1e-5, name=f"MatMul({ta}, {tb})")
    check_finite_differences(MatMul(ta, tb), a, b, name=f"MatMul({ta}, {tb})")

    def gradients(x, y):
        with ndl.enable_grad():
            (MatMul(ta, tb)(x, y) ** 2).sum().backward(create_graph=True)
        return x.grad, y.grad

    check_finite_differences(gradients, a, b, name=f"MatMul({ta}, {tb}) second derivative")
