"""DistributedSampler: each rank's share of a dataset's indices, PyTorch's semantics."""

from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np

from . import comm


class DistributedSampler:
    """The indices rank ``rank`` of ``num_replicas`` reads in one epoch.

    Every rank draws the same order (a permutation seeded by ``seed + epoch``, independent
    of numpy's global RNG; ``set_epoch(e)`` reshuffles), pads it by wrapping around to a
    multiple of ``num_replicas`` (``drop_last``: cuts it instead), and takes
    ``indices[rank::num_replicas]``, so all ranks get ``num_samples`` indices and an epoch
    covers the dataset once (plus the padding).

    ``pad=False`` (not in PyTorch) takes ``indices[rank::num_replicas]`` of the unpadded
    order: counts differ by at most one, and the ranks cover the dataset exactly once, for
    evaluation, where no collective runs per batch.

    >>> [list(DistributedSampler(range(5), 2, r, shuffle=False)) for r in (0, 1)]
    [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(self, dataset: Sized, num_replicas: int | None = None,
                 rank: int | None = None, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, pad: bool = True):
        self.num_replicas = comm.world_size() if num_replicas is None else num_replicas
        self.rank = comm.rank() if rank is None else rank
        if self.num_replicas < 1 or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"DistributedSampler: rank must be in 0..num_replicas - 1, got "
                             f"rank {self.rank} of {self.num_replicas}")
        if drop_last and not pad:
            raise ValueError("DistributedSampler: drop_last=True and pad=False exclude "
                             "each other")
        self.dataset = dataset
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.pad = pad
        self.epoch = 0

    @property
    def total_size(self) -> int:
        """The length of the padded (or cut) order that the ranks split."""
        n, world = len(self.dataset), self.num_replicas
        if not self.pad:
            return n
        return n // world * world if self.drop_last else math.ceil(n / world) * world

    def set_epoch(self, epoch: int) -> None:
        """Draw the order of epoch ``epoch`` (the same on every rank) at the next iter()."""
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """The order of the whole dataset this epoch, padded or cut to ``total_size``."""
        n = len(self.dataset)
        if self.shuffle:
            indices = np.random.default_rng(self.seed + self.epoch).permutation(n)
        else:
            indices = np.arange(n)
        if self.total_size > n:
            indices = np.resize(indices, self.total_size)  # repeats from the start
        return indices[:self.total_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return len(range(self.rank, self.total_size, self.num_replicas))
