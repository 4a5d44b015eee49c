"""The oracles themselves must be able to fail."""

import numpy as np
import pytest
import torch

import needle as ndl
from oracles import check_finite_differences, check_torch


def test_oracles_pass_on_a_correct_op():
    x = np.random.default_rng(0).standard_normal((3, 4))
    check_torch(lambda a: (a * a).sum(axes=1), lambda a: (a * a).sum(1), x, name="square-sum")
    check_finite_differences(lambda a: a * a, x, name="square")


class _WrongGradient(ndl.autograd.TensorOp):
    def compute(self, a):
        return a * a

    def gradient(self, out_grad, node):
        return out_grad * node.inputs[0]  # missing the factor 2


def test_oracles_catch_a_wrong_gradient():
    x = np.random.default_rng(0).standard_normal((3, 4))
    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_torch(lambda a: _WrongGradient()(a), lambda a: a * a, x, name="wrong")
    with pytest.raises(AssertionError, match="relative error"):
        check_finite_differences(lambda a: _WrongGradient()(a), x, name="wrong")


def test_oracles_catch_a_wrong_forward():
    x = np.random.default_rng(0).standard_normal((2, 2))
    with pytest.raises(AssertionError, match="output 0"):
        check_torch(lambda a: a * 2, lambda a: a * 3, x, name="scale")
