"""Dataset: indexable samples, with optional transforms applied to the first field."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]
Transforms = Sequence[Transform] | Transform | None  # a list, one callable, or a Compose


class Dataset:
    """Base class: ``__getitem__`` returns a tuple of fields, ``__len__`` their number.

    A subclass written PyTorch-style, ``__getitem__(self, i)`` for one item, is read item
    by item by the DataLoader. Datasets whose ``__getitem__`` also takes an index array
    (all of needle's) set ``takes_index_arrays = True`` and get whole batches at once."""

    takes_index_arrays = False

    def __init__(self, transforms: Transforms = None):
        self.transforms = transforms

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def apply_transforms(self, x: np.ndarray) -> np.ndarray:
        """``x`` through the transforms: a list of callables in order, or one callable."""
        transforms = self.transforms
        if callable(transforms):
            return transforms(x)
        for transform in transforms or ():
            x = transform(x)
        return x

    def apply_transforms_batch(self, x: np.ndarray, sample_ndim: int = 3) -> np.ndarray:
        """The transforms applied to one sample (``sample_ndim`` axes, e.g. H x W x C) or to
        each sample of a batch of them (one more leading axis)."""
        if not self.transforms:
            return x
        if x.ndim == sample_ndim + 1:
            return np.stack([self.apply_transforms(sample) for sample in x])
        return self.apply_transforms(x)


def takes_index_arrays(dataset: Any) -> bool:
    """Whether ``dataset[index_array]`` returns a whole batch (needle's datasets)."""
    return bool(getattr(dataset, "takes_index_arrays", False))


class NDArrayDataset(Dataset):
    """Samples from arrays of equal length: item i is (a[i] for a in arrays)."""

    takes_index_arrays = True

    def __init__(self, *arrays: np.ndarray):
        super().__init__()
        if not arrays or len({len(a) for a in arrays}) != 1:
            raise ValueError(f"NDArrayDataset needs arrays of one length, got lengths "
                             f"{[len(a) for a in arrays]}")
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices`` (e.g. a fixed train/holdout split)."""

    def __init__(self, dataset: Dataset, indices: Sequence[int] | np.ndarray):
        super().__init__()
        self.dataset = dataset
        self.takes_index_arrays = takes_index_arrays(dataset)
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.ndim != 1:
            raise ValueError(f"Subset needs a 1-D array of indices, got shape "
                             f"{self.indices.shape}")
        if self.indices.size and not 0 <= self.indices.min() <= self.indices.max() < len(dataset):
            raise ValueError(f"Subset indices must lie in [0, {len(dataset)}), got values in "
                             f"[{self.indices.min()}, {self.indices.max()}]")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return self.dataset[int(self.indices[index])]
        return self.dataset[self.indices[index]]
