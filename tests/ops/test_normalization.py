"""Normalize / NormalizeGrad: forward and gradient against PyTorch and finite differences,
over hypothesis-drawn shapes and axes, and second derivatives."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import ops
from oracles import check_finite_differences, check_torch

fast = settings(max_examples=15, deadline=None)


@st.composite
def shapes_and_axes(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=3)))
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    if all(shape[a] == 1 for a in axes):  # a group of one element has zero variance
        shape = tuple(3 if i == axes[0] else d for i, d in enumerate(shape))
    return shape, tuple(sorted(axes))


def _torch_normalize(x, axes, eps=1e-5):
    mean = x.mean(dim=axes, keepdim=True)
    var = x.var(dim=axes, unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps)


@fast
@given(case=shapes_and_axes(), seed=st.integers(0, 2**16))
def test_normalize_matches_torch_and_finite_differences(case, seed):
    shape, axes = case
    x = np.random.default_rng(seed).standard_normal(shape) * 2 + 1
    check_torch(lambda a: ops.normalize(a, axes), lambda a: _torch_normalize(a, axes),
                x.astype(np.float32), rtol=1e-4, atol=1e-4, name=f"normalize axes={axes}")
    # "+ a" keeps the projected gradient away from 0, where a relative error means nothing
    # (normalize's Jacobian annihilates 1 and the output, so a projection can nearly vanish)
    check_finite_differences(lambda a: ops.normalize(a, axes) + a, x, name=f"normalize {axes}")


def test_batch_norm_returns_the_batch_statistics():
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    _, mean, var = ops.batch_norm(ndl.Tensor(x), 0, 1e-5)
    np.testing.assert_allclose(mean.numpy().reshape(-1), x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(var.numpy().reshape(-1), x.var(0), rtol=1e-5)
    assert not mean.requires_grad and not var.requires_grad


@fast
@given(case=shapes_and_axes(), seed=st.integers(0, 2**16))
def test_normalize_second_derivative(case, seed):
    """The gradient of <normalize(x), p> is itself differentiated (through NormalizeGrad)."""
    shape, axes = case
    local = np.random.default_rng(seed)
    x = local.standard_normal(shape)
    projection = ndl.Tensor(local.standard_normal(shape), dtype="float64", requires_grad=False)

    def gradient(a):
        with ndl.enable_grad():  # recorded even inside the oracle's no_grad evaluations
            (ops.normalize(a, axes) * projection).sum().backward(create_graph=True)
        return a.grad + a

    check_finite_differences(gradient, x, name="normalize second derivative")


def test_normalize_grad_is_differentiable_in_both_inputs():
    local = np.random.default_rng(3)
    g, x = local.standard_normal((4, 3)), local.standard_normal((4, 3))

    def normalize_grad(upstream, a):
        _, (normalized, _, _, inv_std) = ops.Normalize((0,), 1e-5).compute(a.cached_data)
        constants = (ndl.Tensor(v, requires_grad=False) for v in (normalized, inv_std))
        return ops.NormalizeGrad((0,), 1e-5)(upstream, a, *constants)

    check_finite_differences(normalize_grad, g, x, name="NormalizeGrad")


AFFINE_CASES = [((5, 3), (0,), 1), ((2, 3, 4), (2,), -1), ((3, 2, 2, 2), (0, 2, 3), 1),
                ((4, 6), (1,), -1)]


@pytest.mark.parametrize("shape, axes, channel_axis", AFFINE_CASES)
def test_normalize_with_weight_and_bias(shape, axes, channel_axis):
    """BatchNorm (channels on axis 1) and LayerNorm (channels = the normalised last axis)."""
    local = np.random.default_rng(len(shape))
    x = local.standard_normal(shape) * 2 + 0.5
    channels = shape[channel_axis]
    w, b = local.standard_normal(channels), local.standard_normal(channels)
    view = [1] * len(shape)
    view[channel_axis] = channels

    def reference(a, weight, bias):
        return _torch_normalize(a, axes) * weight.reshape(view) + bias.reshape(view)

    def ours(a, weight, bias):
        return ops.normalize(a, axes, 1e-5, weight, bias, channel_axis)

    f32 = [v.astype(np.float32) for v in (x, w, b)]
    check_torch(ours, reference, *f32, rtol=1e-4, atol=1e-4, name="normalize affine")
    check_finite_differences(lambda a, weight, bias: ours(a, weight, bias) + a, x, w, b,
                             name="normalize affine")


@pytest.mark.parametrize("shape, axes, channel_axis", AFFINE_CASES)
def test_normalize_with_weight_second_derivative(shape, axes, channel_axis):
    """Through NormalizeAffineGrad's own gradient: the upstream gradient 2 out p depends on
    x, w and b, so every cotangent path (dx, dw, db) is exercised."""
    local = np.random.default_rng(7)
    x = local.standard_normal(shape)
    w, b = local.standard_normal((2, shape[channel_axis]))
    projection = ndl.Tensor(local.standard_normal(shape), dtype="float64", requires_grad=False)

    def gradients(a, weight, bias):
        with ndl.enable_grad():
            out = ops.normalize(a, axes, 1e-5, weight, bias, channel_axis)
            (out * out * projection).sum().backward(create_graph=True)
        return a.grad + a, weight.grad, bias.grad

    check_finite_differences(gradients, x, w, b, name="normalize affine 2nd")


def test_normalize_rejects_misshaped_weight():
    x = ndl.Tensor(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match=r"shape \(3,\) for input \(4, 3\).* got \(4,\)"):
        ops.normalize(x, 0, 1e-5, ndl.Tensor(np.ones(4, np.float32)),
                      ndl.Tensor(np.ones(4, np.float32)), channel_axis=1)
