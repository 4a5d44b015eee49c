"""Linear SVM and softmax: loop and vectorised losses, gradient checks, random search.

cs231n's assignment-1 classifiers on scikit-learn's digits (and on CIFAR-10 too when
``--data-dir`` holds it). Images are flattened, the mean training image subtracted, and a
column of ones appended (the bias trick), so W is (D + 1, C). Each loss is written twice:
``*_loss_naive`` with explicit loops and a hand-derived gradient, and ``*_loss_vectorized``
on needle Tensors whose gradient comes from needle's autograd; both include ``reg * ΣW²``
(cs231n's assignment-1 convention, no 1/2). ``grad_check_sparse`` (``needle.gradcheck``'s)
compares the analytic gradient with central differences at random entries. ``LinearSVM``
and ``Softmax`` train by minibatch SGD; learning rate and regularisation come from a random
search on a log scale, picked by validation accuracy. Figures: the learned weights of each
class as images.

Results: ``softmax_init_loss`` (small random W: should be ln 10), ``naive_vs_vectorized_diff``
(largest loss or gradient difference, float64), ``grad_rel_error`` (worst sparse check),
``svm_test_acc``, ``softmax_test_acc`` and the chosen ``*_best_lr`` / ``*_best_reg``.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np

import needle as ndl

from ..gradcheck import grad_check_sparse
from . import common

LossFn = Callable[[np.ndarray, np.ndarray, np.ndarray, float], tuple[float, np.ndarray]]


# ---------------------------------------------------------------------------- losses
def svm_loss_naive(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
                   ) -> tuple[float, np.ndarray]:
    """Multiclass SVM (hinge, margin 1) with loops: W (D, C), X (N, D), y (N,)."""
    dW = np.zeros_like(W)
    loss = 0.0
    for i in range(len(X)):
        scores = X[i] @ W
        for j in range(W.shape[1]):
            margin = scores[j] - scores[y[i]] + 1
            if j != y[i] and margin > 0:
                loss += margin
                dW[:, j] += X[i]
                dW[:, y[i]] -= X[i]
    loss = loss / len(X) + reg * np.sum(W * W)
    return loss, dW / len(X) + 2 * reg * W


def softmax_loss_naive(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
                       ) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax(X W) with loops; scores shifted by their max for stability."""
    dW = np.zeros_like(W)
    loss = 0.0
    for i in range(len(X)):
        scores = X[i] @ W
        scores = scores - scores.max()
        probs = np.exp(scores) / np.sum(np.exp(scores))
        loss -= np.log(probs[y[i]])
        for j in range(W.shape[1]):
            dW[:, j] += (probs[j] - (j == y[i])) * X[i]
    loss = loss / len(X) + reg * np.sum(W * W)
    return loss, dW / len(X) + 2 * reg * W


def _on_needle(W: np.ndarray, X: np.ndarray) -> tuple[ndl.Tensor, ndl.Tensor]:
    dtype = np.dtype(W.dtype).name
    return (ndl.Tensor(W, dtype=dtype),
            ndl.Tensor(X, dtype=dtype, requires_grad=False))


def _finish(loss: ndl.Tensor, weight: ndl.Tensor, reg: float) -> tuple[float, np.ndarray]:
    loss = loss + reg * (weight * weight).sum()
    loss.backward()
    return float(loss.numpy()), weight.grad.numpy()


def svm_loss_vectorized(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
                        ) -> tuple[float, np.ndarray]:
    """The SVM loss on needle Tensors: sum over j ≠ y of relu(s_j - s_y + 1), gradient by
    autograd."""
    weight, x = _on_needle(W, X)
    n, num_classes = len(X), W.shape[1]
    scores = x @ weight
    correct = scores[np.arange(n), y].reshape((n, 1)).broadcast_to((n, num_classes))
    not_true = ndl.Tensor(np.arange(num_classes) != y[:, None], dtype=weight.dtype.name,
                          requires_grad=False)
    margins = ndl.relu(scores - correct + 1) * not_true
    return _finish(margins.sum() / n, weight, reg)


def softmax_loss_vectorized(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
                            ) -> tuple[float, np.ndarray]:
    """The softmax loss on needle Tensors: mean of logsumexp(s) - s_y, gradient by autograd."""
    weight, x = _on_needle(W, X)
    scores = x @ weight
    loss = (ndl.logsumexp(scores, axes=1) - scores[np.arange(len(X)), y]).sum() / len(X)
    return _finish(loss, weight, reg)


# ---------------------------------------------------------------------------- classifiers
class LinearClassifier:
    """scores = X W; trained by minibatch SGD on ``self.loss``."""

    loss_fn: LossFn

    def __init__(self) -> None:
        self.W: np.ndarray | None = None

    def train(self, X: np.ndarray, y: np.ndarray, learning_rate: float = 1e-3,
              reg: float = 1e-5, num_iters: int = 100, batch_size: int = 200,
              verbose: bool = False) -> list[float]:
        """SGD on minibatches drawn with replacement; returns the loss of every iteration."""
        if self.W is None:
            self.W = 0.001 * np.random.randn(X.shape[1], int(y.max()) + 1)
        history = []
        for it in range(num_iters):
            batch = np.random.choice(len(X), batch_size)
            loss, grad = self.loss(X[batch], y[batch], reg)
            self.W -= learning_rate * grad
            history.append(loss)
            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
        return history

    def predict(self, X: np.ndarray) -> np.ndarray:
        assert self.W is not None, "train the classifier first"
        return np.argmax(X @ self.W, axis=1)

    def loss(self, X: np.ndarray, y: np.ndarray, reg: float) -> tuple[float, np.ndarray]:
        assert self.W is not None
        return type(self).loss_fn(self.W, X, y, reg)


