"""NDArray: a strided n-dimensional array on a device.

An NDArray is a view — shape, strides (in elements) and an offset — over a flat buffer of
its device's array module. ``__getitem__``, ``permute``, ``broadcast_to``, ``flip`` and
``as_strided`` return views that share memory; ``compact()`` makes a contiguous copy only
when one is needed. Elementwise ops need one device and broadcast like numpy (the autograd
layer still makes every broadcast of Tensors explicit with ``broadcast_to``).

NDArrays speak numpy's array protocols, as CuPy arrays do: ``np.asarray(a)`` views a CPU
array, numpy ufuncs and functions on NDArrays compute on their device and return NDArrays,
and a GPU array never converts implicitly (``.numpy()`` copies it explicitly). The course
framework's view internals are here too: ``_handle`` (the buffer), ``_offset``,
``_strides``, ``process_slice``, ``as_strided``, ``NDArray.make`` and ``.flat``.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import DTypeLike

from . import blas, parallel
from .device import Axes, Device, Shape, cpu, cuda, default_device

Scalar = int | float | bool


def _wrap(array: Any, device: Device) -> NDArray:
    """An NDArray around an array of ``device``'s module, without copying (the hot path)."""
    out = object.__new__(NDArray)
    # numpy reduces 0-d results to scalars; keep an array so setitem and numpy() behave
    out._array = array = np.asarray(array) if isinstance(array, np.generic) else array
    out._device = device
    out.shape, out.dtype = array.shape, array.dtype
    return out


def _scalar(value: Any) -> Scalar:
    """A Python number: numpy scalars would otherwise promote float32 arrays to float64."""
    return value.item() if isinstance(value, np.generic) else value


def compact_strides(shape: Shape) -> Shape:
    """Row-major strides, in elements, of a compact array of ``shape``."""
    strides, stride = [], 1
    for dim in reversed(shape):
        strides.append(stride)
        stride *= dim
    return tuple(reversed(strides))


