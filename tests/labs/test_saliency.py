"""The saliency lab: its pieces on models whose input gradient is known, and its thresholds."""

import numpy as np
import pytest
import torch

import needle as ndl
from needle import labs
from needle.labs import saliency


def _linear_model(weight):
    model = ndl.nn.Sequential(ndl.nn.Flatten(), ndl.nn.Linear(weight.shape[0], weight.shape[1]))
    model[1].weight.data = ndl.Tensor(weight.astype(np.float32))
    return model


def test_saliency_of_a_linear_model_is_its_weight_magnitude():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(2 * 3 * 3, 4))
    model = _linear_model(weight)
    X, y = rng.random((5, 2, 3, 3)).astype(np.float32), np.array([0, 1, 2, 3, 1])
    maps = saliency.compute_saliency_maps(X, y, model)
    want = np.abs(weight[:, y].T.reshape(5, 2, 3, 3)).max(axis=1)
    np.testing.assert_allclose(maps, want, rtol=1e-6)
    assert all(p.grad is None for p in model.parameters())


def test_blur_matches_a_torch_convolution():
    X = np.random.default_rng(1).random((2, 3, 6, 5)).astype(np.float32)
    taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * 0.5 ** 2))
    kernel = torch.tensor(np.outer(taps, taps) / np.outer(taps, taps).sum(), dtype=torch.float32)
    want = torch.nn.functional.conv2d(torch.tensor(X), kernel.expand(3, 1, 3, 3), padding=1,
                                      groups=3)
    np.testing.assert_allclose(saliency.blur_image(X), want.numpy(), rtol=1e-5, atol=1e-6)


def test_jitter_undoes_itself():
    X = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    np.testing.assert_array_equal(saliency.jitter(saliency.jitter(X, 1, -2), -1, 2), X)
    assert saliency.jitter(X, 1, 0)[0, 0, 0, 1] == X[0, 0, 0, 0]


@pytest.mark.lab
@pytest.mark.slow
def test_saliency_lab(tmp_path):
    results = labs.run_lab("saliency", quick=True, out=str(tmp_path))
    assert results["saliency_ink_ratio"] >= 2
    assert results["classvis_target_prob"] >= 0.9
    assert (tmp_path / "saliency.png").exists() and (tmp_path / "class_vis.png").exists()
