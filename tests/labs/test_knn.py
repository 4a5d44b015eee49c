"""The knn lab: three distance computations agree, predict_labels' ties, its thresholds."""

import json

import numpy as np
import pytest

from needle import labs
from needle.labs.knn import KNearestNeighbor
from synthetic_cifar import write_synthetic_cifar


def test_distances_agree_with_scipy_style_numpy():
    rng = np.random.default_rng(0)
    X_train, X_test = rng.normal(size=(30, 7)), rng.normal(size=(9, 7))
    classifier = KNearestNeighbor()
    classifier.train(X_train, np.arange(30) % 3)
    expected = np.sqrt(((X_test[:, None, :] - X_train[None, :, :]) ** 2).sum(-1))
    for compute in (classifier.compute_distances_two_loops,
                    classifier.compute_distances_one_loop,
                    classifier.compute_distances_no_loops):
        np.testing.assert_allclose(compute(X_test), expected, rtol=1e-10, atol=1e-10)


def test_predict_labels_majority_and_ties_go_to_the_smaller_label():
    classifier = KNearestNeighbor()
    classifier.train(np.zeros((5, 1)), np.array([4, 2, 2, 4, 1]))
    dists = np.array([[0.0, 1.0, 2.0, 3.0, 4.0],    # k=4: two 4s, two 2s -> 2
                      [5.0, 0.1, 0.2, 0.3, 9.0]])   # k=3: 2, 2, 4 -> 2
    assert classifier.predict_labels(dists, k=4).tolist() == [2, 2]
    assert classifier.predict_labels(dists, k=1).tolist() == [4, 2]
    with pytest.raises(ValueError, match="k must be between 1 and 5"):
        classifier.predict_labels(dists, k=6)


@pytest.mark.lab
def test_knn_lab_on_digits(tmp_path):
    results = labs.run_lab("knn", quick=True, out=str(tmp_path))
    assert results == json.loads((tmp_path / "results.json").read_text())
    assert results["max_dist_diff"] <= 1e-6
    assert results["one_loop_dist_diff"] <= 1e-9
    assert results["test_acc"] >= 0.97
    assert results["best_k"] in (1, 3, 5, 8, 10, 12, 15, 20, 50, 100)
    assert (tmp_path / "digits_cross_validation.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.lab
def test_knn_lab_on_cifar10_files(tmp_path):
    data = write_synthetic_cifar(tmp_path)
    results = labs.run_lab("knn", quick=True, out=str(tmp_path / "out"), data_dir=str(data))
    assert results["cifar_test_acc"] >= 0.9  # learnable synthetic classes; chance is 0.1
    assert (tmp_path / "out" / "cifar10_cross_validation.png").exists()