class NDArray:
    """An n-dimensional array: a strided view over a flat buffer on a device."""

    # shape and dtype are read on every op: kept as attributes, not properties of _array
    __slots__ = ("_array", "_device", "shape", "dtype")
    _array: Any
    _device: Device
    shape: Shape
    dtype: np.dtype

    def __init__(self, other: Any, device: Device | None = None, dtype: DTypeLike | None = None):
        if isinstance(other, NDArray):
            device = device or other.device
            source = other._array if device is other.device else other.numpy()
        else:
            device = device or default_device()
            source = other
        xp = device.module()
        if not isinstance(source, xp.ndarray):
            source = np.asarray(source)
            if dtype is None and source.dtype == np.float64:
                dtype = "float32"
        self._array = xp.array(source, dtype=dtype)
        self._device = device
        self.shape, self.dtype = self._array.shape, self._array.dtype

    @staticmethod
    def make(shape: Shape, strides: Shape | None = None, device: Device | None = None,
             handle: Any = None, offset: int = 0, dtype: DTypeLike = "float32") -> NDArray:
        """A view of ``shape`` and ``strides`` (elements) at ``offset`` into a flat ``handle``
        (another array's ``_handle``, an NDArray or an array of the device's module); a new
        buffer when ``handle`` is None."""
        device = device or default_device()
        xp = device.module()
        if handle is None:
            handle = xp.empty(offset + math.prod(shape), dtype=dtype)
        elif isinstance(handle, Handle):
            handle = handle.array
        elif isinstance(handle, NDArray):
            handle = handle.compact()._array
        strides = compact_strides(shape) if strides is None else tuple(strides)
        _check_inside(shape, strides, offset, handle.size)
        flat = handle.reshape(-1)[offset:]
        byte_strides = tuple(s * flat.itemsize for s in strides)
        return _wrap(xp.lib.stride_tricks.as_strided(flat, shape, byte_strides), device)

    # ------------------------------------------------------------------ properties
    @property
    def strides(self) -> Shape:
        itemsize = self._array.itemsize
        return tuple(s // itemsize for s in self._array.strides)

    @property
    def ndim(self) -> int:
        return self._array.ndim

    @property
    def size(self) -> int:
        return self._array.size

    @property
    def device(self) -> Device:
        return self._device

    def __len__(self) -> int:
        return len(self._array)

    def __repr__(self) -> str:
        return f"NDArray({self.numpy()!r}, device={self._device})"

    # ------------------------------------------------------------------ the course's internals
    @property
    def _handle(self) -> Handle:
        """The flat buffer this view looks into: views of one array share it (equal ptr())."""
        return Handle.of(self._array, self._device)

    @property
    def _offset(self) -> int:
        """Where element (0, ..., 0) sits in ``_handle``, in elements."""
        return (_address(self._array) - self._handle.ptr()) // self._array.itemsize

    @property
    def _strides(self) -> Shape:
        return self.strides

    def process_slice(self, sl: slice, dim: int) -> slice:
        """``sl`` with explicit start, stop and step for axis ``dim`` (negatives resolved)."""
        return slice(*sl.indices(self.shape[dim]))

    @property
    def flat(self) -> NDArray:
        """A flat view of a compact array (as in the course): ``a.flat[j] += eps`` writes
        through to ``a``'s memory."""
        if not self._array.flags.c_contiguous:
            raise ValueError(f"flat needs a compact array; this one has shape {self.shape} "
                             f"and strides {self.strides}: call compact() first (a copy)")
        return _wrap(self._array.reshape(-1), self._device)

    # ------------------------------------------------------------------ numpy protocols
    def __array__(self, dtype: DTypeLike | None = None, copy: bool | None = None) -> np.ndarray:
        """numpy's view of a CPU array. A GPU array raises instead of copying silently
        (CuPy's rule): ``.numpy()`` copies it to the host explicitly."""
        if self._device.xp is not np:
            raise TypeError(f"implicit conversion of a {self._device} NDArray to a numpy "
                            f"array is not allowed (CuPy's rule); call .numpy() to copy it "
                            f"to the host")
        if copy:
            return np.array(self._array, dtype=dtype, copy=True)
        return self._array if dtype is None else self._array.astype(dtype, copy=False)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """A numpy ufunc on NDArrays runs on their device and returns NDArrays."""
        device = self._device
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"], device)
        result = getattr(ufunc, method)(*_unwrap(inputs, device), **kwargs)
        return _rewrap(result, device)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        """A numpy function on NDArrays (``np.linalg.norm``, ``np.concatenate``...) runs with
        the device's module (numpy or CuPy) and returns NDArrays."""
        device = self._device
        target = func if device.xp is np else _same_function(device.xp, func)
        if target is None:
            return NotImplemented
        result = target(*_unwrap(args, device), **_unwrap(kwargs, device))
        return _rewrap(result, device)

    def __float__(self) -> float:
        return float(self._one_element())

    def __int__(self) -> int:
        return int(self._one_element())

    def __bool__(self) -> bool:
        return bool(self._one_element())

    def __abs__(self) -> NDArray:
        return _wrap(abs(self._array), self._device)

    def _one_element(self) -> Any:
        if self.size != 1:
            raise ValueError(f"only a one-element array converts to a Python number, got "
                             f"shape {self.shape}")
        return self._array.reshape(-1)[0].item()

    # ------------------------------------------------------------------ conversion
    def numpy(self) -> np.ndarray:
        """The values as a numpy array (shares memory on the CPU)."""
        if self._device.xp is np:
            return self._array
        return self._array.get()

    def to(self, device: Device) -> NDArray:
        """This array on ``device`` (self when it is already there)."""
        return self if device is self._device else NDArray(self.numpy(), device=device)

    def astype(self, dtype: DTypeLike) -> NDArray:
        return self if self.dtype == dtype else _wrap(self._array.astype(dtype), self._device)

    def fill(self, value: Scalar) -> None:
        self._array.fill(value)

    # ------------------------------------------------------------------ views and layout
    def is_compact(self) -> bool:
        return bool(self._array.flags.c_contiguous)

    def compact(self) -> NDArray:
        """A row-major contiguous array with the same values (self when already compact)."""
        a, xp = self._array, self._device.xp
        if a.flags.c_contiguous:
            return self
        if not parallel.splits(a.shape[0], a.size, xp):
            return _wrap(xp.ascontiguousarray(a), self._device)
        out = xp.empty(a.shape, dtype=a.dtype)  # a large gather (im2col): two cores

        def copy_rows(lo: int, hi: int) -> None:
            out[lo:hi] = a[lo:hi]

        parallel.over_rows(copy_rows, a.shape[0], a.size, xp)
        return _wrap(out, self._device)

    def reshape(self, new_shape: Shape) -> NDArray:
        """A view with a new shape; the array must be compact and keep its size."""
        if not self._array.flags.c_contiguous:
            raise ValueError(f"reshape needs a compact array; this one has shape {self.shape} "
                             f"and strides {self.strides}: call compact() first")
        try:  # numpy checks the sizes and fills in -1; on failure, say what came
            return _wrap(self._array.reshape(new_shape), self._device)
        except (ValueError, TypeError):
            raise ValueError(f"cannot reshape an array of shape {self.shape} ({self.size} "
                             f"elements) into shape {tuple(new_shape)}") from None

    def permute(self, new_axes: Sequence[int]) -> NDArray:
        """A view with the axes reordered: output axis i is input axis ``new_axes[i]``."""
        if len(new_axes) != self.ndim:
            raise ValueError(f"permute needs a permutation of {self.ndim} axes, got {new_axes}")
        try:  # numpy rejects repeated and out-of-range axes
            return _wrap(self._array.transpose(new_axes), self._device)
        except ValueError:
            raise ValueError(f"permute needs a permutation of {self.ndim} axes, "
                             f"got {new_axes}") from None

    def broadcast_to(self, new_shape: Shape) -> NDArray:
        """A read-only view that repeats size-1 (or missing leading) axes with stride 0."""
        new_shape = tuple(new_shape)
        if broadcast_shapes(self.shape, new_shape) != new_shape:
            raise ValueError(f"cannot broadcast an array of shape {self.shape} "
                             f"to shape {new_shape}")
        return _wrap(self._device.xp.broadcast_to(self._array, new_shape), self._device)

    def as_strided(self, shape: Shape, strides: Shape) -> NDArray:
        """A view of ``shape`` with ``strides`` (in elements) starting at this array's first
        element; the caller keeps it inside the buffer (used by im2col)."""
        itemsize = self._array.itemsize
        byte_strides = tuple(s * itemsize for s in strides)
        view = self._device.xp.lib.stride_tricks.as_strided(self._array, shape, byte_strides)
        return _wrap(view, self._device)

    def flip(self, axes: Axes) -> NDArray:
        """A view with the order of elements reversed along ``axes``."""
        return _wrap(self._device.xp.flip(self._array, axes), self._device)

    def pad(self, axes: Sequence[tuple[int, int]]) -> NDArray:
        """A new array zero-padded by ``(before, after)`` elements on each axis."""
        if len(axes) != self.ndim:
            raise ValueError(f"pad needs one (before, after) pair per axis: array has shape "
                             f"{self.shape}, got {tuple(axes)}")
        shape = tuple(d + lo + hi for d, (lo, hi) in zip(self.shape, axes))
        out = self._device.xp.zeros(shape, dtype=self.dtype)
        out[tuple(slice(lo, lo + d) for d, (lo, _) in zip(self.shape, axes))] = self._array
        return _wrap(out, self._device)

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index: Any) -> NDArray:
        """Ints and slices give a view that shares memory; integer arrays give a copy."""
        index = self._index(index)
        out = self._array[index]
        if isinstance(out, np.generic):  # all ints: numpy copies a scalar; take a 0-d view
            out = self._array[(index if isinstance(index, tuple) else (index,)) + (Ellipsis,)]
        return _wrap(out, self._device)

    def __setitem__(self, index: Any, value: NDArray | Scalar) -> None:
        if isinstance(value, NDArray):
            self._check_device(value)
            value = value._array
        self._array[self._index(index)] = value

    def _index(self, index: Any) -> Any:
        items = index if isinstance(index, tuple) else (index,)
        if not any(isinstance(i, (NDArray, list, np.ndarray)) for i in items):
            return index
        xp = self._device.xp
        items = tuple(i._array if isinstance(i, NDArray) else
                      xp.asarray(i) if isinstance(i, (list, np.ndarray)) else i for i in items)
        return items if isinstance(index, tuple) else items[0]

    # ------------------------------------------------------------------ elementwise
    def _check_device(self, other: NDArray) -> None:
        if other._device is not self._device:
            raise ValueError(f"arrays are on different devices: {self._device} and "
                             f"{other._device}; move one with .to(device)")

    def _operand(self, other: NDArray | Scalar) -> Any:
        """The other operand's raw array (same device, checked) or number."""
        if isinstance(other, NDArray):
            self._check_device(other)
            return other._array
        return _scalar(other)

    def _binary(self, other: NDArray | Scalar, fn: Callable[[Any, Any], Any]) -> NDArray:
        operand = self._operand(other)
        try:
            return _wrap(fn(self._array, operand), self._device)
        except ValueError:
            raise self._shape_error(operand) from None

    def _shape_error(self, operand: Any) -> ValueError:
        return ValueError(f"shapes {self.shape} and {tuple(getattr(operand, 'shape', ()))} "
                          f"cannot be broadcast together")

    def __add__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.add)

    __radd__ = __add__

    def __iadd__(self, other: NDArray | Scalar) -> NDArray:
        """In place, into this array's memory (a view writes through to its base)."""
        operand = self._operand(other)
        try:
            self._array += operand
        except ValueError:
            raise self._shape_error(operand) from None
        return self

    def __sub__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.sub)

    def __rsub__(self, other: Scalar) -> NDArray:
        return _wrap(_scalar(other) - self._array, self._device)

    def __mul__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.mul)

    __rmul__ = __mul__

    def __truediv__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.truediv)

    def __rtruediv__(self, other: Scalar) -> NDArray:
        return _wrap(_scalar(other) / self._array, self._device)

    def __pow__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.pow)

    def __neg__(self) -> NDArray:
        return _wrap(-self._array, self._device)

    def maximum(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, self._device.xp.maximum)

    def __eq__(self, other: NDArray | Scalar) -> NDArray:  # type: ignore[override]
        return self._binary(other, operator.eq)

    def __ne__(self, other: NDArray | Scalar) -> NDArray:  # type: ignore[override]
        return self._binary(other, operator.ne)

    def __ge__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.ge)

    def __gt__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.gt)

    def __le__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.le)

    def __lt__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.lt)

    __hash__ = None  # type: ignore[assignment]

    def log(self) -> NDArray:
        return _wrap(self._device.xp.log(self._array), self._device)

    def exp(self) -> NDArray:
        return _wrap(self._device.xp.exp(self._array), self._device)

    def tanh(self) -> NDArray:
        return _wrap(self._device.xp.tanh(self._array), self._device)

    def logical_not(self) -> NDArray:
        return _wrap(self._device.xp.logical_not(self._array), self._device)

    # ------------------------------------------------------------------ reductions, matmul
    def sum(self, axis: Axes = None, keepdims: bool = False) -> NDArray:
        return _wrap(array_sum(self._device.xp, self._array, axis, keepdims), self._device)

    def max(self, axis: Axes = None, keepdims: bool = False) -> NDArray:
        if self.size == 0 and any(self.shape[i] == 0 for i in _axes_tuple(axis, self.ndim)):
            raise ValueError(f"max over an empty axis is undefined: shape {self.shape}, "
                             f"axis {axis}")
        return _wrap(self._array.max(axis=axis, keepdims=keepdims), self._device)

    def __matmul__(self, other: NDArray) -> NDArray:
        """Matrix product over the last two axes (leading axes must be equal or broadcast)."""
        self._check_device(other)
        inner = other.shape[-2] if other.ndim > 1 else other.shape[0] if other.ndim else None
        if self.ndim < 1 or self.shape[-1] != inner:
            raise ValueError(f"matmul: inner dimensions differ: {self.shape} @ {other.shape}")
        xp = self._device.xp
        product = blas.matmul(xp, _blas_ready(self._array, xp), _blas_ready(other._array, xp))
        return _wrap(product, self._device)

    # ------------------------------------------------------------------ DLPack
    def __dlpack__(self, **kwargs: Any) -> Any:
        """A DLPack capsule of this array's memory, shared, not copied (numpy's or CuPy's
        own; ``torch.from_dlpack(a)`` and ``np.from_dlpack(a)`` call it)."""
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, device id): (1, 0) on the CPU, (2, id) on a CUDA GPU."""
        kind, index = self._array.__dlpack_device__()
        return int(kind), int(index)


class Handle:
    """The flat buffer under an NDArray (the course's ``_handle``): ``array`` is the whole
    buffer as a 1-D array of the device's module; ``ptr()`` is its address."""

    __slots__ = ("array", "device")

    def __init__(self, array: Any, device: Device):
        self.array = array
        self.device = device

    @staticmethod
    def of(array: Any, device: Device) -> Handle:
        """The buffer that holds ``array`` (numpy: the array at the end of its chain of
        bases; CuPy: the memory block its pointer belongs to)."""
        memory = getattr(getattr(array, "data", None), "mem", None)
        if memory is not None:  # CuPy
            flat = device.xp.ndarray((memory.size // array.itemsize,), array.dtype,
                                     memptr=device.xp.cuda.MemoryPointer(memory, 0))
            return Handle(flat, device)
        root, base = array, array.base
        while base is not None:
            root = base if isinstance(base, np.ndarray) else root
            base = getattr(base, "base", None)
        return Handle(root.ravel(order="K").view(array.dtype), device)

    @property
    def size(self) -> int:
        return int(self.array.size)

    def ptr(self) -> int:
        return _address(self.array)

    def numpy(self) -> np.ndarray:
        return NDArray.make((self.size,), device=self.device, handle=self).numpy()


def _address(array: Any) -> int:
    """The address of element (0, ..., 0) of a numpy or CuPy array."""
    interface = getattr(array, "__cuda_array_interface__", None) or array.__array_interface__
    return int(interface["data"][0])


def _unwrap(value: Any, device: Device) -> Any:
    """``value`` with every NDArray (inside tuples, lists and dicts too) replaced by its
    raw array; NDArrays of another device are an error."""
    if isinstance(value, NDArray):
        if value._device is not device:
            raise ValueError(f"arrays are on different devices: {device} and "
                             f"{value._device}; move one with .to(device)")
        return value._array
    if isinstance(value, (tuple, list)):
        return type(value)(_unwrap(v, device) for v in value)
    if isinstance(value, dict):
        return {k: _unwrap(v, device) for k, v in value.items()}
    return value


def _rewrap(value: Any, device: Device) -> Any:
    """``value`` with every raw array of ``device`` (inside tuples and lists too) wrapped."""
    if isinstance(value, device.xp.ndarray):
        return _wrap(value, device)
    if isinstance(value, (tuple, list)):
        return type(value)(_rewrap(v, device) for v in value)
    return value


def _same_function(xp: Any, func: Any) -> Any:
    """``xp``'s function of the same module path and name as numpy's ``func``, or None."""
    target = xp
    for part in func.__module__.split(".")[1:]:
        target = getattr(target, part, None)
    return getattr(target, func.__name__, None)


def _blas_ready(array: Any, xp: Any) -> Any:
    """``array`` itself when BLAS can read its last two axes in place, else a compact copy.

    A broadcast (stride-0) or sliced operand would otherwise send numpy to its slow loop."""
    if array.ndim < 2 or array.flags.c_contiguous or array.flags.f_contiguous or \
            blas.layout(array) is not None:
        return array
    return xp.ascontiguousarray(array)


_ONES: dict[tuple[int, Any, Any], Any] = {}
#: The longest rows summed by BLAS: its accumulation is not pairwise, so its error grows with
#: the row length (rows of 1001: 1.8e-5 against numpy's 5e-6); beyond this, numpy's sum.
TRAILING_MAX = 1 << 14


def array_sum(xp: Any, array: Any, axis: Axes = None, keepdims: bool = False) -> Any:
    """``array.sum(axis, keepdims)`` for an array of module ``xp``, with a sum over the axes
    that lead in memory done as one BLAS product ``ones @ rows``: numpy's reduction loop is
    slow when the kept axes are narrow (a (8192, 16) column sum: 175 us; as a product 9 us).
    A sum over the trailing axes of a C-contiguous array is one product ``rows @ ones``:
    numpy's pairwise sum along float32 rows is 3-5x slower than BLAS's (row sums of
    (16, 10000): 67 vs 24 us; of (1024, 128): 73 vs 14 us), with errors of the same size."""
    axes = (axis,) if isinstance(axis, int) else axis
    if axes is None or not 0 < len(axes) < array.ndim or array.dtype.kind != "f" or \
            array.size == 0:
        return array.sum(axis=axis, keepdims=keepdims)
    if array.flags.c_contiguous and tuple(axes) == tuple(range(len(axes))):  # the usual case
        return _sum_leading(xp, array, len(axes), keepdims)
    reduced = sorted(a % array.ndim for a in axes)
    if array.flags.c_contiguous and reduced == list(range(array.ndim - len(axes), array.ndim)) \
            and math.prod(array.shape[array.ndim - len(axes):]) <= TRAILING_MAX:
        return _sum_trailing(xp, array, len(axes), keepdims)
    # general case, e.g. an NCHW view of NHWC memory summed over N, H and W
    order = sorted(range(array.ndim), key=lambda i: -array.strides[i])  # axes in memory order
    in_memory = array.transpose(order)
    if not in_memory.flags.c_contiguous or sorted(order[:len(axes)]) != reduced:
        return array.sum(axis=axis, keepdims=keepdims)
    out = _sum_leading(xp, in_memory, len(axes), False)
    kept = order[len(axes):]
    out = out.transpose(sorted(range(len(kept)), key=lambda i: kept[i]))
    if keepdims:
        return out.reshape([1 if i in reduced else d for i, d in enumerate(array.shape)])
    return out


def _ones(xp: Any, n: int, dtype: Any) -> Any:
    """A vector of n ones (kept: the sums below use the same few lengths every step)."""
    key = (n, dtype, xp)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = xp.ones(n, dtype=dtype)
    return ones


def _sum_leading(xp: Any, array: Any, leading: int, keepdims: bool) -> Any:
    """The sum of a C-contiguous array over its first ``leading`` axes, as ones @ rows."""
    rows = math.prod(array.shape[:leading])
    kept = array.shape[leading:]
    out = _ones(xp, rows, array.dtype) @ array.reshape(rows, -1)
    return out.reshape((1,) * leading + kept if keepdims else kept)


def _sum_trailing(xp: Any, array: Any, trailing: int, keepdims: bool) -> Any:
    """The sum of a C-contiguous array over its last ``trailing`` axes, as rows @ ones."""
    kept = array.shape[:array.ndim - trailing]
    cols = math.prod(array.shape[array.ndim - trailing:])
    out = array.reshape(-1, cols) @ _ones(xp, cols, array.dtype)
    return out.reshape(kept + (1,) * trailing if keepdims else kept)


def _axes_tuple(axis: Axes, ndim: int) -> tuple[int, ...]:
    """``axis`` as a tuple (None: every axis)."""
    if axis is None:
        return tuple(range(ndim))
    return (axis,) if isinstance(axis, int) else tuple(axis)


def _check_inside(shape: Shape, strides: Shape, offset: int, size: int) -> None:
    """A clear error when a view of ``shape``/``strides`` at ``offset`` leaves the buffer."""
    if len(strides) != len(shape):
        raise ValueError(f"NDArray.make: shape {shape} and strides {strides} differ in length")
    if math.prod(shape) == 0:
        return
    first = offset + sum(s * (d - 1) for d, s in zip(shape, strides) if s < 0)
    last = offset + sum(s * (d - 1) for d, s in zip(shape, strides) if s > 0)
    if first < 0 or last >= size:
        raise ValueError(f"NDArray.make: shape {shape} with strides {strides} at offset "
                         f"{offset} reaches elements {first}..{last}, outside a buffer of "
                         f"{size} elements")


def broadcast_shapes(lhs: Shape, rhs: Shape) -> Shape:
    """The shape both operands broadcast to (numpy rules), or a clear error naming both."""
    ndim = max(len(lhs), len(rhs))
    lhs_full = (1,) * (ndim - len(lhs)) + tuple(lhs)
    rhs_full = (1,) * (ndim - len(rhs)) + tuple(rhs)
    out = []
    for a, b in zip(lhs_full, rhs_full):
        if a != b and a != 1 and b != 1:
            raise ValueError(f"shapes {tuple(lhs)} and {tuple(rhs)} cannot be broadcast together")
        out.append(b if a == 1 else a)
    return tuple(out)


# ---------------------------------------------------------------------- module functions
def array(a: Any, dtype: DTypeLike = "float32", device: Device | None = None) -> NDArray:
    """A new NDArray holding a copy of ``a`` (a list, numpy array or NDArray)."""
    return NDArray(a, device=device, dtype=dtype)


def empty(shape: Shape, dtype: DTypeLike = "float32",
          device: Device | None = None) -> NDArray:
    return (device or default_device()).empty(shape, dtype)


def full(shape: Shape, fill_value: Scalar, dtype: DTypeLike = "float32",
         device: Device | None = None) -> NDArray:
    return (device or default_device()).full(shape, fill_value, dtype)


def _same_device(arrays: Sequence[NDArray]) -> Device:
    for a in arrays[1:]:
        arrays[0]._check_device(a)
    return arrays[0].device


def stack(arrays: Sequence[NDArray], axis: int = 0) -> NDArray:
    """Join equal-shaped arrays along a new axis."""
    if not arrays or any(a.shape != arrays[0].shape for a in arrays):
        raise ValueError(f"stack needs one or more arrays of one shape, got shapes "
                         f"{[a.shape for a in arrays]}")
    device = _same_device(arrays)
    return _wrap(device.xp.stack([a._array for a in arrays], axis=axis), device)


def concatenate(arrays: Sequence[NDArray], axis: int = 0) -> NDArray:
    """Join arrays along an existing axis; the other axes must match."""
    shapes = [a.shape for a in arrays]
    rest = {s[:axis % len(s)] + s[axis % len(s) + 1:] for s in shapes} if arrays else set()
    if len(rest) != 1 or len({len(s) for s in shapes}) != 1:
        raise ValueError(f"concatenate along axis {axis} needs arrays that match on every "
                         f"other axis, got shapes {shapes}")
    device = _same_device(arrays)
    return _wrap(device.xp.concatenate([a._array for a in arrays], axis=axis), device)


def where(condition: NDArray, lhs: NDArray, rhs: NDArray) -> NDArray:
    """Elementwise ``lhs`` where ``condition`` holds, else ``rhs`` (equal shapes)."""
    if not condition.shape == lhs.shape == rhs.shape:
        raise ValueError(f"where needs equal shapes, got condition {condition.shape}, "
                         f"{lhs.shape} and {rhs.shape}")
    device = _same_device([condition, lhs, rhs])
    return _wrap(device.xp.where(condition._array, lhs._array, rhs._array), device)


def index_add(shape: Shape, index: Any, values: NDArray) -> NDArray:
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated indices accumulate."""
    device = values.device
    out = device.xp.zeros(shape, dtype=values.dtype)
    index = NDArray._index(values, index)
    if _is_basic(index):  # ints and slices never repeat a position: assignment is enough
        out[index] = values._array
    elif (rows := _whole_rows(index, shape, values.shape)) is not None:
        _add_rows_at(device.xp, out, rows, values._array)
    else:
        device.xp.add.at(out, index, values._array)
    return _wrap(out, device)


def _whole_rows(index: Any, shape: Shape, values_shape: Shape) -> Any:
    """The rows (n,) when ``index`` is one 1-D integer array picking whole rows of an array
    ``shape`` (an Embedding's gradient: ``values`` (n, *row) added at them), else None."""
    items = index if isinstance(index, tuple) else (index,)
    rows = items[0]
    whole = len(items) == 1 and getattr(rows, "ndim", 0) == 1 and rows.dtype.kind in "iu" \
        and len(shape) > 1 and tuple(values_shape) == (rows.shape[0], *shape[1:])
    return rows if whole else None


def _add_rows_at(xp: Any, out: Any, rows: Any, values: Any) -> None:
    """out[rows[i]] += values[i] for every i, repeats accumulating in order, as
    ``add.at(out, rows, values)`` but over the flat arrays, with one index per element:
    numpy's ``ufunc.at`` runs its fast loop only for 1-D operands (1120 rows of 128 into
    (10000, 128): 2.4 -> 0.63 ms). Each element gets the same additions in the same order,
    so the sums are bitwise equal."""
    width = math.prod(out.shape[1:])
    starts = (rows % out.shape[0]) * width  # negative rows count from the end
    flat_index = (starts[:, None] + xp.arange(width)).reshape(-1)
    xp.add.at(out.reshape(-1), flat_index, values.reshape(-1))


def _is_basic(index: Any) -> bool:
    """True when ``index`` holds only ints, slices, None and Ellipsis (numpy basic indexing)."""
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in items)


# ---------------------------------------------------------------------- DLPack
DLPACK_CPU, DLPACK_CUDA = 1, 2


def from_dlpack(x: Any) -> NDArray:
    """An NDArray sharing the memory of ``x``, any DLPack exporter (a torch tensor, a numpy
    or CuPy array): CPU memory becomes a ``cpu()`` array, CUDA memory a ``cuda()`` one."""
    if not hasattr(x, "__dlpack_device__"):
        raise TypeError(f"from_dlpack needs an object with __dlpack__ and __dlpack_device__ "
                        f"(a torch tensor, numpy or CuPy array), got {type(x).__name__}")
    kind = int(x.__dlpack_device__()[0])
    if kind == DLPACK_CPU:
        return _wrap(np.from_dlpack(x), cpu())
    if kind == DLPACK_CUDA:
        device = cuda()
        if not device.enabled():
            raise RuntimeError("from_dlpack: the array is in CUDA memory but needle's cuda() "
                               "device is not available (it needs CuPy and a GPU)")
        return _wrap(device.module().from_dlpack(x), device)
    raise ValueError(f"from_dlpack: arrays on DLPack device type {kind} are not supported; "
                     f"needle holds CPU ({DLPACK_CPU}) and CUDA ({DLPACK_CUDA}) memory")
def einsum(subscripts: str, *arrays: NDArray) -> NDArray:
    """Einstein summation in explicit form (``"ij,jk->ik"``) through the array module: a
    two-operand contraction that is a (batched) matrix product runs as one ``matmul``, others
    go through ``einsum`` with BLAS contraction paths (``optimize``). The result never shares
    memory with an input (numpy returns views for transposes and diagonals)."""
    device = _same_device(arrays)
    xp = device.xp
    raw = [a._array for a in arrays]
    plan = _matmul_plan(subscripts) if len(raw) == 2 else None
    if plan is not None:
        out = _einsum_as_matmul(xp, plan, raw[0], raw[1])
    else:
        out = xp.einsum(subscripts, *raw, optimize=len(raw) > 1)
    if any(xp.may_share_memory(out, r) for r in raw):
        out = out.copy()
    return _wrap(out, device)


@functools.lru_cache(maxsize=256)
def _matmul_plan(subscripts: str) -> tuple[Any, ...] | None:
    """How "lhs,rhs->out" is a batched matmul: the batch, left, contracted and right letters
    and the permutations; None when a letter repeats or is summed inside one operand."""
    inputs, out = subscripts.split("->")
    lhs, rhs = inputs.split(",")
    if len(set(lhs)) < len(lhs) or len(set(rhs)) < len(rhs) or \
            any(c not in rhs and c not in out for c in lhs) or \
            any(c not in lhs and c not in out for c in rhs):
        return None
    batch = [c for c in out if c in lhs and c in rhs]
    left = [c for c in lhs if c in out and c not in rhs]
    right = [c for c in rhs if c in out and c not in lhs]
    inner = [c for c in lhs if c in rhs and c not in out]
    lhs_order = tuple(lhs.index(c) for c in batch + left + inner)
    rhs_order = tuple(rhs.index(c) for c in batch + inner + right)
    result = batch + left + right
    return (len(batch), len(left), len(inner), len(right), lhs_order, rhs_order,
            tuple(result.index(c) for c in out))


def _einsum_as_matmul(xp: Any, plan: tuple[Any, ...], lhs: Any, rhs: Any) -> Any:
    nb, nl, ni, _, lhs_order, rhs_order, out_order = plan
    lhs, rhs = lhs.transpose(lhs_order), rhs.transpose(rhs_order)
    batch, left, right = lhs.shape[:nb], lhs.shape[nb:nb + nl], rhs.shape[nb + ni:]
    k = math.prod(lhs.shape[nb + nl:])
    product = blas.matmul(xp, lhs.reshape(batch + (math.prod(left), k)),
                          rhs.reshape(batch + (k, math.prod(right))))
    return product.reshape(batch + left + right).transpose(out_order)
