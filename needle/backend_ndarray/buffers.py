"""Which memory an NDArray uses: the array that owns its buffer, and that buffer's bytes.

Views (reshape, permute, broadcast_to, slicing, ``NDArray.make`` over a handle) share the
buffer of the array they view, so the memory a set of arrays holds is the sum over their
distinct owners (numpy and CuPy both chain views to their owner through ``.base``).
"""

from __future__ import annotations

from typing import Any, Iterable

from .ndarray import NDArray


def owner(array: NDArray) -> Any:
    """The device array that owns ``array``'s memory (itself when it is no view)."""
    root = array._array
    found = root
    while getattr(root, "base", None) is not None:
        root = root.base
        if hasattr(root, "nbytes") and hasattr(root, "dtype"):
            found = root  # skip helper objects (numpy's as_strided DummyArray) on the way
    return found


def held_bytes(arrays: Iterable[NDArray]) -> int:
    """Bytes of the distinct buffers behind ``arrays`` (shared memory counted once)."""
    owners = {id(o): o for o in (owner(a) for a in arrays)}
    return sum(int(o.nbytes) for o in owners.values())


def allocated_bytes(output: NDArray, inputs: Iterable[NDArray]) -> int:
    """Bytes an op allocated for ``output``: 0 when it views one of its inputs' buffers."""
    if output._array.base is None:  # owns its memory: the usual case, decided at once
        return int(output._array.nbytes)
    root = owner(output)
    if any(owner(x) is root for x in inputs):
        return 0
    return int(root.nbytes)
