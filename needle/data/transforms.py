"""Image transforms on one H x W x C numpy image, with randomness from ``np.random``."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


class Transform:
    """A callable image -> image."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def _check_image(img: np.ndarray, name: str) -> None:
    if img.ndim != 3:
        raise ValueError(f"{name} expects one H x W x C image, got shape {img.shape}")


class RandomFlipHorizontal(Transform):
    """Mirrors the image left-right (the W axis) when ``np.random.rand() < p``."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_image(img, "RandomFlipHorizontal")
        return img[:, ::-1, :] if np.random.rand() < self.p else img


class RandomCrop(Transform):
    """Zero-pads by ``padding`` and takes the H x W window shifted by (shift_x rows,
    shift_y cols), both from ``np.random.randint(-padding, padding + 1, size=2)``."""

    def __init__(self, padding: int = 3):
        if padding < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = padding

    def __call__(self, img: np.ndarray) -> np.ndarray:
        _check_image(img, "RandomCrop")
        shift_x, shift_y = np.random.randint(low=-self.padding, high=self.padding + 1, size=2)
        p, (h, w, _) = self.padding, img.shape
        padded = np.pad(img, ((p, p), (p, p), (0, 0)))
        return padded[p + shift_x:p + shift_x + h, p + shift_y:p + shift_y + w, :]


class Normalize(Transform):
    """(img - mean) / std per channel (the last axis)."""

    def __init__(self, mean: Sequence[float] | float, std: Sequence[float] | float):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if np.any(self.std <= 0):
            raise ValueError(f"std must be positive, got {std}")

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if self.mean.size > 1 and img.shape[-1] != self.mean.size:
            raise ValueError(f"Normalize has {self.mean.size} channel means but the image has "
                             f"shape {img.shape} (channels last)")
        return ((img - self.mean) / self.std).astype(img.dtype, copy=False)


class Compose(Transform):
    """Applies ``transforms`` (any callables image -> image) in order, as torchvision's."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]):
        self.transforms = list(transforms)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            img = transform(img)
        return img
