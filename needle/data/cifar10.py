"""CIFAR-10 from its python-version batch files (``cifar-10-batches-py``).

Each file (``data_batch_1`` .. ``data_batch_5``, ``test_batch``) is a Python 2 pickle of a
dict: ``data`` a uint8 array (N, 3072) of N 32×32 RGB images, channel planes one after the
other, and ``labels`` a list of N class ids 0-9. Unpickling can run arbitrary code, so the
files are read with an unpickler that builds only the containers and numpy arrays they hold.
"""

from __future__ import annotations

import codecs
import os
import pickle
from typing import Any

import numpy as np

from .dataset import Dataset, Transforms

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10

# The only globals a CIFAR batch refers to: numpy's array reconstruction (under its numpy 1
# and numpy 2 module names; _frombuffer for protocol 5) and, in files pickled by Python 3 at
# protocol 2, bytes' encoder.
_RECONSTRUCT = np.ndarray((0,), np.uint8).__reduce__()[0]
_FROMBUFFER = np.ndarray((0,), np.uint8).__reduce_ex__(5)[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Builds dicts, lists, strings, numbers and numpy arrays; refuses every other global."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR-10 batch "
                                         f"holds only lists and numpy arrays") from None


def load_batch(filename: str) -> tuple[np.ndarray, np.ndarray]:
    """(data (N, 3072) uint8, labels (N,) int64) from one CIFAR-10 python batch file."""
    try:
        with open(filename, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{filename}: no such CIFAR-10 batch file; expected the python "
                                f"version (cifar-10-batches-py) with data_batch_1..5 and "
                                f"test_batch") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"{filename}: not a CIFAR-10 python batch file ({exc})") from exc
    return _check_batch(batch, filename)


def _field(batch: dict, key: str) -> Any:
    for candidate in (key.encode(), key):
        if candidate in batch:
            return batch[candidate]
    raise ValueError(f"no '{key}' entry")


def _check_batch(batch: Any, filename: str) -> tuple[np.ndarray, np.ndarray]:
    """The batch's (data, labels), or a clear error naming the file and what is wrong."""
    try:
        if not isinstance(batch, dict):
            raise ValueError(f"holds a {type(batch).__name__}, not a dict")
        data, labels = _field(batch, "data"), np.asarray(_field(batch, "labels"))
        size = int(np.prod(IMAGE_SHAPE))
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != size:
            raise ValueError(f"'data' must be a uint8 array (N, {size}), got "
                             f"{getattr(data, 'dtype', type(data).__name__)} "
                             f"{getattr(data, 'shape', '')}")
        if labels.shape != (len(data),) or labels.dtype.kind not in "iu" \
                or (labels.size and not 0 <= labels.min() <= labels.max() < NUM_CLASSES):
            values = f" in [{labels.min()}, {labels.max()}]" if labels.size else ""
            raise ValueError(f"'labels' must be {len(data)} class ids in [0, {NUM_CLASSES}), "
                             f"got shape {labels.shape} of {labels.dtype}{values}")
    except ValueError as exc:
        raise ValueError(f"{filename}: not a CIFAR-10 batch: {exc}") from None
    return data, labels.astype(np.int64)


class CIFAR10Dataset(Dataset):
    """CIFAR-10 images (N, 3, 32, 32) float32 in [0, 1] and labels (N,) int64: the five
    training batches (``train=True``, 50,000 images) or the test batch (10,000) of
    ``base_folder``. Transforms see each image as H×W×C (like every needle image transform)
    and hand it back as C×H×W. ``p`` is kept for the needle course's signature; flips
    are a transform (``RandomFlipHorizontal(p)``)."""

    takes_index_arrays = True

    def __init__(self, base_folder: str, train: bool = True, p: float = 0.5,
                 transforms: Transforms = None):
        super().__init__(transforms)
        self.p = p
        files = TRAIN_FILES if train else TEST_FILES
        batches = [load_batch(os.path.join(base_folder, name)) for name in files]
        data = np.concatenate([d for d, _ in batches])
        self.images = data.reshape((-1,) + IMAGE_SHAPE).astype(np.float32) / 255.0
        self.labels = np.concatenate([labels for _, labels in batches])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Any) -> tuple[np.ndarray, Any]:
        images = self.images[index]
        if self.transforms:
            channels_last = np.moveaxis(images, -3, -1)
            images = np.ascontiguousarray(np.moveaxis(
                self.apply_transforms_batch(channels_last), -1, -3))
        return images, self.labels[index]
