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
    assert len(history) == 1 and 0 <= history[0]["test_acc"] <= 1
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
