"""ops.softmax_cross_entropy (per-row losses) against PyTorch, finite differences (first and
second order), large logits, and bad labels."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from oracles import check_finite_differences, check_torch


def _case(n, c, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, c)) * scale, rng.integers(0, c, n)


@settings(max_examples=20, deadline=None)
@given(n=st.integers(1, 6), c=st.integers(1, 7), seed=st.integers(0, 100))
def test_equals_torch_and_finite_differences(n, c, seed):
    z, y = _case(n, c, seed)
    check_torch(lambda a: ndl.ops.softmax_cross_entropy(a, y),
                lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(y),
                                                            reduction="none"),
                z, name=f"softmax_cross_entropy {n}x{c}")
    check_finite_differences(lambda a: ndl.ops.softmax_cross_entropy(a, y), z,
                             name=f"softmax_cross_entropy {n}x{c}")


def test_float32_matches_torch_on_large_vocabulary():
    z, y = _case(64, 5000, 0, scale=3.0)
    z = z.astype(np.float32)
    check_torch(lambda a: ndl.ops.softmax_cross_entropy(a, y).sum() / 64,
                lambda a: torch.nn.functional.cross_entropy(a, torch.tensor(y)),
                z, rtol=1e-4, atol=1e-6, name="cross entropy float32")


def _weighted_loss(a, y):
    weights = ndl.Tensor([1.0, 2.0, 3.0], dtype=a.dtype, requires_grad=False)
    return (ndl.ops.softmax_cross_entropy(a, y) * weights).sum()


def test_second_derivatives_equal_torch_and_finite_differences():
    z, y = _case(3, 4, 1)

    def ndl_grad(a):
        _weighted_loss(a, y).backward(create_graph=True)
        return a.grad

    def torch_grad(a):
        loss = (torch.nn.functional.cross_entropy(a, torch.tensor(y), reduction="none")
                * torch.tensor([1.0, 2.0, 3.0], dtype=a.dtype)).sum()
        return torch.autograd.grad(loss, a, create_graph=True)[0]

    check_torch(ndl_grad, torch_grad, z, name="cross entropy gradient")
    # d/dz sum(grad(z) * p) by double backward, against central differences of grad(z)
    p = np.random.default_rng(2).standard_normal(z.shape)
    x = ndl.Tensor(z, dtype="float64")
    (ndl_grad(x) * ndl.Tensor(p, requires_grad=False)).sum().backward()

    def first_grad(values):
        t = ndl.Tensor(values, dtype="float64")
        _weighted_loss(t, y).backward()
        return t.grad.numpy()

    numeric = np.zeros_like(z)
    for j in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[j] = 1e-6
        numeric[j] = ((first_grad(z + step) - first_grad(z - step)) * p).sum() / 2e-6
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-5, atol=1e-8)


def test_large_logits_stay_finite():
    z = ndl.Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4]], np.float32))
    loss = ndl.ops.softmax_cross_entropy(z, [0, 2])
    loss.sum().backward()
    np.testing.assert_allclose(loss.numpy(), [0.0, np.log(3)], rtol=1e-5, atol=1e-6)
    assert np.isfinite(z.grad.numpy()).all()


@pytest.mark.parametrize("labels, match", [([0, 3], r"\[0, 3\).*\[0, 3\]"),
                                           ([-1, 0], r"\[0, 3\)"),
                                           ([0, 1, 2], r"labels \(N,\)")])
def test_bad_labels_are_clear_errors(labels, match):
    z = ndl.Tensor(np.zeros((2, 3), np.float32))
    with pytest.raises((IndexError, ValueError), match=match):
        ndl.ops.softmax_cross_entropy(z, np.array(labels))
