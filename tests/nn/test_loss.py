"""Losses against PyTorch (forward and gradients) and finite differences; bad labels."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from oracles import check_finite_differences, check_torch

fast = settings(max_examples=15, deadline=None)


@fast
@given(n=st.integers(1, 6), classes=st.integers(1, 5), seed=st.integers(0, 2**16),
       reduction=st.sampled_from(["mean", "sum", "none"]),
       loss=st.sampled_from([nn.SoftmaxLoss, nn.CrossEntropyLoss]))
def test_softmax_loss_matches_torch_cross_entropy(n, classes, seed, reduction, loss):
    local = np.random.default_rng(seed)
    logits = (local.standard_normal((n, classes)) * 3).astype(np.float32)
    labels = local.integers(0, classes, n)
    check_torch(lambda z, y: loss(reduction)(z, y),
                lambda z, y: torch.nn.functional.cross_entropy(z, y, reduction=reduction),
                logits, labels, rtol=1e-5, atol=1e-6, name="SoftmaxLoss")
    check_finite_differences(lambda z: loss(reduction)(z, labels), logits.astype(np.float64),
                             name="SoftmaxLoss")


@pytest.mark.filterwarnings("error")  # the overflow of e^z is expected, and redone
def test_softmax_loss_is_stable_for_large_logits():
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0], [-1e4, -1e4, -2e4]], np.float32)
    check_torch(lambda z: nn.SoftmaxLoss()(z, np.array([0, 2, 1])),
                lambda z: torch.nn.functional.cross_entropy(z, torch.tensor([0, 2, 1])),
                logits, rtol=1e-5, atol=1e-5, name="SoftmaxLoss large")


def test_softmax_loss_rejects_bad_labels():
    logits = ndl.Tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(IndexError, match=r"\[0, 4\), got values in \[0, 7\]"):
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.array([0, 7, 1])))
    with pytest.raises(ValueError,
                       match=r"logits \(N, C\) and labels \(N,\), got \(3, 4\) and \(2,\)"):
        nn.SoftmaxLoss()(logits, ndl.Tensor(np.array([0, 1])))
    with pytest.raises(ValueError, match="reduction"):
        nn.SoftmaxLoss("average")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    local = np.random.default_rng(1)
    a, b = (local.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    check_torch(lambda x, y: nn.MSELoss(reduction)(x, y),
                lambda x, y: torch.nn.functional.mse_loss(x, y, reduction=reduction),
                a, b, rtol=1e-5, atol=1e-6, name="MSELoss")
    with pytest.raises(ValueError, match=r"\(3, 4\) and target \(4,\)"):
        nn.MSELoss()(ndl.Tensor(a), ndl.Tensor(b[0]))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_matches_torch_even_for_large_logits(reduction):
    local = np.random.default_rng(2)
    logits = np.concatenate([local.standard_normal(6) * 4, [0.0, 80.0, -80.0]]).astype(np.float32)
    target = local.random(9).astype(np.float32)
    check_torch(lambda z, y: nn.BCEWithLogitsLoss(reduction)(z, y),
                lambda z, y: torch.nn.functional.binary_cross_entropy_with_logits(
                    z, y, reduction=reduction),
                logits, target, rtol=1e-5, atol=1e-5, name="BCEWithLogitsLoss")
    check_finite_differences(lambda z: nn.BCEWithLogitsLoss(reduction)(z, target[:6]),
                             logits[:6].astype(np.float64), name="BCEWithLogitsLoss")
