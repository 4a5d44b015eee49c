"""Seeing what a CNN sees: saliency maps and class visualisation on MNIST.

cs231n's "network visualization" (lecture 12) on a small CNN trained on the MNIST
8,000/2,000 split (``common.mnist_cnn``; images N x 1 x 28 x 28, cs231n's NCHW).
Everything here takes gradients with respect to the INPUT through the trained model
frozen in eval mode (``common.freeze``: no parameter requires a gradient, BatchNorm uses its
running statistics), and updates images in place through ``.data`` under ``no_grad``.

- ``compute_saliency_maps``: |d score_y / d pixel|, max over channels (Simonyan et al.).
- ``create_class_visualization``: gradient ascent on an image for score_target - l2_reg ·
  ‖img‖², with random jitter, clamping to [0, 1] and a Gaussian blur every few steps (a
  needle convolution with a fixed 3x3 kernel). All ten classes are optimised as one batch.

Figures: ``saliency.png`` (test images over their saliency maps) and ``class_vis.png``.
Results: ``saliency_ink_ratio`` (mean saliency on ink pixels, > 0.5, over the mean on the
background, = 0), ``classvis_target_prob`` (mean softmax probability of each image's target
class) and ``cnn_test_acc``.
"""

from __future__ import annotations

import os

import numpy as np

import needle as ndl

from . import common


def compute_saliency_maps(X: np.ndarray, y: np.ndarray, model: ndl.nn.Module) -> np.ndarray:
    """Saliency (N, H, W) of images X (N, C, H, W) for their labels y under the model."""
    rows = np.arange(len(X))
    grad, _ = common.input_gradient(common.freeze(model), X,
                                    lambda scores: scores[rows, y].sum())
    return np.abs(grad).max(axis=1)


def jitter(X: np.ndarray, ox: int, oy: int) -> np.ndarray:
    """Roll images (N, C, H, W) by ox columns and oy rows."""
    return np.roll(np.roll(X, ox, axis=3), oy, axis=2)


def blur_image(X: np.ndarray, sigma: float = 0.5) -> np.ndarray:
    """A 3x3 Gaussian blur of images (N, C, H, W), as a needle convolution per channel."""
    taps = np.exp(-np.arange(-1, 2) ** 2 / (2 * sigma ** 2))
    kernel = np.outer(taps, taps) / np.outer(taps, taps).sum()
    n, c, h, w = X.shape
    flat = ndl.Tensor(X.reshape(n * c, 1, h, w).transpose(0, 2, 3, 1), requires_grad=False)
    weight = ndl.Tensor(kernel.reshape(3, 3, 1, 1).astype(X.dtype), requires_grad=False)
    with ndl.no_grad():  # needle's conv is N x H x W x C
        out = ndl.conv(flat, weight, stride=1, padding=1).numpy()
    return out.transpose(0, 3, 1, 2).reshape(n, c, h, w)


def create_class_visualization(targets: np.ndarray, model: ndl.nn.Module,
                               num_iterations: int = 100, l2_reg: float = 1e-3,
                               learning_rate: float = 0.5, blur_every: int = 10,
                               max_jitter: int = 2) -> np.ndarray:
    """Images (len(targets), 1, 28, 28) that the model scores as their targets."""
    common.freeze(model)
    rows = np.arange(len(targets))
    image = ndl.Tensor(0.1 * np.random.rand(len(targets), 1, 28, 28).astype(np.float32))
    for t in range(num_iterations):
        ox, oy = np.random.randint(-max_jitter, max_jitter + 1, 2)
        with ndl.no_grad():
            image.data = ndl.Tensor(jitter(image.numpy(), ox, oy))
        objective = model(image)[rows, targets].sum() - l2_reg * (image * image).sum()
        objective.backward()
        grad = image.grad.numpy()
        norms = np.sqrt((grad ** 2).sum(axis=(1, 2, 3), keepdims=True)) + 1e-12
        step = jitter(image.numpy() + learning_rate * grad / norms, -ox, -oy)
        if t % blur_every == blur_every - 1:
            step = blur_image(step)
        with ndl.no_grad():  # update the leaf in place: it stays the same Tensor
            image.data = ndl.Tensor(np.clip(step, 0.0, 1.0).astype(np.float32))
    return image.numpy()


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    X_train, y_train, X_test, y_test = common.load_mnist(data_dir)
    model = common.mnist_cnn()
    common.train_classifier(model, X_train, y_train, epochs=2 if quick else 6, lr=3e-3)
    results = {"cnn_test_acc": common.accuracy(model, X_test, y_test)}
    X, y = X_test[:200], y_test[:200]
    saliency = compute_saliency_maps(X, y, model)
    ink, background = X[:, 0] > 0.5, X[:, 0] == 0
    results["saliency_ink_ratio"] = float(saliency[ink].mean() / saliency[background].mean())
    common.save_grid(list(X[:10]) + list(saliency[:10]), os.path.join(out, "saliency.png"),
                     titles=[str(label) for label in y[:10]] + ["saliency"] * 10,
                     cmap="hot")
    targets = np.arange(10)
    images = create_class_visualization(targets, model,
                                        num_iterations=100 if quick else 300)
    probs = softmax(common.predict_scores(model, images))
    results["classvis_target_prob"] = float(probs[targets, targets].mean())
    common.save_grid(list(images), os.path.join(out, "class_vis.png"),
                     titles=[f"{c}: p={probs[c, c]:.2f}" for c in targets])
    return results
