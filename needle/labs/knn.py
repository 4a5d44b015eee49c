"""k-nearest neighbours: three distance computations, k by 5-fold cross-validation.

cs231n's ``KNearestNeighbor`` (assignment 1) on scikit-learn's digits, and on CIFAR-10 too
when ``--data-dir`` holds its python batches. The distance matrix is computed three ways —
two Python loops, one loop, and no loops via ``‖a - b‖² = ‖a‖² - 2ab + ‖b‖²`` on needle
Tensors (one matrix product) — and the no-loop one must agree with the two-loop one in
float64. ``predict_labels`` votes among the k nearest training points; a tie goes to the
smaller label (as ``np.argmax`` of the vote counts does). k is chosen by 5-fold
cross-validation on the training set (figure ``knn_cross_validation.png``).

Results: ``max_dist_diff`` (no loops vs two loops), ``one_loop_dist_diff``, ``best_k``,
``cv_acc_best_k``, ``test_acc`` (digits) and, with CIFAR-10, ``cifar_best_k`` and
``cifar_test_acc``.
"""

from __future__ import annotations

import os

import numpy as np

import needle as ndl

from . import common

K_CHOICES = (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
NUM_FOLDS = 5


class KNearestNeighbor:
    """A kNN classifier with the L2 distance; rows of X are flattened images."""

    def train(self, X: np.ndarray, y: np.ndarray) -> None:
        """Remember the training data: X (num_train, D), y (num_train,)."""
        self.X_train = X.reshape(len(X), -1).astype(np.float64)
        self.y_train = np.asarray(y, dtype=np.int64)

    def predict(self, X: np.ndarray, k: int = 1, num_loops: int = 0) -> np.ndarray:
        """Labels (num_test,) for X (num_test, D), distances computed with ``num_loops``."""
        compute = {0: self.compute_distances_no_loops, 1: self.compute_distances_one_loop,
                   2: self.compute_distances_two_loops}
        if num_loops not in compute:
            raise ValueError(f"num_loops must be 0, 1 or 2, got {num_loops}")
        return self.predict_labels(compute[num_loops](X), k=k)

    def compute_distances_two_loops(self, X: np.ndarray) -> np.ndarray:
        """dists (num_test, num_train): one L2 distance per pair, two nested loops."""
        X = X.reshape(len(X), -1).astype(np.float64)
        dists = np.zeros((len(X), len(self.X_train)))
        for i in range(len(X)):
            for j in range(len(self.X_train)):
                dists[i, j] = np.sqrt(np.sum((X[i] - self.X_train[j]) ** 2))
        return dists

    def compute_distances_one_loop(self, X: np.ndarray) -> np.ndarray:
        """dists (num_test, num_train): one row per test point, broadcasting over training."""
        X = X.reshape(len(X), -1).astype(np.float64)
        dists = np.zeros((len(X), len(self.X_train)))
        for i in range(len(X)):
            dists[i] = np.sqrt(np.sum((self.X_train - X[i]) ** 2, axis=1))
        return dists

    def compute_distances_no_loops(self, X: np.ndarray) -> np.ndarray:
        """dists (num_test, num_train) = sqrt(‖x‖² - 2 x·t + ‖t‖²) on needle Tensors."""
        test = ndl.Tensor(X.reshape(len(X), -1), dtype="float64", requires_grad=False)
        train = ndl.Tensor(self.X_train, dtype="float64", requires_grad=False)
        test_sq = (test * test).sum(axes=1).reshape((len(X), 1))
        train_sq = (train * train).sum(axes=1).reshape((1, len(self.X_train)))
        squared = test_sq.broadcast_to((len(X), len(self.X_train))) - 2 * (test @ train.T) \
            + train_sq.broadcast_to((len(X), len(self.X_train)))
        # rounding can leave tiny negatives where a test point equals a training point
        return ndl.sqrt(ndl.relu(squared)).numpy()

    def predict_labels(self, dists: np.ndarray, k: int = 1) -> np.ndarray:
        """The majority label among each row's k nearest training points; ties → smaller."""
        if not 1 <= k <= dists.shape[1]:
            raise ValueError(f"k must be between 1 and {dists.shape[1]} (the training "
                             f"points), got {k}")
        nearest = np.argsort(dists, axis=1, kind="stable")[:, :k]
        closest_y = self.y_train[nearest]
        num_classes = int(self.y_train.max()) + 1
        return np.array([np.bincount(row, minlength=num_classes).argmax() for row in closest_y])


def cross_validate(X: np.ndarray, y: np.ndarray, k_choices: tuple[int, ...]
                   ) -> dict[int, list[float]]:
    """Accuracy of every k on each of 5 folds (train on four, validate on the fifth)."""
    X_folds, y_folds = np.array_split(X, NUM_FOLDS), np.array_split(y, NUM_FOLDS)
    accuracies: dict[int, list[float]] = {k: [] for k in k_choices}
    for fold in range(NUM_FOLDS):
        classifier = KNearestNeighbor()
        classifier.train(np.concatenate(X_folds[:fold] + X_folds[fold + 1:]),
                         np.concatenate(y_folds[:fold] + y_folds[fold + 1:]))
        dists = classifier.compute_distances_no_loops(X_folds[fold])
        for k in k_choices:
            accuracies[k].append(float(np.mean(classifier.predict_labels(dists, k)
                                               == y_folds[fold])))
    return accuracies


def plot_cross_validation(accuracies: dict[int, list[float]], path: str, title: str) -> None:
    """Each fold's accuracy as dots and the mean ± std as a line, against k."""
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ks = sorted(accuracies)
    for k in ks:
        ax.scatter([k] * len(accuracies[k]), accuracies[k], s=10, color="gray")
    means = [np.mean(accuracies[k]) for k in ks]
    stds = [np.std(accuracies[k]) for k in ks]
    ax.errorbar(ks, means, yerr=stds, marker="o")
    ax.set_xscale("log")
    ax.set_xlabel("k")
    ax.set_ylabel("cross-validation accuracy")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def experiment(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray,
               y_test: np.ndarray, out: str, name: str) -> tuple[int, float, float]:
    """(best_k, its mean cross-validation accuracy, test accuracy) on one dataset."""
    k_choices = tuple(k for k in K_CHOICES if k < len(X_train) * (NUM_FOLDS - 1) // NUM_FOLDS)
    accuracies = cross_validate(X_train, y_train, k_choices)
    plot_cross_validation(accuracies, os.path.join(out, f"{name}_cross_validation.png"),
                          f"kNN on {name}: {NUM_FOLDS}-fold cross-validation")
    best_k = max(k_choices, key=lambda k: (np.mean(accuracies[k]), -k))
    classifier = KNearestNeighbor()
    classifier.train(X_train, y_train)
    test_acc = float(np.mean(classifier.predict(X_test, k=best_k) == y_test))
    return best_k, float(np.mean(accuracies[best_k])), test_acc


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    X_train, y_train, X_test, y_test = common.load_digits()
    classifier = KNearestNeighbor()
    classifier.train(X_train, y_train)
    few = X_test[:40] if quick else X_test  # the two-loop version is slow by design
    two = classifier.compute_distances_two_loops(few)
    one = classifier.compute_distances_one_loop(few)
    none = classifier.compute_distances_no_loops(few)
    common.save_grid([two, none], os.path.join(out, "knn_distances.png"), ncols=2,
                     titles=["two loops", "no loops"], scale=4)
    best_k, cv_acc, test_acc = experiment(X_train, y_train, X_test, y_test, out, "digits")
    results = {"max_dist_diff": float(np.abs(none - two).max()),
               "one_loop_dist_diff": float(np.abs(one - two).max()),
               "best_k": best_k, "cv_acc_best_k": cv_acc, "test_acc": test_acc}
    cifar = common.find_cifar10(data_dir)
    if cifar is not None:  # cs231n's own subsample: 5,000 training and 500 test images
        split = common.load_cifar10(cifar, *((1000, 100) if quick else (5000, 500)))
        results["cifar_best_k"], _, results["cifar_test_acc"] = experiment(
            *split, out, "cifar10")
    return results
