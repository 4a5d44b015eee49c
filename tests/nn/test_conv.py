"""Image layers against their PyTorch twins with copied weights: outputs and the gradients of
the input and of every parameter; initialisation against numpy's RNG; clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import needle as ndl
from oracles import assert_close

SETTINGS = settings(max_examples=15, deadline=None)


def compare_with_torch(layer: ndl.nn.Module, twin: torch.nn.Module, x: np.ndarray,
                       params: dict[str, tuple[ndl.Tensor, torch.Tensor, tuple[int, ...]]],
                       name: str, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Copy each torch parameter into needle (permuted by ``axes``), run both on x with the
    same random output projection, and compare outputs and all gradients."""
    for needle_param, torch_param, axes in params.values():
        needle_param.data = ndl.Tensor(torch_param.detach().numpy().transpose(axes))
    tx = torch.tensor(x, requires_grad=True)
    nx = ndl.Tensor(x)
    t_out, n_out = twin(tx), layer(nx)
    assert_close(n_out, t_out, rtol=rtol, atol=atol, what="output", name=name)
    projection = np.random.default_rng(0).standard_normal(t_out.shape).astype(np.float32)
    (t_out * torch.tensor(projection)).sum().backward()
    (n_out * ndl.Tensor(projection, requires_grad=False)).sum().backward()
    assert_close(nx.grad, tx.grad, rtol=rtol, atol=atol, what="input gradient", name=name)
    for key, (needle_param, torch_param, axes) in params.items():
        want = torch_param.grad.numpy().transpose(axes)
        assert_close(needle_param.grad, want, rtol=rtol, atol=atol, what=f"{key} gradient",
                     name=name)


def conv_params(layer: ndl.nn.Module, twin: torch.nn.Module, weight_axes: tuple[int, ...]):
    params = {"weight": (layer.weight, twin.weight, weight_axes)}
    if layer.bias is not None:
        params["bias"] = (layer.bias, twin.bias, (0,))
    return params


@st.composite
def layer_cases(draw: st.DrawFn) -> dict:
    case = dict(n=draw(st.integers(1, 3)), c_in=draw(st.integers(1, 4)),
                c_out=draw(st.integers(1, 4)), h=draw(st.integers(1, 9)),
                w=draw(st.integers(1, 9)), k=draw(st.integers(1, 7)),
                stride=draw(st.integers(1, 3)), padding=draw(st.integers(0, 3)),
                bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))
    assume(case["k"] <= min(case["h"], case["w"]) + 2 * case["padding"])
    return case


def _input(case: dict) -> np.ndarray:
    shape = (case["n"], case["c_in"], case["h"], case["w"])
    return np.random.default_rng(case["seed"]).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------- convolutions
@SETTINGS
@given(layer_cases())
def test_conv2d_matches_torch(case):
    args = (case["c_in"], case["c_out"], case["k"])
    kwargs = dict(stride=case["stride"], padding=case["padding"], bias=case["bias"])
    layer, twin = ndl.nn.Conv2d(*args, **kwargs), torch.nn.Conv2d(*args, **kwargs)
    compare_with_torch(layer, twin, _input(case), conv_params(layer, twin, (2, 3, 1, 0)),
                       name=f"Conv2d {case}")


@SETTINGS
@given(layer_cases())
def test_conv_matches_torch_with_same_padding(case):
    args = (case["c_in"], case["c_out"], case["k"])
    layer = ndl.nn.Conv(*args, stride=case["stride"], bias=case["bias"])
    twin = torch.nn.Conv2d(*args, stride=case["stride"], padding=case["k"] // 2,
                           bias=case["bias"])
    x = _input(case)
    compare_with_torch(layer, twin, x, conv_params(layer, twin, (2, 3, 1, 0)),
                       name=f"Conv {case}")
    out_hw = tuple(math.ceil(d / case["stride"]) for d in x.shape[2:]) \
        if case["k"] % 2 else None
    if out_hw is not None:  # odd kernels keep the size ("same"), up to the stride
        assert layer(ndl.Tensor(x)).shape == (case["n"], case["c_out"]) + out_hw


