"""DataLoader: batches of a Dataset as Tensors, reshuffled at every epoch."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import Device
from .dataset import Dataset


def default_collate(samples: Sequence[Any], device: Device | None = None) -> tuple[Tensor, ...]:
    """One constant Tensor per field of a batch fetched with an index array."""
    return tuple(Tensor(np.asarray(field), device=device, requires_grad=False)
                 for field in samples)


class DataLoader:
    """Iterates over ``dataset`` in batches: at each ``iter()``, a fresh
    ``np.random.permutation`` when shuffling, split with ``np.array_split``."""

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[..., Any] | None = None,
                 device: Device | None = None):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn or default_collate
        self.device = device

    def _batches(self) -> list[np.ndarray]:
        n = len(self.dataset)
        order = np.random.permutation(n) if self.shuffle else np.arange(n)
        batches = np.array_split(order, range(self.batch_size, n, self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        return [b for b in batches if len(b)]

    def __iter__(self) -> Iterator[Any]:
        for indices in self._batches():
            yield self.collate_fn(self.dataset[indices], device=self.device) \
                if self.collate_fn is default_collate else self.collate_fn(self.dataset[indices])

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
