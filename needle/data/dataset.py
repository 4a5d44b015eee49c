"""Dataset: indexable samples, with optional transforms applied to the first field."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

Transform = Callable[[np.ndarray], np.ndarray]


class Dataset:
    """Base class: ``__getitem__`` returns a tuple of fields, ``__len__`` their number."""

    def __init__(self, transforms: Sequence[Transform] | None = None):
        self.transforms = transforms

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def apply_transforms(self, x: np.ndarray) -> np.ndarray:
        for transform in self.transforms or ():
            x = transform(x)
        return x


class NDArrayDataset(Dataset):
    """Samples from arrays of equal length: item i is (a[i] for a in arrays)."""

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
