"""The array backend: NDArray views over numpy (CPU) or CuPy (GPU) buffers."""

from . import allocator
from .device import Device, all_devices, cpu, cpu_numpy, cuda, default_device
from .ndarray import (NDArray, array, broadcast_shapes, compact_strides, concatenate, einsum,
                      empty, full, index_add, stack, where)

__all__ = ["Device", "allocator", "NDArray", "all_devices", "array", "broadcast_shapes", "compact_strides",
           "concatenate", "cpu", "einsum", "cpu_numpy", "cuda", "default_device", "empty", "full",
           "index_add", "stack", "where"]
