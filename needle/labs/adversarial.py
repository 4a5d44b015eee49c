"""Fooling a CNN: fooling images, FGSM and PGD attacks, FGSM adversarial training.

Lecture 16 of cs231n (and the fooling images of its assignment 3) on a small CNN trained on
the MNIST 8,000/2,000 split (``common.mnist_cnn``, NCHW images in [0, 1]). Every attack
takes gradients with respect to the input through the model frozen in eval mode.

- ``make_fooling_image``: gradient ascent on score_target with L2-normalised steps until
  the model predicts the target (cs231n's recipe), here for a batch at once.
- ``fgsm``: x + ε sign(∇ₓ loss), clipped to [0, 1] (Goodfellow et al.).
- ``pgd``: a random start in the L∞ ball, then k steps of size 2.5 ε / k, each projected
  back onto the ball and [0, 1] (Madry et al.).
- FGSM adversarial training: the trained model fine-tuned on FGSM examples with a random
  start (Wong et al., "fast is better than free"), then attacked with PGD again.

Figures: ``fooling.png`` (images, fooling images, 10x their difference),
``accuracy_vs_eps.png``, ``adversarial_examples.png``. Results: ``fooling_success`` (share of
50 images classified as their target), ``fooling_l2`` (mean L2 change), ``clean_acc``,
``fgsm_acc_eps{ε}``, ``pgd_acc_eps{ε}``, ``advtrain_clean_acc``, ``advtrain_pgd_acc_eps0.1``.
"""

from __future__ import annotations

import os

import numpy as np

import needle as ndl

from . import common

loss_fn = ndl.nn.SoftmaxLoss()


def loss_gradient(model: ndl.nn.Module, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """∇ₓ of the summed softmax loss at X (N, C, H, W) through the frozen model."""
    labels = ndl.Tensor(y)
    grad, _ = common.input_gradient(model, X, lambda s: loss_fn(s, labels) * len(y))
    return grad


def make_fooling_image(X: np.ndarray, target_y: np.ndarray, model: ndl.nn.Module,
                       learning_rate: float = 0.2, max_iter: int = 100) -> np.ndarray:
    """Images close to X that the model classifies as target_y (stops per image when it
    does): X += learning_rate · g / ‖g‖ with g = ∇ₓ score_target."""
    common.freeze(model)
    rows = np.arange(len(X))
    fooling = X.copy()
    for _ in range(max_iter):
        grad, scores = common.input_gradient(model, fooling,
                                             lambda s: s[rows, target_y].sum())
        active = scores.argmax(axis=1) != target_y
        if not active.any():
            break
        norms = np.sqrt((grad ** 2).sum(axis=(1, 2, 3), keepdims=True)) + 1e-12
        fooling += active[:, None, None, None] * learning_rate * grad / norms
    return fooling


def fgsm(model: ndl.nn.Module, X: np.ndarray, y: np.ndarray, eps: float) -> np.ndarray:
    return np.clip(X + eps * np.sign(loss_gradient(common.freeze(model), X, y)), 0, 1)


def pgd(model: ndl.nn.Module, X: np.ndarray, y: np.ndarray, eps: float, steps: int
        ) -> np.ndarray:
    common.freeze(model)
    step = 2.5 * eps / steps
    adv = np.clip(X + np.random.uniform(-eps, eps, X.shape).astype(X.dtype), 0, 1)
    for _ in range(steps):
        adv = adv + step * np.sign(loss_gradient(model, adv, y))
        adv = np.clip(np.clip(adv, X - eps, X + eps), 0, 1)
    return adv.astype(X.dtype)


def fgsm_random_start(eps: float) -> common.Perturb:
    """The training perturbation: uniform start in the ball, one FGSM step of 1.25 ε."""
    def perturb(model: ndl.nn.Module, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        start = X + np.random.uniform(-eps, eps, X.shape).astype(X.dtype)
        grad = loss_gradient(common.freeze(model), start, y)
        common.unfreeze(model)
        adv = np.clip(start + 1.25 * eps * np.sign(grad), X - eps, X + eps)
        return np.clip(adv, 0, 1).astype(X.dtype)
    return perturb


def accuracy_curves(model: ndl.nn.Module, X: np.ndarray, y: np.ndarray,
                    epsilons: list[float], steps: int) -> dict[str, list[float]]:
    curves: dict[str, list[float]] = {"fgsm": [], "pgd": []}
    for eps in epsilons:
        curves["fgsm"].append(common.accuracy(model, fgsm(model, X, y, eps), y))
        curves["pgd"].append(common.accuracy(model, pgd(model, X, y, eps, steps), y))
    return curves


def copy_model(model: ndl.nn.Module) -> ndl.nn.Module:
    twin = common.mnist_cnn()
    twin.load_state_dict(model.state_dict())
    return twin


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    X_train, y_train, X_test, y_test = common.load_mnist(data_dir)
    model = common.mnist_cnn()
    common.train_classifier(model, X_train, y_train, epochs=3 if quick else 8, lr=3e-3)
    results = {"clean_acc": common.accuracy(model, X_test, y_test)}

    X, y = X_test[:50], y_test[:50]
    target = (y + 1 + np.random.randint(0, 9, len(y))) % 10  # any class but the true one
    fooling = make_fooling_image(X, target, model)
    results["fooling_success"] = float(np.mean(
        common.predict_scores(model, fooling).argmax(axis=1) == target))
    results["fooling_l2"] = float(np.sqrt(((fooling - X) ** 2).sum(axis=(1, 2, 3))).mean())
    common.save_grid(list(X[:8]) + list(fooling[:8]) + list(10 * (fooling - X)[:8]),
                     os.path.join(out, "fooling.png"), ncols=8,
                     titles=[f"{label}" for label in y[:8]] + [f"-> {t}" for t in target[:8]]
                     + ["10x diff"] * 8)

    count, steps = (300, 10) if quick else (2000, 40)
    X, y = X_test[:count], y_test[:count]
    epsilons = [0.1, 0.2] if quick else [0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    curves = accuracy_curves(model, X, y, epsilons, steps)
    for name, values in curves.items():
        results.update({f"{name}_acc_eps{eps:g}": acc for eps, acc in zip(epsilons, values)})

    robust = copy_model(model)
    common.train_classifier(robust, X_train, y_train, epochs=1 if quick else 4, lr=1e-3,
                            perturb=fgsm_random_start(0.15))
    results["advtrain_clean_acc"] = common.accuracy(robust, X_test, y_test)
    robust_eps = [0.1] if quick else epsilons
    robust_curves = accuracy_curves(robust, X, y, robust_eps, steps)
    for name, values in robust_curves.items():
        results.update({f"advtrain_{name}_acc_eps{eps:g}": acc
                        for eps, acc in zip(robust_eps, values)})
    plot = {"fgsm": curves["fgsm"], "pgd": curves["pgd"]}
    if not quick:
        plot.update({"pgd, FGSM-trained": robust_curves["pgd"]})
    common.save_curves({k: [results["clean_acc"]] + v for k, v in plot.items()},
                       os.path.join(out, "accuracy_vs_eps.png"), "ε (L∞)", "test accuracy",
                       "attacks on the MNIST CNN", x=[0.0] + epsilons)
    examples = [fgsm(model, X[:8], y[:8], eps) for eps in (0.1, 0.2, 0.3)]
    common.save_grid([img for batch in examples for img in batch],
                     os.path.join(out, "adversarial_examples.png"), ncols=8,
                     titles=[f"FGSM ε={eps}" for eps in (0.1, 0.2, 0.3) for _ in range(8)])
    return results
