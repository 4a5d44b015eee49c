"""BPTTBatches: a batchified token stream read as a loader of BPTT windows."""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import Device
from .text import get_batch


class BPTTBatches:
    """The windows ``get_batch(batches, i, bptt)`` for i = 0, bptt, 2 bptt, ... as
    ``(data (seq_len, batch), target (seq_len * batch,))`` pairs, in order."""

    def __init__(self, batches: np.ndarray, bptt: int = 35, device: Device | None = None,
                 dtype: Any = None):
        if len(batches) < 2:
            raise ValueError(f"{len(batches)} rows of tokens give no window of bptt {bptt} "
                             f"(a window needs 2 rows)")
        self.batches, self.bptt, self.device, self.dtype = batches, bptt, device, dtype

    def __len__(self) -> int:
        return len(range(0, len(self.batches) - 1, self.bptt))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(0, len(self.batches) - 1, self.bptt):
            yield get_batch(self.batches, i, self.bptt, self.device, self.dtype)