@SETTINGS
@given(layer_cases(), st.data())
def test_conv_transpose2d_matches_torch(case, data):
    s, p = case["stride"], case["padding"]
    extra = data.draw(st.integers(0, s - 1))
    assume(min(case["h"], case["w"]) - 1 >= 0 and
           (min(case["h"], case["w"]) - 1) * s - 2 * p + case["k"] + extra >= 1)
    args = (case["c_in"], case["c_out"], case["k"])
    kwargs = dict(stride=s, padding=p, output_padding=extra, bias=case["bias"])
    layer = ndl.nn.ConvTranspose2d(*args, **kwargs)
    twin = torch.nn.ConvTranspose2d(*args, **kwargs)
    compare_with_torch(layer, twin, _input(case), conv_params(layer, twin, (2, 3, 1, 0)),
                       name=f"ConvTranspose2d {case} output_padding={extra}")


def test_conv_initialisation_follows_the_contract():
    np.random.seed(3)
    layer = ndl.nn.Conv(4, 6, 3, bias=True)
    np.random.seed(3)
    fan_in, fan_out = 4 * 9, 6 * 9
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    weight = -bound + 2 * bound * np.random.rand(3, 3, 4, 6)
    bias_bound = 1 / math.sqrt(fan_in)
    bias = -bias_bound + 2 * bias_bound * np.random.rand(6)
    np.testing.assert_allclose(layer.weight.numpy(), weight, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(layer.bias.numpy(), bias, rtol=1e-6, atol=1e-7)
    assert fan_out and [p.shape for p in layer.parameters()] == [(3, 3, 4, 6), (6,)]


def test_conv2d_and_conv_transpose2d_initialisation_bounds():
    np.random.seed(0)
    conv, convt = ndl.nn.Conv2d(5, 7, 3), ndl.nn.ConvTranspose2d(5, 7, 3)
    assert np.abs(conv.weight.numpy()).max() <= 1 / math.sqrt(5 * 9)
    assert np.abs(convt.weight.numpy()).max() <= 1 / math.sqrt(7 * 9)
    assert conv.weight.shape == (3, 3, 5, 7) and convt.weight.shape == (3, 3, 7, 5)
    assert np.abs(conv.weight.numpy()).max() > 0.8 / math.sqrt(5 * 9)


def test_conv_layers_reject_mismatched_channels():
    x = ndl.Tensor(np.zeros((2, 4, 8, 8), np.float32))
    for layer in (ndl.nn.Conv(3, 8, 3), ndl.nn.Conv2d(3, 8, 3), ndl.nn.ConvTranspose2d(3, 8, 3)):
        with pytest.raises(ValueError, match=r"expects 3 input channels \(in_channels=3\), "
                                             r"got 4"):
            layer(x)
    with pytest.raises(ValueError, match=r"BatchNorm2d expects 3 .*\(dim=3\), got 4"):
        ndl.nn.BatchNorm2d(3)(x)


def test_conv_rejects_a_non_4d_input():
    with pytest.raises(ValueError, match=r"Conv expects a 4-D input \(N, C, H, W\), got shape "
                                         r"\(3, 8, 8\)"):
        ndl.nn.Conv(3, 8, 3)(ndl.Tensor(np.zeros((3, 8, 8), np.float32)))


def test_conv_rejects_a_kernel_larger_than_the_padded_input():
    layer = ndl.nn.Conv2d(2, 2, 5, padding=1)
    with pytest.raises(ValueError, match="kernel 5x5 is larger than the padded input 4x5"):
        layer(ndl.Tensor(np.zeros((1, 2, 2, 3), np.float32)))


# ---------------------------------------------------------------------- batch norm
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (1, 2, 3, 3), (8, 5, 1, 1)])
def test_batchnorm2d_matches_torch_in_training(shape):
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32) * 3 + 1
    layer, twin = ndl.nn.BatchNorm2d(shape[1], momentum=0.2), torch.nn.BatchNorm2d(shape[1],
                                                                                 momentum=0.2)
    with torch.no_grad():
        twin.weight.uniform_(0.5, 1.5)
        twin.bias.uniform_(-1, 1)
    params = {"weight": (layer.weight, twin.weight, (0,)), "bias": (layer.bias, twin.bias, (0,))}
    compare_with_torch(layer, twin, x, params, name=f"BatchNorm2d {shape}")
    # running statistics: needle keeps the biased batch variance (contract)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.2 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), 0.8 + 0.2 * var, rtol=1e-5)


