"""The framework features the cs231n labs lean on, each against PyTorch: input gradients
through a frozen eval-mode model, BCEWithLogitsLoss at ±100, DCGAN's stride-2 transposed
convolutions with output padding, LeakyReLU's slope, and image updates through ``.data``."""

import gc

import numpy as np
import pytest
import torch

import needle as ndl
from needle import nn


def _cnn_pair():
    """A needle CNN (conv-bn-relu-pool, dropout, linear) and its torch twin, same weights."""
    np.random.seed(0)
    ours = nn.Sequential(nn.Conv(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(4 * 6 * 6, 5))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                 torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
                                 torch.nn.Dropout(0.5), torch.nn.Linear(4 * 6 * 6, 5))
    ours.train()
    ours(ndl.Tensor(np.random.rand(8, 1, 12, 12).astype(np.float32)))  # running statistics
    conv, bn, linear = ours[0], ours[1], ours[6]
    with torch.no_grad():
        theirs[0].weight.copy_(torch.tensor(conv.weight.numpy().transpose(3, 2, 0, 1)))
        theirs[0].bias.copy_(torch.tensor(conv.bias.numpy().reshape(-1)))
        theirs[1].weight.copy_(torch.tensor(bn.weight.numpy()))
        theirs[1].bias.copy_(torch.tensor(bn.bias.numpy()))
        theirs[1].running_mean.copy_(torch.tensor(bn.running_mean.numpy()))
        theirs[1].running_var.copy_(torch.tensor(bn.running_var.numpy()))
        theirs[6].weight.copy_(torch.tensor(linear.weight.numpy().T))
        theirs[6].bias.copy_(torch.tensor(linear.bias.numpy().reshape(-1)))
    return ours, theirs


def test_input_gradients_through_a_frozen_eval_model_match_torch():
    ours, theirs = _cnn_pair()
    ours.eval()
    theirs.eval()
    for p in ours.parameters():
        p.requires_grad = False
    running = ours[1].running_mean.numpy().copy()
    x = np.random.default_rng(1).random((3, 1, 12, 12)).astype(np.float32)
    labels = np.array([0, 3, 4])
    image = ndl.Tensor(x, requires_grad=True)
    ours(image)[np.arange(3), labels].sum().backward()
    x_t = torch.tensor(x, requires_grad=True)
    theirs(x_t)[torch.arange(3), torch.tensor(labels)].sum().backward()
    np.testing.assert_allclose(image.grad.numpy(), x_t.grad.numpy(), rtol=1e-4, atol=1e-6)
    assert all(p.grad is None for p in ours.parameters())  # frozen: nothing accumulates
    np.testing.assert_array_equal(ours[1].running_mean.numpy(), running)  # eval: unchanged


def test_gradient_ascent_on_an_image_through_data_keeps_memory_flat():
    ours, _ = _cnn_pair()
    ours.eval()
    for p in ours.parameters():
        p.requires_grad = False
    image = ndl.Tensor(np.zeros((1, 1, 12, 12), np.float32), requires_grad=True)
    counts = []
    for _ in range(6):
        ours(image)[0, 2].backward()
        with ndl.no_grad():
            image.data = image.data + 0.1 * image.grad
        gc.collect()
        counts.append(sum(type(o) in (ndl.Tensor, nn.Parameter) for o in gc.get_objects()))
    assert image.requires_grad and image.is_leaf()
    assert counts[-1] == counts[1], counts  # nothing retained from step to step
    assert float(ours(image)[0, 2].numpy()) > float(ours(ndl.Tensor(
        np.zeros((1, 1, 12, 12), np.float32)))[0, 2].numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits_is_exact_and_finite_at_plus_minus_100(reduction):
    logits = np.array([-100.0, -30.0, 0.0, 30.0, 100.0, 100.0, -100.0], np.float32)
    target = np.array([1.0, 1.0, 0.5, 0.0, 0.0, 1.0, 0.0], np.float32)
    z = ndl.Tensor(logits)
    loss = nn.BCEWithLogitsLoss(reduction)(z, ndl.Tensor(target, requires_grad=False))
    loss.backward(ndl.init.ones_like(loss))
    z_t = torch.tensor(logits, requires_grad=True)
    want = torch.nn.functional.binary_cross_entropy_with_logits(z_t, torch.tensor(target),
                                                                reduction=reduction)
    want.backward(torch.ones_like(want))
    np.testing.assert_allclose(loss.numpy(), want.detach().numpy(), rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(z.grad.numpy(), z_t.grad.numpy(), rtol=1e-6, atol=1e-12)
    assert np.isfinite(loss.numpy()).all() and np.isfinite(z.grad.numpy()).all()


@pytest.mark.parametrize("c_in, c_out, size", [(128, 64, 7), (64, 1, 14), (3, 5, 4)])
def test_dcgan_transposed_convolutions_stride_2_output_padding(c_in, c_out, size):
    """cs231n's DCGAN upsamples 7 -> 14 -> 28 with kernel 4, stride 2, padding 1; kernel 3
    with output_padding 1 does the same."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, c_in, size, size)).astype(np.float32)
    for kernel, padding, extra in ((4, 1, 0), (3, 1, 1), (5, 2, 1)):
        layer = nn.ConvTranspose2d(c_in, c_out, kernel, stride=2, padding=padding,
                                   output_padding=extra)
        twin = torch.nn.ConvTranspose2d(c_in, c_out, kernel, stride=2, padding=padding,
                                        output_padding=extra)
        with torch.no_grad():  # needle (K, K, C_out, C_in) -> torch (C_in, C_out, K, K)
            twin.weight.copy_(torch.tensor(layer.weight.numpy().transpose(3, 2, 0, 1)))
            twin.bias.copy_(torch.tensor(layer.bias.numpy()))
        image = ndl.Tensor(x)
        out = layer(image)
        assert out.shape == (2, c_out, 2 * size, 2 * size)
        x_t = torch.tensor(x, requires_grad=True)
        want = twin(x_t)
        np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-4)
        projection = rng.normal(size=out.shape).astype(np.float32)
        (out * ndl.Tensor(projection, requires_grad=False)).sum().backward()
        (want * torch.tensor(projection)).sum().backward()
        np.testing.assert_allclose(image.grad.numpy(), x_t.grad.numpy(), rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(layer.weight.grad.numpy(),
                                   twin.weight.grad.numpy().transpose(2, 3, 1, 0),
                                   rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu_slope_forward_and_backward(slope):
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0], np.float32)
    image = ndl.Tensor(x)
    out = nn.LeakyReLU(slope)(image)
    out.sum().backward()
    np.testing.assert_allclose(out.numpy(), np.where(x > 0, x, slope * x))
    np.testing.assert_allclose(image.grad.numpy(), np.where(x > 0, 1.0, slope))
    assert repr(nn.LeakyReLU(slope)).endswith(f"(negative_slope={slope})")