class LinearSVM(LinearClassifier):
    """Multiclass SVM (Weston-Watkins hinge, margin 1)."""

    loss_fn = staticmethod(svm_loss_vectorized)


class Softmax(LinearClassifier):
    """Softmax classifier (cross-entropy)."""

    loss_fn = staticmethod(softmax_loss_vectorized)


# ---------------------------------------------------------------------------- the lab
def preprocess(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Flatten, subtract the mean training image, append the bias column (float64)."""
    flat = [x.reshape(len(x), -1).astype(np.float64) for x in (X_train, *others)]
    mean = flat[0].mean(axis=0)
    return [np.hstack([x - mean, np.ones((len(x), 1))]) for x in flat]


def checks(X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The initial softmax loss, naive vs vectorised agreement and sparse gradient checks."""
    W = 0.0001 * np.random.randn(X.shape[1], 10)
    init_loss, _ = softmax_loss_vectorized(W, X, y, 0.0)
    diffs, errors = [], []
    for naive, vectorized in ((svm_loss_naive, svm_loss_vectorized),
                              (softmax_loss_naive, softmax_loss_vectorized)):
        for reg in (0.0, 5e1):
            W = 0.01 * np.random.randn(X.shape[1], 10)
            loss_n, grad_n = naive(W, X, y, reg)
            loss_v, grad_v = vectorized(W, X, y, reg)
            diffs += [abs(loss_n - loss_v), float(np.abs(grad_n - grad_v).max())]
            errors += grad_check_sparse(lambda w: vectorized(w, X, y, reg)[0], W, grad_v,
                                        verbose=False)
    return {"softmax_init_loss": init_loss, "naive_vs_vectorized_diff": max(diffs),
            "grad_rel_error": max(errors)}


def random_search(cls: type[LinearClassifier], X_train: np.ndarray, y_train: np.ndarray,
                  X_val: np.ndarray, y_val: np.ndarray, trials: int, num_iters: int
                  ) -> tuple[LinearClassifier, dict[str, float]]:
    """The classifier with the best validation accuracy over ``trials`` draws of
    log10(lr) ~ U(-3, 0) and log10(reg) ~ U(-5, -1)."""
    best: tuple[float, LinearClassifier, float, float] | None = None
    for _ in range(trials):
        lr, reg = 10 ** np.random.uniform(-3, 0), 10 ** np.random.uniform(-5, -1)
        classifier = cls()
        classifier.train(X_train, y_train, learning_rate=lr, reg=reg, num_iters=num_iters)
        val_acc = float(np.mean(classifier.predict(X_val) == y_val))
        if best is None or val_acc > best[0]:
            best = (val_acc, classifier, lr, reg)
    assert best is not None
    return best[1], {"val_acc": best[0], "best_lr": best[2], "best_reg": best[3]}


def experiment(split: common.Split, out: str, name: str, quick: bool) -> dict[str, float]:
    """Random search for both classifiers on one dataset; test accuracies, weight images."""
    X_train_img, y_train, X_test_img, y_test = split
    num_val = max(len(y_train) // 7, 1)
    X_train, X_test = preprocess(X_train_img, X_test_img)
    X_fit, y_fit, X_val, y_val = X_train[:-num_val], y_train[:-num_val], \
        X_train[-num_val:], y_train[-num_val:]
    results: dict[str, float] = {}
    for label, cls in (("svm", LinearSVM), ("softmax", Softmax)):
        classifier, found = random_search(cls, X_fit, y_fit, X_val, y_val,
                                          trials=8 if quick else 25,
                                          num_iters=300 if quick else 1500)
        results[f"{label}_test_acc"] = float(np.mean(classifier.predict(X_test) == y_test))
        results.update({f"{label}_{k}": v for k, v in found.items()})
        assert classifier.W is not None
        shape = X_train_img.shape[1:]
        images = [classifier.W[:-1, c].reshape(shape) for c in range(classifier.W.shape[1])]
        common.save_grid(images, os.path.join(out, f"{name}_{label}_weights.png"),
                         titles=[str(c) for c in range(len(images))],
                         suptitle=f"{label} weights ({name})")
    return results


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    split = common.load_digits()
    X_dev, = preprocess(split[0][:200])
    results = checks(X_dev, split[1][:200])
    results["ln10"] = math.log(10)
    results.update(experiment(split, out, "digits", quick))
    cifar = common.find_cifar10(data_dir)
    if cifar is not None:
        sizes = (2000, 200) if quick else (10000, 1000)
        found = experiment(common.load_cifar10(cifar, *sizes), out, "cifar10", quick)
        results.update({f"cifar_{k}": v for k, v in found.items() if k.endswith("test_acc")})
    return results
