"""The adversarial lab: attacks on a linear model (known gradient) and its thresholds."""

import numpy as np
import pytest

import needle as ndl
from needle import labs
from needle.labs import adversarial


def _linear_model(weight):
    model = ndl.nn.Sequential(ndl.nn.Flatten(), ndl.nn.Linear(weight.shape[0], weight.shape[1]))
    model[1].weight.data = ndl.Tensor(weight.astype(np.float32))
    model[1].bias.data = ndl.Tensor(np.zeros((1, weight.shape[1]), np.float32))
    return model


def test_fgsm_steps_along_the_sign_of_the_loss_gradient():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(1 * 2 * 2, 3))
    model = _linear_model(weight)
    X = np.full((4, 1, 2, 2), 0.5, np.float32)
    y = np.array([0, 1, 2, 0])
    # softmax loss gradient in x: W (p - onehot(y)); all x are equal so p is uniform
    probs = np.full((4, 3), 1 / 3)
    probs[np.arange(4), y] -= 1
    grad = (probs @ weight.T).reshape(X.shape)
    np.testing.assert_allclose(adversarial.fgsm(model, X, y, 0.1), 0.5 + 0.1 * np.sign(grad),
                               rtol=1e-6)


def test_pgd_stays_in_the_ball_and_the_image_range():
    rng = np.random.default_rng(1)
    model = _linear_model(rng.normal(size=(9, 3)))
    X = rng.random((6, 1, 3, 3)).astype(np.float32)
    y = rng.integers(3, size=6)
    adv = adversarial.pgd(model, X, y, 0.2, steps=5)
    assert np.abs(adv - X).max() <= 0.2 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    clean_loss = ndl.nn.SoftmaxLoss()(model(ndl.Tensor(X)), ndl.Tensor(y)).numpy()
    adv_loss = ndl.nn.SoftmaxLoss()(model(ndl.Tensor(adv)), ndl.Tensor(y)).numpy()
    assert adv_loss > clean_loss


def test_fooling_images_reach_their_targets_on_a_linear_model():
    rng = np.random.default_rng(2)
    model = _linear_model(rng.normal(size=(9, 3)))
    X = rng.random((5, 1, 3, 3)).astype(np.float32)
    target = np.array([0, 1, 2, 1, 0])
    fooling = adversarial.make_fooling_image(X, target, model, learning_rate=0.5)
    scores = model(ndl.Tensor(fooling)).numpy()
    np.testing.assert_array_equal(scores.argmax(axis=1), target)


@pytest.mark.lab
@pytest.mark.slow
def test_adversarial_lab(tmp_path):
    results = labs.run_lab("adversarial", quick=True, out=str(tmp_path))
    assert results["fooling_success"] >= 0.95
    assert results["clean_acc"] >= 0.98
    assert results["fgsm_acc_eps0.2"] < results["clean_acc"] - 0.3
    assert results["pgd_acc_eps0.2"] <= results["fgsm_acc_eps0.2"]
    assert results["advtrain_pgd_acc_eps0.1"] >= results["pgd_acc_eps0.1"] + 0.2
    assert (tmp_path / "accuracy_vs_eps.png").exists() and (tmp_path / "fooling.png").exists()
