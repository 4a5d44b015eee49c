"""The array backend: NDArray views over numpy (CPU) or CuPy (GPU) buffers."""

from . import allocator
from .device import Axes, Device, Shape, all_devices, cpu, cpu_numpy, cuda, default_device
from .ndarray import (NDArray, array, broadcast_shapes, compact_strides, concatenate, einsum,
                      empty, from_dlpack, full, index_add, stack, where)

__all__ = ["Axes", "Device", "NDArray", "Shape", "all_devices", "allocator", "array",
           "broadcast_shapes", "compact_strides", "concatenate", "cpu", "cpu_numpy", "cuda",
           "default_device", "einsum", "empty", "from_dlpack", "full", "index_add", "stack",
           "where"]
