"""The fused Conv-BatchNorm-ReLU layer equals the three layers run apart: outputs, every
gradient, running statistics, second derivatives; eval mode and state_dict keys unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import needle as ndl
from needle import nn


def layer(fused: bool, relu: bool, c_in: int, c_out: int, k: int, stride: int,
          dtype: str = "float64") -> nn.ConvBatchNorm2d:
    np.random.seed(3)
    return nn.ConvBatchNorm2d(nn.Conv(c_in, c_out, k, stride=stride, dtype=dtype),
                              nn.BatchNorm2d(c_out, dtype=dtype), relu=relu, fused=fused)


@pytest.mark.parametrize("relu, c_in, c_out, k, stride, size", [
    (True, 3, 8, 3, 1, 6),     # im2col
    (True, 32, 32, 3, 1, 5),   # Winograd
    (False, 4, 6, 3, 2, 7),    # strided, no ReLU
    (True, 5, 4, 3, 1, 1),     # 1x1 map: the kernel cropped to its centre tap
])
def test_fused_equals_the_three_layers(relu, c_in, c_out, k, stride, size):
    rng = np.random.default_rng(0)
    x_value = rng.standard_normal((4, c_in, size, size))
    results = []
    for fused in (True, False):
        model = layer(fused, relu, c_in, c_out, k, stride)
        x = ndl.Tensor(x_value, dtype="float64", requires_grad=True)
        out = model(x)
        weights = ndl.Tensor(np.random.default_rng(1).standard_normal(out.shape),
                             dtype="float64")
        (out * weights).sum().backward(create_graph=True)
        first = [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()]
        stats = [model[1].running_mean.numpy(), model[1].running_var.numpy()]
        (x.grad * x.grad).sum().backward()  # a second derivative, through the gradient ops
        second = [p.grad.numpy() for p in model.parameters()]
        results.append(first + stats + second)
    for fused, plain in zip(*results):
        np.testing.assert_allclose(fused, plain, rtol=1e-8, atol=1e-9)


def test_eval_mode_and_keys_match_a_plain_sequential():
    fused = layer(True, True, 3, 4, 3, 1)
    plain = nn.Sequential(fused[0], fused[1], nn.ReLU())
    assert list(fused.state_dict()) == list(plain.state_dict())
    x = ndl.Tensor(np.random.default_rng(2).standard_normal((2, 3, 5, 5)), dtype="float64")
    fused(x)  # a training step moves the running statistics
    fused.eval(), plain.eval()
    np.testing.assert_allclose(fused(x).numpy(), plain(x).numpy(), rtol=1e-12)


def test_channel_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="gives 4 channels but the BatchNorm2d normalises 5"):
        nn.ConvBatchNorm2d(nn.Conv(3, 4, 3), nn.BatchNorm2d(5))
    with pytest.raises(ValueError, match=r"expects input \(N, 3, H, W\)"):
        layer(True, True, 3, 4, 3, 1)(ndl.Tensor(np.zeros((1, 2, 5, 5))))
