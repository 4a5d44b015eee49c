"""Training with Winograd convolutions reaches what im2col reaches: the CNN's test accuracy
on digits, and ResNet9's loss over a few SGD steps."""

from __future__ import annotations

import json

import numpy as np
import pytest

import needle as ndl
from needle.__main__ import main
from needle.ops.fused import winograd


@pytest.mark.slow
def test_cnn_accuracy_is_the_same_with_winograd(tmp_path, monkeypatch):
    """The digits CNN with channels 32, 64: its 32 -> 64 convolution (4x4 maps after the
    first pooling) runs by Winograd; 8 epochs on scikit-learn's digits either way."""
    accuracy = {}
    for enabled in (True, False):
        monkeypatch.setattr(winograd, "ENABLED", enabled)
        out = tmp_path / str(enabled)
        main(["train", "--model", "cnn", "--dataset", "digits", "--epochs", "8",
              "--cnn-channels", "32,64", "--out", str(out), "--no-progress", "--seed", "0"])
        accuracy[enabled] = json.loads((out / "history.json").read_text())[-1]["test_acc"]
    assert accuracy[True] >= 0.95 and accuracy[False] >= 0.95, accuracy
    assert abs(accuracy[True] - accuracy[False]) <= 0.01, accuracy


def test_resnet9_losses_are_the_same_with_winograd(monkeypatch):
    """Its 32-channel residual convolutions on 4x4 maps run by Winograd."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 16, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, (3, 16))
    losses = {}
    for enabled in (True, False):
        monkeypatch.setattr(winograd, "ENABLED", enabled)
        np.random.seed(0)
        model = ndl.models.ResNet9()
        opt = ndl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn, trace = ndl.nn.SoftmaxLoss(), []
        for x, y in zip(images, labels):
            opt.reset_grad()
            loss = loss_fn(model(ndl.Tensor(x)), ndl.Tensor(y))
            loss.backward()
            opt.step()
            trace.append(float(loss.numpy()))
        losses[enabled] = trace
    np.testing.assert_allclose(losses[True], losses[False], rtol=1e-4)