def test_batchnorm2d_eval_uses_running_statistics():
    x = np.random.default_rng(2).standard_normal((3, 4, 5, 5)).astype(np.float32)
    layer, twin = ndl.nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    rng = np.random.default_rng(3)
    mean, var = rng.standard_normal(4).astype(np.float32), rng.random(4).astype(np.float32) + 1
    layer.running_mean, layer.running_var = ndl.Tensor(mean), ndl.Tensor(var)
    twin.running_mean.copy_(torch.tensor(mean))
    twin.running_var.copy_(torch.tensor(var))
    layer.eval()
    twin.eval()
    params = {"weight": (layer.weight, twin.weight, (0,)), "bias": (layer.bias, twin.bias, (0,))}
    compare_with_torch(layer, twin, x, params, name="BatchNorm2d eval")


# ---------------------------------------------------------------------- pooling, dropout
@st.composite
def pool_cases(draw: st.DrawFn) -> dict:
    k = draw(st.integers(1, 4))
    case = dict(n=draw(st.integers(1, 3)), c_in=draw(st.integers(1, 3)),
                h=draw(st.integers(1, 9)), w=draw(st.integers(1, 9)), k=k,
                stride=draw(st.one_of(st.none(), st.integers(1, 3))),
                padding=draw(st.integers(0, k // 2)), seed=draw(st.integers(0, 2**16)))
    assume(k <= min(case["h"], case["w"]) + 2 * case["padding"])
    return case


@SETTINGS
@given(pool_cases())
def test_pooling_layers_match_torch(case):
    args = (case["k"], case["stride"], case["padding"])
    for layer, twin in ((ndl.nn.MaxPool2d(*args), torch.nn.MaxPool2d(*args)),
                        (ndl.nn.AvgPool2d(*args), torch.nn.AvgPool2d(*args))):
        compare_with_torch(layer, twin, _input(case), {}, name=f"{layer} {case}", atol=1e-5)


def test_adaptive_avg_pool2d_matches_torch():
    x = np.random.default_rng(4).standard_normal((3, 5, 4, 7)).astype(np.float32)
    compare_with_torch(ndl.nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1), x, {},
                       name="AdaptiveAvgPool2d")
    with pytest.raises(ValueError, match="only output_size=1"):
        ndl.nn.AdaptiveAvgPool2d(2)


def test_dropout2d_zeroes_whole_channels_with_numpy_rng():
    x = np.random.default_rng(5).random((6, 8, 3, 4)).astype(np.float32) + 0.5
    layer = ndl.nn.Dropout2d(p=0.25)
    np.random.seed(7)
    out = layer(ndl.Tensor(x)).numpy()
    np.random.seed(7)
    keep = np.random.rand(6, 8, 1, 1) <= 0.75
    np.testing.assert_allclose(out, x * keep / 0.75, rtol=1e-6)
    assert 0 < keep.sum() < keep.size
    layer.eval()
    np.testing.assert_array_equal(layer(ndl.Tensor(x)).numpy(), x)
    with pytest.raises(ValueError, match=r"dropout probability must be in \[0, 1\)"):
        ndl.nn.Dropout2d(1.0)


def test_layers_chain_without_copies_of_the_layout():
    """conv -> bn -> relu -> pool -> conv keeps working on the permuted views it makes."""
    np.random.seed(0)
    model = ndl.nn.Sequential(ndl.nn.Conv(2, 4, 3), ndl.nn.BatchNorm2d(4), ndl.nn.ReLU(),
                              ndl.nn.MaxPool2d(2), ndl.nn.Conv(4, 3, 3, stride=2),
                              ndl.nn.AdaptiveAvgPool2d(), ndl.nn.Flatten())
    x = ndl.Tensor(np.random.default_rng(6).standard_normal((2, 2, 8, 8)).astype(np.float32))
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
