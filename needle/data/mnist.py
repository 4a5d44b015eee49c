"""MNIST in its gzip IDX files: images (N, 28, 28, 1) float32 in [0, 1], labels uint8."""

from __future__ import annotations

import gzip
import struct
from typing import Any

import numpy as np

from .dataset import Dataset, Transforms

_IDX_MAGIC = {"images": 2051, "labels": 2049}


def _read_idx(filename: str, kind: str) -> np.ndarray:
    """The array in one gzip IDX file, with a clear error naming a bad or truncated file."""
    try:
        with gzip.open(filename, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise ValueError(f"{filename}: not a readable gzip IDX {kind} file ({exc})") from exc
    ndim = 3 if kind == "images" else 1
    header = 4 + 4 * ndim
    if len(raw) < header or struct.unpack(">i", raw[:4])[0] != _IDX_MAGIC[kind]:
        raise ValueError(f"{filename}: not an IDX {kind} file (expected magic number "
                         f"{_IDX_MAGIC[kind]})")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header < count:
        raise ValueError(f"{filename}: truncated: header promises {shape} = {count} bytes of "
                         f"data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, count=count, offset=header).reshape(shape)


def parse_mnist(image_filename: str, label_filename: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28, 1) float32 in [0, 1], labels (N,) uint8)."""
    images = _read_idx(image_filename, "images")
    labels = _read_idx(label_filename, "labels")
    if len(images) != len(labels):
        raise ValueError(f"{image_filename} holds {len(images)} images but {label_filename} "
                         f"holds {len(labels)} labels")
    return (images.astype(np.float32) / 255.0)[..., None], labels.copy()


class MNISTDataset(Dataset):
    """MNIST from gzip IDX files; indexable by an int or an index array."""

    takes_index_arrays = True

    def __init__(self, image_filename: str, label_filename: str,
                 transforms: Transforms = None):
        super().__init__(transforms)
        self.images, self.labels = parse_mnist(image_filename, label_filename)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        return self.apply_transforms_batch(self.images[index]), self.labels[index]
