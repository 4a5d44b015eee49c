"""ResNet9 equals a PyTorch ResNet9 (the one of ../shared/bench/torch_ref.py) with copied
weights: logits, loss and every parameter gradient, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import needle as ndl


class Residual(nn.Module):
    def __init__(self, fn: nn.Module):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x) + x


def conv_bn(a: int, b: int, k: int, s: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(a, b, k, stride=s, padding=k // 2), nn.BatchNorm2d(b),
                         nn.ReLU())


def torch_resnet9() -> nn.Module:
    return nn.Sequential(
        conv_bn(3, 16, 7, 4), conv_bn(16, 32, 3, 2),
        Residual(nn.Sequential(conv_bn(32, 32, 3, 1), conv_bn(32, 32, 3, 1))),
        conv_bn(32, 64, 3, 2), conv_bn(64, 128, 3, 2),
        Residual(nn.Sequential(conv_bn(128, 128, 3, 1), conv_bn(128, 128, 3, 1))),
        nn.Flatten(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))


def to_needle_layout(param: torch.Tensor, shape: tuple[int, ...]) -> np.ndarray:
    """A torch parameter in needle's layout: conv (K, K, C_in, C_out), linear (in, out)."""
    value = param.detach().numpy()
    if value.ndim == 4:
        value = value.transpose(2, 3, 1, 0)
    elif value.ndim == 2:
        value = value.T
    return value.reshape(shape)


@pytest.fixture
def twins():
    torch.manual_seed(0)
    twin = torch_resnet9().double().train()
    model = ndl.models.ResNet9(dtype="float64")
    pairs = list(zip(model.parameters(), twin.parameters()))
    assert len(pairs) == len(list(twin.parameters())) == len(model.parameters()) == 36
    for param, torch_param in pairs:
        param.data = ndl.Tensor(to_needle_layout(torch_param, param.shape), dtype="float64")
    return model, twin, pairs


@pytest.mark.slow  # float64 ResNet9 forward and backward
def test_resnet9_logits_and_gradients_equal_torch(twins):
    model, twin, pairs = twins
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 32, 32))
    y = rng.integers(0, 10, 6)
    logits = model(ndl.Tensor(x, dtype="float64", requires_grad=False))
    loss = ndl.nn.SoftmaxLoss()(logits, ndl.Tensor(y, requires_grad=False))
    loss.backward()
    t_logits = twin(torch.tensor(x))
    t_loss = F.cross_entropy(t_logits, torch.tensor(y))
    t_loss.backward()
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(loss.numpy(), t_loss.item(), rtol=1e-10)
    for i, (param, torch_param) in enumerate(pairs):
        want = to_needle_layout(torch_param.grad, param.shape)
        np.testing.assert_allclose(param.grad.numpy(), want, rtol=1e-7, atol=1e-10,
                                   err_msg=f"parameter {i} {param.shape}")


@pytest.mark.slow  # float64 ResNet9 forward and backward
def test_resnet9_sgd_steps_track_torch(twins):
    """Three training steps (plain SGD) leave equal weights."""
    model, twin, pairs = twins
    opt = ndl.optim.SGD(model.parameters(), lr=0.1)
    t_opt = torch.optim.SGD(twin.parameters(), lr=0.1)
    rng = np.random.default_rng(2)
    for _ in range(3):
        x, y = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 10, 4)
        opt.reset_grad()
        ndl.nn.SoftmaxLoss()(model(ndl.Tensor(x, dtype="float64", requires_grad=False)),
                             ndl.Tensor(y, requires_grad=False)).backward()
        opt.step()
        t_opt.zero_grad()
        F.cross_entropy(twin(torch.tensor(x)), torch.tensor(y)).backward()
        t_opt.step()
    for i, (param, torch_param) in enumerate(pairs):
        np.testing.assert_allclose(param.numpy(), to_needle_layout(torch_param, param.shape),
                                   rtol=1e-6, atol=1e-9, err_msg=f"parameter {i}")


@pytest.mark.slow  # float64 ResNet9 forward and backward
def test_resnet9_eval_mode_uses_the_running_statistics(twins):
    """After a training step has moved the running statistics, eval-mode logits differ
    from training-mode ones and equal PyTorch's eval-mode logits with the same weights and
    running statistics (copied: needle keeps the biased running variance)."""
    model, twin, _ = twins
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((4, 3, 32, 32)), rng.integers(0, 10, 4)
    inputs = ndl.Tensor(x, dtype="float64", requires_grad=False)
    ndl.nn.SoftmaxLoss()(model(inputs), ndl.Tensor(y, requires_grad=False)).backward()
    test = rng.standard_normal((3, 3, 32, 32))
    test_inputs = ndl.Tensor(test, dtype="float64", requires_grad=False)
    with ndl.no_grad():
        train_logits = model(test_inputs).numpy()  # batch statistics (and moves the running)
    norms = [m for m in model.submodules() if isinstance(m, ndl.nn.BatchNorm2d)]
    t_norms = [m for m in twin.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == len(t_norms) == 8
    for norm, t_norm in zip(norms, t_norms):
        assert not np.allclose(norm.running_mean.numpy(), 0)  # the steps moved them
        t_norm.running_mean.copy_(torch.tensor(norm.running_mean.numpy()))
        t_norm.running_var.copy_(torch.tensor(norm.running_var.numpy()))
    with ndl.no_grad():
        model.eval()
        eval_logits = model(test_inputs).numpy()
    with torch.no_grad():
        t_eval = twin.eval()(torch.tensor(test)).numpy()
    np.testing.assert_allclose(eval_logits, t_eval, rtol=1e-9, atol=1e-9)
    assert np.abs(eval_logits - train_logits).max() > 1e-3
    with pytest.raises(ValueError,
                       match=r"expects input \(N, 3, H, W\), got shape \(2, 1, 32, 32\)"):
        model(ndl.Tensor(np.zeros((2, 1, 32, 32), np.float32)))


def test_training_memory_stays_flat():
    """After warm-up, further training steps allocate nothing that outlives them."""
    import gc
    import tracemalloc

    np.random.seed(0)
    model = ndl.models.ResNet9()
    opt = ndl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = ndl.Tensor(np.random.randn(8, 3, 32, 32).astype(np.float32), requires_grad=False)
    y = ndl.Tensor(np.random.randint(0, 10, 8))

    def step():
        opt.reset_grad()
        ndl.nn.SoftmaxLoss()(model(x), y).backward()
        opt.step()

    tracemalloc.start()
    try:
        for _ in range(3):
            step()
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(5):
            step()
        gc.collect()
        growth = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert growth < 64 * 1024, f"{growth} bytes more after 5 steps"
