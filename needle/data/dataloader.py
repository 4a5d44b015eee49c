"""DataLoader: batches of a Dataset as Tensors, reshuffled at every epoch."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

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
    ``np.random.permutation`` when shuffling, split with ``np.array_split``.

    ``sampler``: an iterable of indices (e.g. ``distributed.DistributedSampler``) read afresh
    at each ``iter()`` instead of that order; it excludes ``shuffle``, as in PyTorch."""

    def __init__(self, dataset: Dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn: Callable[..., Any] | None = None,
                 device: Device | None = None, sampler: Iterable[int] | None = None):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the "
                             "sampler sets the order; DistributedSampler shuffles itself)")
        self.sampler = sampler
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn or default_collate
        self.device = device

    def _batches(self) -> list[np.ndarray]:
        if self.sampler is not None:
            order = np.fromiter(self.sampler, dtype=np.int64)
        elif self.shuffle:
            order = np.random.permutation(len(self.dataset))
        else:
            order = np.arange(len(self.dataset))
        n = len(order)
        batches = np.array_split(order, range(self.batch_size, n, self.batch_size))
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches = batches[:-1]
        return [b for b in batches if len(b)]

    def __iter__(self) -> Iterator[Any]:
        for indices in self._batches():
            yield self.collate_fn(self.dataset[indices], device=self.device) \
                if self.collate_fn is default_collate else self.collate_fn(self.dataset[indices])

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)  # type: ignore
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
