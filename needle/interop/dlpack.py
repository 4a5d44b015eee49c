"""DLPack: needle Tensors that share memory with torch tensors, numpy and CuPy arrays.

Out: ``torch.from_dlpack(t)`` (or ``t.cached_data``), ``np.from_dlpack(...)``,
``cupy.from_dlpack(...)`` read needle's memory through ``NDArray.__dlpack__``. In:
``ndl.from_dlpack(x)``. Either way no copy is made: a write through one is seen by the other.
"""

from __future__ import annotations

from typing import Any

from .. import backend_ndarray as nd
from ..autograd import Tensor


def from_dlpack(x: Any, requires_grad: bool = False) -> Tensor:
    """A Tensor sharing the memory of ``x`` (any DLPack exporter), like torch.from_dlpack;
    it requires no gradient unless asked (as in PyTorch)."""
    return Tensor(nd.from_dlpack(x), requires_grad=requires_grad)
