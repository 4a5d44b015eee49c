"""Devices: where an NDArray's memory lives and which array module computes on it.

Every device runs the same code path; only the array module ``xp`` differs (numpy on the
CPU, CuPy on an NVIDIA GPU). Random numbers always come from numpy's global RNG, so that
``np.random.seed(k)`` reproduces the same values on every device.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from numpy.typing import DTypeLike

if TYPE_CHECKING:
    from .ndarray import NDArray

Shape = tuple[int, ...]
#: Axes to reduce or flip: one, several, or None for all (lists become tuples in ``ops``).
Axes = int | tuple[int, ...] | list[int] | None


class _Unavailable(ModuleType):
    """The array module of a device this machine lacks: any use raises a clear error."""

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise RuntimeError(f"device {self.__name__}() is not available on this machine "
                           "(it needs CuPy and a CUDA GPU); use ndl.cpu()")


class Device:
    """A named device whose arrays are made and computed by the array module ``xp``."""

    def __init__(self, name: str, xp: ModuleType | None):
        self.name = name
        self.xp: ModuleType = _Unavailable(name) if xp is None else xp

    def enabled(self) -> bool:
        """True when this device can hold arrays on this machine."""
        return not isinstance(self.xp, _Unavailable)

    def __repr__(self) -> str:
        return f"{self.name}()"

    def module(self) -> ModuleType:
        """The array module (numpy or CuPy); using a disabled device's module raises."""
        return self.xp

    def from_numpy(self, array: np.ndarray) -> Any:
        """Copy a host (numpy) array onto this device."""
        return self.module().asarray(array)

    def empty(self, shape: Shape, dtype: DTypeLike = "float32") -> NDArray:
        return _wrap(self.module().empty(shape, dtype=dtype), self)

    def full(self, shape: Shape, fill_value: float, dtype: DTypeLike = "float32") -> NDArray:
        return _wrap(self.module().full(shape, fill_value, dtype=dtype), self)

    def rand(self, *shape: int, dtype: DTypeLike = "float32") -> NDArray:
        """Uniform [0, 1) samples drawn from numpy's global RNG (``np.random.rand``)."""
        return _wrap(self.from_numpy(np.random.rand(*shape).astype(dtype)), self)

    def randn(self, *shape: int, dtype: DTypeLike = "float32") -> NDArray:
        """Standard normal samples drawn from numpy's global RNG (``np.random.randn``)."""
        return _wrap(self.from_numpy(np.random.randn(*shape).astype(dtype)), self)

    def one_hot(self, n: int, index: Sequence[int] | np.ndarray,
                dtype: DTypeLike = "float32") -> NDArray:
        """Rows ``index`` of the n×n identity: shape ``index.shape + (n,)``."""
        xp = self.module()
        return _wrap(xp.eye(n, dtype=dtype)[xp.asarray(index, dtype=np.int64)], self)


def _wrap(array: Any, device: Device) -> NDArray:
    from .ndarray import _wrap as wrap_array

    return wrap_array(array, device)


def _find_cupy() -> ModuleType | None:
    """CuPy when it is installed and sees at least one GPU, else None."""
    try:
        import cupy  # type: ignore[import-not-found]

        return cupy if cupy.cuda.runtime.getDeviceCount() > 0 else None
    except Exception:  # ImportError, or CUDA present without a usable driver
        return None


_CPU = Device("cpu", np)
_CPU_NUMPY = Device("cpu_numpy", np)
_CUDA: Device | None = None


def cpu() -> Device:
    """The CPU device (numpy arrays)."""
    return _CPU


def cpu_numpy() -> Device:
    """The numpy CPU device; kept distinct from ``cpu()`` for needle compatibility."""
    return _CPU_NUMPY


def cuda() -> Device:
    """The GPU device (CuPy arrays); ``cuda().enabled()`` is False without CuPy and a GPU."""
    global _CUDA
    if _CUDA is None:
        _CUDA = Device("cuda", _find_cupy())
    return _CUDA


def default_device() -> Device:
    return _CPU


def all_devices() -> list[Device]:
    """Every device this build knows, available here or not."""
    return [cpu(), cpu_numpy(), cuda()]
