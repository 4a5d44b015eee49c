"""DataLoader: batches of a Dataset as Tensors, reshuffled at every epoch.

Two ways to fetch a batch. needle's own datasets take an index array (``dataset[indices]``
returns every field for the whole batch at once: the fast path). Any other dataset is read
item by item, PyTorch-style (``dataset[i]`` for each i), and the samples are collated by
``default_collate``: arrays and numbers stacked, tuples, lists and dicts collated field by
field, strings kept as lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Callable, Iterator

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import Device
from .dataset import Dataset, takes_index_arrays


def collate_fields(fields: Any, device: Device | None = None) -> Any:
    """One constant Tensor per field of a batch fetched with an index array: a tuple of
    Tensors for a tuple (or a single array) of fields, a dict for a dict."""
    if isinstance(fields, Mapping):
        return {key: _constant(np.asarray(value), device) for key, value in fields.items()}
    if isinstance(fields, (np.ndarray, Tensor)):
        fields = (fields,)
    return tuple(_constant(np.asarray(field), device) for field in fields)


def default_collate(samples: Sequence[Any], device: Device | None = None) -> Any:
    """A batch from a list of samples, like PyTorch's ``default_collate``: Tensors, arrays
    and numbers are stacked into one Tensor (Python floats as float32, ints as int64);
    dicts give a dict, tuples a tuple and lists a list, each collated field by field;
    strings stay a list."""
    first = samples[0]
    if isinstance(first, Tensor):
        return _constant(np.stack([s.numpy() for s in samples]), device)
    if isinstance(first, (np.ndarray, np.generic)):
        return _constant(np.stack([np.asarray(s) for s in samples]), device)
    if isinstance(first, bool) or isinstance(first, (int, float)):
        dtype = np.float32 if isinstance(first, float) else np.int64
        return _constant(np.asarray(samples, dtype=dtype), device)
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, Mapping):
        return {key: default_collate([s[key] for s in samples], device) for key in first}
    if isinstance(first, Sequence):
        if len({len(s) for s in samples}) != 1:
            raise ValueError(f"default_collate: every sample of a batch needs the same number "
                             f"of fields, got {sorted({len(s) for s in samples})}")
        fields = [default_collate(list(column), device) for column in zip(*samples)]
        return list(fields) if isinstance(first, list) else tuple(fields)
    raise TypeError(f"default_collate cannot batch samples of type {type(first).__name__}: "
                    f"return arrays, numbers, Tensors, strings, or tuples/lists/dicts of them, "
                    f"or pass collate_fn=")


def _constant(array: np.ndarray, device: Device | None) -> Tensor:
    return Tensor(array, device=device, requires_grad=False)


class DataLoader:
    """Iterates over ``dataset`` in batches: at each ``iter()``, a fresh
    ``np.random.permutation`` when shuffling, split with ``np.array_split``.

    ``sampler``: an iterable of indices (e.g. ``distributed.DistributedSampler``) read afresh
    at each ``iter()`` instead of that order; it excludes ``shuffle``, as in PyTorch.

    ``collate_fn`` receives what was fetched: the fields of the whole batch for a dataset
    that takes index arrays, else the list of samples (as in PyTorch)."""

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False,
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
        self.collate_fn = collate_fn
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

    def _fetch(self, indices: np.ndarray) -> Any:
        """The batch at ``indices``: one index-array lookup, or one lookup per item."""
        if takes_index_arrays(self.dataset):
            return self.dataset[indices]
        return [self.dataset[int(i)] for i in indices]

    def __iter__(self) -> Iterator[Any]:
        vectorised = takes_index_arrays(self.dataset)
        for indices in self._batches():
            batch = self._fetch(indices)
            if self.collate_fn is not None:
                yield self.collate_fn(batch)
            elif vectorised:
                yield collate_fields(batch, self.device)
            else:
                yield default_collate(batch, self.device)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.dataset)  # type: ignore
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
