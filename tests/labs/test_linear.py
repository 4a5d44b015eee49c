"""The linear lab: loop and vectorised losses agree with PyTorch; its thresholds."""

import math

import numpy as np
import pytest
import torch

from needle import labs
from needle.labs import linear
from synthetic_cifar import write_synthetic_cifar


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(9, 7)) * 0.5, rng.normal(size=(12, 9)), rng.integers(4, size=12)


def test_losses_and_gradients_match_torch():
    W, X, y = _problem()
    W, X = W[:, :4].copy(), X
    reg = 0.3
    w = torch.tensor(W, requires_grad=True)
    scores = torch.tensor(X) @ w
    softmax = torch.nn.functional.cross_entropy(scores, torch.tensor(y)) + reg * (w ** 2).sum()
    softmax.backward()
    for fn in (linear.softmax_loss_naive, linear.softmax_loss_vectorized):
        loss, grad = fn(W, X, y, reg)
        assert loss == pytest.approx(softmax.item(), rel=1e-12)
        np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-10, atol=1e-12)
    w = torch.tensor(W, requires_grad=True)
    scores = torch.tensor(X) @ w
    correct = scores[torch.arange(12), torch.tensor(y)][:, None]
    margins = torch.clamp(scores - correct + 1, min=0)
    svm = (margins.sum() - 12) / 12 + reg * (w ** 2).sum()  # minus the j = y terms (each 1)
    svm.backward()
    for fn in (linear.svm_loss_naive, linear.svm_loss_vectorized):
        loss, grad = fn(W, X, y, reg)
        assert loss == pytest.approx(svm.item(), rel=1e-12)
        np.testing.assert_allclose(grad, w.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_grad_check_sparse_catches_a_wrong_gradient():
    W, X, y = _problem(1)
    W = W[:, :4].copy()
    loss_fn = lambda w: linear.softmax_loss_vectorized(w, X, y, 0.1)[0]  # noqa: E731
    _, grad = linear.softmax_loss_vectorized(W, X, y, 0.1)
    assert max(linear.grad_check_sparse(loss_fn, W, grad, num_checks=5)) < 1e-7
    assert min(linear.grad_check_sparse(loss_fn, W, 2 * grad + 1, num_checks=5)) > 1e-2


@pytest.mark.lab
def test_linear_lab_on_digits(tmp_path):
    results = labs.run_lab("linear", quick=True, out=str(tmp_path))
    assert abs(results["softmax_init_loss"] - math.log(10)) <= 0.05
    assert results["naive_vs_vectorized_diff"] <= 1e-8
    assert results["grad_rel_error"] <= 1e-7
    assert results["svm_test_acc"] >= 0.93
    assert results["softmax_test_acc"] >= 0.93
    assert (tmp_path / "digits_softmax_weights.png").exists()


@pytest.mark.lab
def test_linear_lab_on_cifar10_files(tmp_path):
    data = write_synthetic_cifar(tmp_path)
    results = labs.run_lab("linear", quick=True, out=str(tmp_path / "out"), data_dir=str(data))
    assert results["cifar_svm_test_acc"] >= 0.9 and results["cifar_softmax_test_acc"] >= 0.9
