"""ops.softmax_cross_entropy: forward, gradients and second derivatives."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import ops
from oracles import check_finite_differences, check_torch


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch_and_has_second_derivatives(reduction):
    local = np.random.default_rng(0)
    logits, labels = local.standard_normal((5, 4)) * 3, local.integers(0, 4, 5)
    check_torch(lambda z: ops.softmax_cross_entropy(z, labels, reduction),
                lambda z: torch.nn.functional.cross_entropy(z, torch.tensor(labels),
                                                            reduction=reduction),
                logits.astype(np.float32), rtol=1e-5, atol=1e-6, name="cross entropy")
    check_finite_differences(lambda z: ops.softmax_cross_entropy(z, labels, reduction), logits,
                             name="cross entropy")

    def gradient(z):
        with ndl.enable_grad():
            loss = ops.softmax_cross_entropy(z, labels, reduction)
            (loss * loss).sum().backward(create_graph=True)
        return z.grad

    check_finite_differences(gradient, logits, name="cross entropy second derivative")


def test_large_logits_stay_finite():
    logits = np.array([[3e4, -3e4, 0.0], [-1e4, 1e4, 2e4]], np.float32)
    check_torch(lambda z: ops.softmax_cross_entropy(z, [1, 0]),
                lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([1, 0])),
                logits, rtol=1e-6, atol=1e-3, name="cross entropy large")
