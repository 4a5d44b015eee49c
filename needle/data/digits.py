"""scikit-learn's bundled 8x8 digits (1,797 real handwritten digits) with a fixed split."""

from __future__ import annotations

from typing import Any

import numpy as np

from .dataset import Dataset, Transforms


def load_digits_split(test_size: int = 360, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test): images (N, 8, 8, 1) float32 in [0, 1], labels int64.

    The split is a permutation from ``np.random.default_rng(seed)``: fixed for a seed, and
    it leaves numpy's global RNG untouched."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:  # pragma: no cover - scikit-learn is the datasets extra
        raise ImportError("the Digits dataset needs scikit-learn: pip install "
                          "'needle[datasets]'") from exc
    digits = load_digits()
    images = (digits.images.astype(np.float32) / 16.0)[..., None]
    labels = digits.target.astype(np.int64)
    if not 0 < test_size < len(labels):
        raise ValueError(f"test_size must be between 1 and {len(labels) - 1}, got {test_size}")
    order = np.random.default_rng(seed).permutation(len(labels))
    train, test = order[:-test_size], order[-test_size:]
    return images[train], labels[train], images[test], labels[test]


class Digits(Dataset):
    """The 8x8 digits: 1,437 training or 360 test images (N, 8, 8, 1) in [0, 1], labels
    0-9; the split is fixed by ``seed``."""

    takes_index_arrays = True

    def __init__(self, train: bool = True, transforms: Transforms = None,
                 test_size: int = 360, seed: int = 0):
        super().__init__(transforms)
        x_train, y_train, x_test, y_test = load_digits_split(test_size, seed)
        self.images, self.labels = (x_train, y_train) if train else (x_test, y_test)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        return self.apply_transforms_batch(self.images[index]), self.labels[index]
