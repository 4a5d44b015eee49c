"""The fused Conv-BatchNorm-ReLU layer equals the three layers run apart: outputs, every
gradient, running statistics, second derivatives; eval mode and state_dict keys unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import needle as ndl
from needle import nn
from needle.nn import conv_bn
from spies import count_calls


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


def _pytorch_style_cnn(dtype: str = "float64") -> nn.Sequential:
    """(Conv2d-BN-ReLU-MaxPool) x 2, Linear: cnn_mnist's model as a PyTorch user writes it
    (the second block without its ReLU, a course Conv in the first)."""
    np.random.seed(4)
    return nn.Sequential(nn.Conv(1, 4, 3, dtype=dtype), nn.BatchNorm2d(4, dtype=dtype),
                         nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, (3, 3), padding=1, dtype=dtype),
                         nn.BatchNorm2d(6, dtype=dtype), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(6 * 2 * 2, 3, dtype=dtype))


def _step_values(model: nn.Sequential) -> list[np.ndarray]:
    x = ndl.Tensor(np.random.default_rng(5).standard_normal((3, 1, 8, 8)), dtype="float64",
                   requires_grad=True)
    out = model(x)
    (out * out).sum().backward()
    stats = [v.numpy() for m in model.modules if isinstance(m, nn.BatchNorm2d)
             for v in (m.running_mean, m.running_var)]
    return [out.numpy(), x.grad.numpy()] + [p.grad.numpy() for p in model.parameters()] + stats


def _count_fused(monkeypatch) -> list[int]:
    return count_calls(monkeypatch, conv_bn, "conv_batch_norm")


@ndl.reference_mode(False)
def test_a_sequential_runs_conv_batchnorm_relu_children_as_one_fused_node(monkeypatch):
    """nn.Sequential(Conv2d, BatchNorm2d, ReLU, ...) in training runs each Conv-BN(-ReLU)
    block as the fused op: outputs, every gradient and the running statistics equal the
    layers run one by one (``Sequential.fusions`` emptied)."""
    calls = _count_fused(monkeypatch)
    fused = _step_values(_pytorch_style_cnn())
    assert calls[0] == 2  # both blocks, with and without the ReLU
    monkeypatch.setattr(nn.Sequential, "fusions", {})
    plain = _step_values(_pytorch_style_cnn())
    assert calls[0] == 2
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


@ndl.reference_mode(False)
@pytest.mark.parametrize("case", ["eval", "hook", "sync", "reference", "same", "linear"])
def test_a_sequential_runs_its_children_apart_where_fusing_would_differ(case, monkeypatch):
    """Eval mode (running statistics), a hook on a child, a BatchNorm subclass, reference
    mode, "same" padding, and a block that is not Conv-BN: the children run as they are."""
    calls = _count_fused(monkeypatch)
    model = _pytorch_style_cnn()
    seen = []
    if case == "eval":
        model.eval()
    elif case == "hook":
        for m in model.modules[:2] + model.modules[4:6]:
            m.register_forward_hook(lambda module, args, out: seen.append(type(module)))
    elif case == "sync":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif case == "same":
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same", dtype="float64"),
                              nn.BatchNorm2d(4, dtype="float64"), nn.ReLU())
    elif case == "linear":
        model = nn.Sequential(nn.Linear(8, 4, dtype="float64"),
                              nn.BatchNorm1d(4, dtype="float64"), nn.ReLU())
    with ndl.reference_mode(case == "reference"):
        if case == "linear":
            model(ndl.Tensor(np.ones((3, 8)), dtype="float64"))
        else:
            model(ndl.Tensor(np.random.default_rng(6).standard_normal((3, 1, 8, 8)),
                             dtype="float64"))
    assert calls[0] == 0
    if case == "hook":
        assert len(seen) == 4
