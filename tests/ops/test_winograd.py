"""Winograd F(4x4, 3x3): the transforms' identity, accuracy against a float64 reference
(PyTorch's conv2d in double precision), and the conv ops choosing it by shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle.backend_ndarray import NDArray
from needle.ops.fused import winograd

BOUND = 1e-5  # max error relative to the largest output (the float32 bound)


def reference(a: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    """conv2d in float64 on NHWC a and KKIO w, by PyTorch."""
    out = torch.nn.functional.conv2d(torch.tensor(a, dtype=torch.float64).permute(0, 3, 1, 2),
                                     torch.tensor(w, dtype=torch.float64).permute(3, 2, 0, 1),
                                     padding=padding)
    return out.permute(0, 2, 3, 1).numpy()


def relative_error(value: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(value - expected).max() / np.abs(expected).max())


def test_toom_cook_matrices_give_the_exact_correlation():
    rng = np.random.default_rng(0)
    for _ in range(20):
        d, g = rng.standard_normal(6), rng.standard_normal(3)
        y = winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d))
        expected = np.array([d[i:i + 3] @ g for i in range(4)])
        np.testing.assert_allclose(y, expected, rtol=0, atol=1e-12)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(4, 13), w=st.integers(4, 13),
       c_in=st.sampled_from([32, 48, 64]), c_out=st.sampled_from([32, 40]),
       padding=st.integers(0, 2), scale=st.sampled_from([1.0, 1e3]), seed=st.integers(0, 2**31))
def test_forward_and_gradients_within_bound_of_float64(n, h, w, c_in, c_out, padding, scale,
                                                       seed):
    rng = np.random.default_rng(seed)
    if h + 2 * padding - 2 < 4 or w + 2 * padding - 2 < 4:
        return
    a = (rng.standard_normal((n, h, w, c_in)) * scale).astype(np.float32)
    k = (rng.standard_normal((3, 3, c_in, c_out)) * scale).astype(np.float32)
    x = ndl.Tensor(a, requires_grad=True)
    weight = ndl.Tensor(k, requires_grad=True)
    out = ndl.conv(x, weight, stride=1, padding=padding)
    expected = reference(a.astype(np.float64), k.astype(np.float64), padding)
    assert relative_error(out.numpy(), expected) <= BOUND
    g = rng.standard_normal(expected.shape).astype(np.float32)
    out.backward(ndl.Tensor(g))
    ta = torch.tensor(a, dtype=torch.float64).permute(0, 3, 1, 2).requires_grad_()
    tw = torch.tensor(k, dtype=torch.float64).permute(3, 2, 0, 1).requires_grad_()
    torch.nn.functional.conv2d(ta, tw, padding=padding).backward(
        torch.tensor(g, dtype=torch.float64).permute(0, 3, 1, 2))
    assert relative_error(x.grad.numpy(), ta.grad.permute(0, 2, 3, 1).numpy()) <= BOUND
    assert relative_error(weight.grad.numpy(), tw.grad.permute(2, 3, 1, 0).numpy()) <= BOUND


def test_wide_layers_stay_within_bound():
    """512 input channels (ResNet-sized) on a 16x16 map, unit and large magnitudes."""
    rng = np.random.default_rng(1)
    for scale in (1.0, 1e3):
        a = (rng.standard_normal((2, 16, 16, 512)) * scale).astype(np.float32)
        k = (rng.standard_normal((3, 3, 512, 64)) * scale).astype(np.float32)
        v = winograd.transform_input(NDArray(a), 1)
        out = winograd.conv2d(v, NDArray(k), (2, 16, 16, 64)).numpy()
        assert relative_error(out, reference(a.astype(np.float64), k.astype(np.float64), 1)) \
            <= BOUND


@pytest.mark.parametrize("a_shape, w_shape, stride, padding, dtype, expected", [
    ((8, 32, 32, 64), (3, 3, 64, 64), 1, 1, "float32", True),
    ((8, 32, 32, 64), (3, 3, 64, 64), 1, 1, "float64", True),
    ((8, 32, 32, 64), (3, 3, 64, 64), 2, 1, "float32", False),    # strided
    ((8, 32, 32, 64), (5, 5, 64, 64), 1, 2, "float32", False),    # not 3x3
    ((8, 32, 32, 3), (3, 3, 3, 16), 1, 1, "float32", False),      # too few channels
    ((8, 14, 14, 16), (3, 3, 16, 32), 1, 1, "float32", False),    # 16 channels: im2col wins
    ((8, 2, 2, 64), (3, 3, 64, 64), 1, 1, "float32", False),      # output smaller than a tile
    ((8, 32, 32, 64), (3, 3, 64, 64), 1, 3, "float32", False),    # padding past the kernel
])
def test_applies_by_shape(a_shape, w_shape, stride, padding, dtype, expected):
    assert winograd.applies(a_shape, w_shape, stride, padding, dtype) is expected


def test_conv_ops_agree_with_the_im2col_path(monkeypatch):
    """Forward, both gradients and a second derivative: Winograd vs im2col (float64)."""
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 9, 10, 32))
    k = rng.standard_normal((3, 3, 32, 32))
    g = rng.standard_normal((2, 9, 10, 32))

    def run() -> list[np.ndarray]:
        x = ndl.Tensor(a, dtype="float64", requires_grad=True)
        weight = ndl.Tensor(k, dtype="float64", requires_grad=True)
        out = ndl.conv(x, weight, stride=1, padding=1)
        loss = (out * ndl.Tensor(g, dtype="float64")).sum()
        loss.backward(create_graph=True)
        first = [out.numpy(), x.grad.numpy(), weight.grad.numpy()]
        # d/dw of sum(dL/dx ** 2): a second derivative through ConvTranspose
        (x.grad * x.grad).sum().backward()
        return first + [weight.grad.numpy()]

    with_winograd = run()
    monkeypatch.setattr(winograd, "ENABLED", False)
    with_im2col = run()
    for fast, plain in zip(with_winograd, with_im2col):
        np.testing.assert_allclose(fast, plain, rtol=1e-9, atol=1e-9)
