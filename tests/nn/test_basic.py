"""nn layers against PyTorch with copied weights (forward and gradients), and finite
differences in float64. needle's Linear weight is (in, out): PyTorch's transposed."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from oracles import check_finite_differences, check_torch

fast = settings(max_examples=15, deadline=None)
rng = np.random.default_rng(0)


def _f32(*shape):
    return rng.standard_normal(shape).astype(np.float32)


@fast
@given(n=st.integers(1, 5), fan_in=st.integers(1, 6), fan_out=st.integers(1, 6),
       bias=st.booleans(), lead=st.sampled_from([None, (), (2,), (2, 3)]))
def test_linear_matches_torch(n, fan_in, fan_out, bias, lead):
    """``lead`` None: a single vector (in,)."""
    layer = nn.Linear(fan_in, fan_out, bias=bias)
    ref = torch.nn.Linear(fan_in, fan_out, bias=bias)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.numpy().T))
        if bias:
            ref.bias.copy_(torch.tensor(layer.bias.numpy().reshape(-1)))
    x = _f32(fan_in) if lead is None else _f32(*lead, n, fan_in)
    check_torch(layer, ref, x, rtol=1e-5, atol=1e-5, name="Linear")
    out = layer(ndl.Tensor(x))
    out.sum().backward()
    ref.zero_grad()  # PyTorch accumulates the gradients of check_torch's backward
    ref(torch.tensor(x)).sum().backward()
    np.testing.assert_allclose(layer.weight.grad.numpy(), ref.weight.grad.numpy().T, rtol=1e-5,
                               atol=1e-5)
    if bias:
        np.testing.assert_allclose(layer.bias.grad.numpy().reshape(-1), ref.bias.grad.numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_linear_initialisation_follows_the_contract_rng_order():
    np.random.seed(3)
    layer = nn.Linear(5, 4)
    np.random.seed(3)
    bound_w, bound_b = np.sqrt(2) * np.sqrt(3 / 5), np.sqrt(2) * np.sqrt(3 / 4)
    weight = (-bound_w + 2 * bound_w * np.random.rand(5, 4)).astype(np.float32)
    bias = (-bound_b + 2 * bound_b * np.random.rand(4, 1)).astype(np.float32).reshape(1, 4)
    np.testing.assert_array_equal(layer.weight.numpy(), weight)
    np.testing.assert_array_equal(layer.bias.numpy(), bias)
    assert layer.weight.dtype == np.float32 and isinstance(layer.weight, nn.Parameter)


def test_linear_rejects_wrong_features():
    with pytest.raises(ValueError, match=r"inputs \(\.\.\., 3\), got shape \(2, 4\)"):
        nn.Linear(3, 2)(ndl.Tensor(_f32(2, 4)))


@pytest.mark.parametrize("module, reference", [
    (nn.ReLU(), torch.relu), (nn.Tanh(), torch.tanh), (nn.Sigmoid(), torch.sigmoid),
    (nn.LeakyReLU(0.1), lambda x: torch.nn.functional.leaky_relu(x, 0.1)),
    (nn.GELU(), torch.nn.functional.gelu),
    (nn.GELU("tanh"), lambda x: torch.nn.functional.gelu(x, approximate="tanh")),
    (nn.Identity(), lambda x: x),
    (nn.Flatten(), lambda x: x.reshape(x.shape[0], -1)),
])
def test_activations_and_reshapes_match_torch(module, reference):
    x = _f32(3, 2, 4)
    # atol 3e-6: GELU("tanh")'s gradient is O(1) terms cancelling; on some draws of x
    # (default_rng(301)) needle's and PyTorch's float32 gradients each err by ~2e-7 against
    # float64 under the unit projection and differed by 1.07e-6 under check_torch's
    check_torch(module, reference, x, rtol=1e-5, atol=3e-6, name=type(module).__name__)
    check_finite_differences(module, x.astype(np.float64) + 0.05, name=type(module).__name__)


def test_leaky_relu_gradient_at_zero_is_the_slope_like_torch():
    check_torch(nn.LeakyReLU(0.2), lambda x: torch.nn.functional.leaky_relu(x, 0.2),
                np.array([-1.0, 0.0, 2.0], np.float32), name="LeakyReLU at 0")


def test_sequential_and_residual():
    np.random.seed(0)
    inner = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    block = nn.Residual(inner)
    x = ndl.Tensor(_f32(3, 4))
    np.testing.assert_allclose(block(x).numpy(), inner(x).numpy() + x.numpy(), rtol=1e-6)
    assert len(inner) == 3 and isinstance(inner[1], nn.ReLU)
    check_finite_differences(lambda a: nn.Residual(nn.Tanh())(a), _f32(2, 3).astype(np.float64))


# ---------------------------------------------------------------------------- BatchNorm1d
def _torch_batchnorm(bn: nn.BatchNorm1d) -> torch.nn.BatchNorm1d:
    ref = torch.nn.BatchNorm1d(bn.dim, eps=bn.eps, momentum=bn.momentum)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(bn.weight.numpy()))
        ref.bias.copy_(torch.tensor(bn.bias.numpy()))
    return ref


@fast
@given(n=st.integers(2, 6), dim=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_batchnorm1d_training_matches_torch(n, dim, seed):
    local = np.random.default_rng(seed)
    bn = nn.BatchNorm1d(dim)
    bn.weight.data = ndl.Tensor(local.standard_normal(dim).astype(np.float32))
    bn.bias.data = ndl.Tensor(local.standard_normal(dim).astype(np.float32))
    ref = _torch_batchnorm(bn)
    x = local.standard_normal((n, dim)).astype(np.float32) * 3 + 1
    out = bn(ndl.Tensor(x))
    tout = ref(torch.tensor(x, requires_grad=True))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-4)
    projection = local.standard_normal((n, dim)).astype(np.float32)
    (out * ndl.Tensor(projection)).sum().backward()
    (tout * torch.tensor(projection)).sum().backward()
    np.testing.assert_allclose(bn.weight.grad.numpy(), ref.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(bn.bias.grad.numpy(), ref.bias.grad.numpy(), rtol=1e-4,
                               atol=1e-4)


def test_batchnorm1d_input_gradient_matches_torch_and_finite_differences():
    bn = nn.BatchNorm1d(3)
    ref = _torch_batchnorm(bn)
    x = _f32(5, 3)
    check_torch(bn, ref, x, rtol=1e-4, atol=1e-5, name="BatchNorm1d")
    bn64 = nn.BatchNorm1d(3, dtype="float64")
    check_finite_differences(bn64, x.astype(np.float64), name="BatchNorm1d")


def test_batchnorm1d_running_statistics_match_torch_with_the_variance_converted():
    """needle keeps the biased batch variance in running_var, PyTorch the unbiased one:
    the increments m * var differ by the factor n / (n - 1), undone here step by step."""
    n, dim, m = 8, 4, 0.1
    bn = nn.BatchNorm1d(dim, momentum=m)
    ref = _torch_batchnorm(bn)
    expected_var = np.ones(dim)
    for step in range(3):
        x = _f32(n, dim) * (step + 1) + step
        torch_before = ref.running_var.numpy().copy()
        bn(ndl.Tensor(x))
        ref(torch.tensor(x))
        unbiased_increment = ref.running_var.numpy() - (1 - m) * torch_before
        expected_var = (1 - m) * expected_var + unbiased_increment * (n - 1) / n
        np.testing.assert_allclose(bn.running_mean.numpy(), ref.running_mean.numpy(),
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var.numpy(), expected_var, rtol=1e-5, atol=1e-6)
    assert bn.running_var.dtype == np.float32 and not bn.running_var.requires_grad


def test_batchnorm1d_eval_uses_running_statistics_like_torch():
    bn = nn.BatchNorm1d(3)
    bn.running_mean.data = ndl.Tensor(np.array([0.5, -1.0, 2.0], np.float32))
    bn.running_var.data = ndl.Tensor(np.array([2.0, 0.5, 1.5], np.float32))
    bn.weight.data = ndl.Tensor(np.array([1.5, 0.5, -1.0], np.float32))
    ref = _torch_batchnorm(bn)
    ref.running_mean.copy_(torch.tensor(bn.running_mean.numpy()))
    ref.running_var.copy_(torch.tensor(bn.running_var.numpy()))
    bn.eval()
    ref.eval()
    check_torch(bn, ref, _f32(4, 3), rtol=1e-5, atol=1e-6, name="BatchNorm1d eval")
    before = bn.running_mean.numpy().copy()
    bn(ndl.Tensor(_f32(4, 3)))
    np.testing.assert_array_equal(bn.running_mean.numpy(), before)


def test_batchnorm1d_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r"BatchNorm1d\(3\) expects input \(N, 3\), got \(2, 4\)"):
        nn.BatchNorm1d(3)(ndl.Tensor(_f32(2, 4)))


# ---------------------------------------------------------------------------- LayerNorm1d
@fast
@given(shape=st.sampled_from([(3, 4), (2, 3, 5), (1, 1), (4, 1)]), seed=st.integers(0, 2**16))
def test_layernorm1d_matches_torch(shape, seed):
    local = np.random.default_rng(seed)
    ln = nn.LayerNorm1d(shape[-1])
    ln.weight.data = ndl.Tensor(local.standard_normal(shape[-1]).astype(np.float32))
    ln.bias.data = ndl.Tensor(local.standard_normal(shape[-1]).astype(np.float32))
    weight, bias = torch.tensor(ln.weight.numpy()), torch.tensor(ln.bias.numpy())
    x = local.standard_normal(shape).astype(np.float32)
    check_torch(ln, lambda t: torch.nn.functional.layer_norm(t, shape[-1:], weight, bias, 1e-5),
                x, rtol=1e-4, atol=1e-4, name="LayerNorm1d")


def test_layernorm1d_finite_differences():
    ln = nn.LayerNorm1d(4, dtype="float64")
    check_finite_differences(ln, _f32(3, 4).astype(np.float64), name="LayerNorm1d")


# ---------------------------------------------------------------------------- Dropout
def test_dropout_follows_the_contract_formula_and_rng_order():
    x = _f32(50, 40)
    np.random.seed(7)
    out = nn.Dropout(0.3)(ndl.Tensor(x)).numpy()
    np.random.seed(7)
    expected = x * (np.random.rand(50, 40) <= 0.7) / 0.7
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)


def test_dropout_mask_distribution_scaling_and_gradient():
    np.random.seed(0)
    layer = nn.Dropout(0.25)
    x = ndl.Tensor(np.ones((400, 250), np.float32))
    out = layer(x)
    kept = out.numpy() != 0
    assert abs(kept.mean() - 0.75) < 0.01  # 100,000 Bernoulli draws: std 0.0014
    np.testing.assert_allclose(out.numpy()[kept], 1 / 0.75, rtol=1e-6)
    assert abs(out.numpy().mean() - 1.0) < 0.02  # unbiased in expectation
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), out.numpy())  # same mask and scale


def test_dropout_is_the_identity_in_eval_mode_and_checks_p():
    layer = nn.Dropout(0.9).eval()
    x = ndl.Tensor(_f32(3, 3))
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"\[0, 1\), got 1.0"):
        nn.Dropout(1.0)
