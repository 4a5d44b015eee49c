"""``fused.per_channel`` (a per-channel vector broadcast over channels-last memory, run as
wide rows against the vector tiled) gives bitwise the values of numpy's own broadcast: each
element meets the same operands in the same operation, only the loop around them differs."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import needle as ndl
from needle import nn
from needle.backend_ndarray import fused
from oracles import check_torch

UFUNCS = [np.add, np.subtract, np.multiply, np.divide]


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 9), min_size=1, max_size=5), ufunc=st.sampled_from(UFUNCS),
       in_place=st.booleans(), seed=st.integers(0, 2**16))
def test_equals_numpys_broadcast_bitwise(shape, ufunc, in_place, seed):
    with pytest.MonkeyPatch.context() as patch:  # small shapes take the wide-row path too
        patch.setattr(fused, "WIDE_ROW_MAX", 64)
        _check_bitwise(shape, ufunc, in_place, seed)


def _check_bitwise(shape, ufunc, in_place, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    v = rng.standard_normal((1,) * (len(shape) - 1) + (shape[-1],)).astype(np.float32)
    want = ufunc(a, v)
    if in_place:
        out = a.copy()
        got = fused.per_channel(np, ufunc, out, v, out=out)
        np.testing.assert_array_equal(out, want)
    else:
        got = fused.per_channel(np, ufunc, a, v)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("a_shape, v_shape", [
    ((64, 28, 28, 16), (1, 1, 1, 16)),      # the wide-row path: rows of 28 * 28 * 16
    ((4, 5, 6), (1, 5, 1)),                 # channels not last: numpy's broadcast
    ((128, 100), (1, 100)),                 # two axes: numpy's broadcast
    ((1, 3, 3, 8), (1, 1, 1, 8)),           # one row would be the whole array
])
def test_wide_rows_only_where_they_gain(a_shape, v_shape):
    a = np.random.default_rng(0).standard_normal(a_shape).astype(np.float32)
    v = np.arange(1, 1 + np.prod(v_shape), dtype=np.float32).reshape(v_shape)
    np.testing.assert_array_equal(fused.per_channel(np, np.multiply, a, v), a * v)
    strided = np.swapaxes(a, 0, -1)  # not C-contiguous: numpy's broadcast
    np.testing.assert_array_equal(
        fused.per_channel(np, np.multiply, strided, v.reshape(v.shape[::-1])),
        strided * v.reshape(v.shape[::-1]))


def test_conv_batch_norm_relu_on_few_channels_matches_torch():
    """Conv2d(1, 16)-BatchNorm2d(16)-ReLU on (64, 1, 28, 28), the small MNIST CNN's first
    block: needle fuses it (``ops/fused/conv_bn.py``) and runs its per-channel passes as wide
    rows of 28 * 28 * 16; against PyTorch with the same weights, values and gradients."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    w = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)
    gamma, beta = np.linspace(0.5, 2, 16, dtype=np.float32), np.linspace(-1, 1, 16,
                                                                        dtype=np.float32)
    block = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
    block.modules[0].weight.data = ndl.Tensor(w.transpose(2, 3, 1, 0).copy())
    block.modules[0].bias.data = ndl.Tensor(np.zeros(16, np.float32))
    block.modules[1].weight.data, block.modules[1].bias.data = ndl.Tensor(gamma), ndl.Tensor(beta)
    reference = torch.nn.Sequential(torch.nn.Conv2d(1, 16, 3, padding=1),
                                    torch.nn.BatchNorm2d(16), torch.nn.ReLU())
    with torch.no_grad():
        reference[0].weight.copy_(torch.tensor(w))
        reference[0].bias.zero_()
        reference[1].weight.copy_(torch.tensor(gamma))
        reference[1].bias.copy_(torch.tensor(beta))
    check_torch(block, reference, x, rtol=1e-4, atol=1e-4, name="Conv-BatchNorm2d(16)-ReLU")
