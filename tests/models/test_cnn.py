"""The digits CNN: shapes, layouts, clear errors, the command line, and (slow) >= 98 %
holdout accuracy on the real MNIST images within 5 epochs."""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest

import needle as ndl
from needle.__main__ import data_dir, main


def test_cnn_shapes_for_mnist_and_digits():
    np.random.seed(0)
    for size, channels in ((28, (16, 32)), (8, (8, 16, 32))):
        model = ndl.models.CNN(image_size=size, channels=channels)
        x = ndl.Tensor(np.random.rand(3, 1, size, size).astype(np.float32))
        out = model(x)
        assert out.shape == (3, 10)
        out.sum().backward()
        assert all(p.grad is not None for p in model.parameters())


def test_cnn_equals_torch_with_copied_weights():
    """[Conv-BatchNorm2d-ReLU] x 2 - MaxPool2d per stage, Flatten, Linear against the same
    network in torch.nn: logits, loss and every parameter gradient, in float64."""
    torch = pytest.importorskip("torch")
    tnn, F = torch.nn, torch.nn.functional
    np.random.seed(2)
    model = ndl.models.CNN(in_channels=2, num_classes=5, image_size=8, channels=(4, 6),
                           convs_per_stage=2, dtype="float64")
    layers, width = [], 2
    for out in (4, 6):
        for _ in range(2):
            layers += [tnn.Conv2d(width, out, 3, padding=1), tnn.BatchNorm2d(out), tnn.ReLU()]
            width = out
        layers.append(tnn.MaxPool2d(2))
    twin = tnn.Sequential(*layers, tnn.Flatten(), tnn.Linear(6 * 2 * 2, 5)).double()
    pairs = list(zip(model.parameters(), twin.parameters()))
    assert len(pairs) == len(list(twin.parameters())) == len(model.parameters()) == 18
    for ours, theirs in pairs:
        value = ours.numpy()
        value = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value.T if \
            value.ndim == 2 else value
        with torch.no_grad():
            theirs.copy_(torch.tensor(value.reshape(theirs.shape)))
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((3, 2, 8, 8)), rng.integers(0, 5, 3)
    logits = model(ndl.Tensor(x, dtype="float64", requires_grad=False))
    ndl.nn.SoftmaxLoss()(logits, ndl.Tensor(y, requires_grad=False)).backward()
    t_logits = twin(torch.tensor(x))
    F.cross_entropy(t_logits, torch.tensor(y)).backward()
    # flattening order: needle flattens (C, H, W) like torch, so Linear rows match
    np.testing.assert_allclose(logits.numpy(), t_logits.detach().numpy(), rtol=1e-9, atol=1e-10)
    for i, (ours, theirs) in enumerate(pairs):
        grad = theirs.grad.numpy()
        grad = grad.transpose(2, 3, 1, 0) if grad.ndim == 4 else grad.T if grad.ndim == 2 \
            else grad
        np.testing.assert_allclose(ours.grad.numpy(), grad.reshape(ours.shape), rtol=1e-7,
                                   atol=1e-10, err_msg=f"parameter {i} {ours.shape}")


def test_channels_last_input_is_the_same_model():
    np.random.seed(1)
    first = ndl.models.CNN(in_channels=3, num_classes=4, image_size=12, convs_per_stage=2)
    second = ndl.models.CNN(in_channels=3, num_classes=4, image_size=12, convs_per_stage=2,
                            channels_last=True)
    second.load_state_dict(first.state_dict())
    x = np.random.rand(2, 3, 12, 12).astype(np.float32)
    np.testing.assert_allclose(second(ndl.Tensor(x.transpose(0, 2, 3, 1))).numpy(),
                               first(ndl.Tensor(x)).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"channels_last=True\) expects images \(N, H, W, 3\)"):
        second(ndl.Tensor(x))


def test_cnn_rejects_images_too_small_for_its_poolings():
    with pytest.raises(ValueError, match="3 poolings need images of at least 8 pixels"):
        ndl.models.CNN(image_size=4, channels=(8, 8, 8))


def test_command_line_trains_the_cnn_on_digits(tmp_path, capsys):
    main(["train", "--model", "cnn", "--dataset", "digits", "--epochs", "1", "--out",
          str(tmp_path), "--cnn-channels", "8,16", "--no-progress"])
    history = json.loads((tmp_path / "history.json").read_text())
    # one epoch of 8/16 channels: well above the 10 % of chance (about 40 % measured)
    assert len(history) == 1 and history[0]["test_acc"] >= 0.25, history
    assert "test accuracy" in capsys.readouterr().out


def _mnist_available() -> bool:
    folder = os.path.join(data_dir(argparse.Namespace(data_dir=None)), "mnist")
    return os.path.isfile(os.path.join(folder, "t10k-images-idx3-ubyte.gz"))


@pytest.mark.slow
@pytest.mark.skipif(not _mnist_available(), reason="needs $NEEDLE_DATA/mnist")
def test_cnn_reaches_98_percent_on_mnist_holdout_in_5_epochs(tmp_path):
    """python -m needle train --model cnn --dataset mnist: first 8,000 real MNIST test images
    for training, the last 2,000 held out."""
    main(["train", "--model", "cnn", "--dataset", "mnist", "--out", str(tmp_path),
          "--no-progress"])  # the defaults: 5 epochs of batch 32, no weight decay
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 5
    assert history[-1]["test_acc"] >= 0.98, history
