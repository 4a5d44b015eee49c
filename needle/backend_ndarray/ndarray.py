"""NDArray: a strided n-dimensional array on a device.

An NDArray is a view — shape, strides (in elements) and an offset — over a flat buffer of
its device's array module. ``__getitem__``, ``permute``, ``broadcast_to``, ``flip`` and
``as_strided`` return views that share memory; ``compact()`` makes a contiguous copy only
when one is needed. Elementwise ops need equal shapes and one device: broadcasting is the
autograd layer's job, made explicit there with ``broadcast_to``.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import DTypeLike

from .device import Axes, Device, Shape, cpu, cuda, default_device

Scalar = int | float | bool


def _wrap(array: Any, device: Device) -> NDArray:
    """An NDArray around an array of ``device``'s module, without copying (the hot path)."""
    out = object.__new__(NDArray)
    # numpy reduces 0-d results to scalars; keep an array so setitem and numpy() behave
    out._array = np.asarray(array) if isinstance(array, np.generic) else array
    out._device = device
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

    __slots__ = ("_array", "_device")
    _array: Any
    _device: Device

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

    @staticmethod
    def make(shape: Shape, strides: Shape | None = None, device: Device | None = None,
             handle: Any = None, offset: int = 0, dtype: DTypeLike = "float32") -> NDArray:
        """A view of ``shape`` and ``strides`` (elements) at ``offset`` into a flat ``handle``."""
        device = device or default_device()
        xp = device.module()
        if handle is None:
            handle = xp.empty(offset + math.prod(shape), dtype=dtype)
        elif isinstance(handle, NDArray):
            handle = handle.compact()._array
        strides = compact_strides(shape) if strides is None else tuple(strides)
        _check_inside(shape, strides, offset, handle.size)
        flat = handle.reshape(-1)[offset:]
        byte_strides = tuple(s * flat.itemsize for s in strides)
        return _wrap(xp.lib.stride_tricks.as_strided(flat, shape, byte_strides), device)

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> Shape:
        return self._array.shape

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
    def dtype(self) -> np.dtype:
        return self._array.dtype

    @property
    def device(self) -> Device:
        return self._device

    def __len__(self) -> int:
        return len(self._array)

    def __repr__(self) -> str:
        return f"NDArray({self.numpy()!r}, device={self._device})"

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
        if self._array.flags.c_contiguous:
            return self
        return _wrap(self._device.xp.ascontiguousarray(self._array), self._device)

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
        """The other operand's raw array (same device and shape, checked) or number."""
        if isinstance(other, NDArray):
            self._check_device(other)
            if other._array.shape != self._array.shape:
                raise ValueError(f"elementwise op needs equal shapes, got {self.shape} and "
                                 f"{other.shape}; broadcast_to one of them first")
            return other._array
        return _scalar(other)

    def _binary(self, other: NDArray | Scalar, fn: Callable[[Any, Any], Any]) -> NDArray:
        return _wrap(fn(self._array, self._operand(other)), self._device)

    def __add__(self, other: NDArray | Scalar) -> NDArray:
        return self._binary(other, operator.add)

    __radd__ = __add__

    def __iadd__(self, other: NDArray | Scalar) -> NDArray:
        """In place, into this array's memory (a view writes through to its base)."""
        self._array += self._operand(other)
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
        return _wrap(xp.matmul(_blas_ready(self._array, xp), _blas_ready(other._array, xp)),
                     self._device)

    # ------------------------------------------------------------------ DLPack
    def __dlpack__(self, **kwargs: Any) -> Any:
        """A DLPack capsule of this array's memory, shared, not copied (numpy's or CuPy's
        own; ``torch.from_dlpack(a)`` and ``np.from_dlpack(a)`` call it)."""
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        """(DLPack device type, device id): (1, 0) on the CPU, (2, id) on a CUDA GPU."""
        kind, index = self._array.__dlpack_device__()
        return int(kind), int(index)


def _blas_ready(array: Any, xp: Any) -> Any:
    """``array`` itself when BLAS can read its last two axes in place, else a compact copy.

    A broadcast (stride-0) or sliced operand would otherwise send numpy to its slow loop."""
    if array.ndim < 2 or array.flags.c_contiguous or array.flags.f_contiguous:
        return array
    item = array.itemsize
    rows, cols = array.strides[-2:]
    if (cols == item and rows >= array.shape[-1] * item) or \
            (rows == item and cols >= array.shape[-2] * item):
        return array
    return xp.ascontiguousarray(array)


_ONES: dict[tuple[int, Any, Any], Any] = {}


def array_sum(xp: Any, array: Any, axis: Axes = None, keepdims: bool = False) -> Any:
    """``array.sum(axis, keepdims)`` for an array of module ``xp``, with a sum over the axes
    that lead in memory done as one BLAS product ``ones @ rows``: numpy's reduction loop is
    slow when the kept axes are narrow (a (8192, 16) column sum: 175 us; as a product 9 us)."""
    axes = (axis,) if isinstance(axis, int) else axis
    if axes is None or not 0 < len(axes) < array.ndim or array.dtype.kind != "f" or \
            array.size == 0:
        return array.sum(axis=axis, keepdims=keepdims)
    if array.flags.c_contiguous and tuple(axes) == tuple(range(len(axes))):  # the usual case
        return _sum_leading(xp, array, len(axes), keepdims)
    # general case, e.g. an NCHW view of NHWC memory summed over N, H and W
    reduced = sorted(a % array.ndim for a in axes)
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


def _sum_leading(xp: Any, array: Any, leading: int, keepdims: bool) -> Any:
    """The sum of a C-contiguous array over its first ``leading`` axes, as ones @ rows."""
    rows = math.prod(array.shape[:leading])
    key = (rows, array.dtype, xp)
    ones = _ONES.get(key)
    if ones is None:
        ones = _ONES[key] = xp.ones(rows, dtype=array.dtype)
    kept = array.shape[leading:]
    return (ones @ array.reshape(rows, -1)).reshape((1,) * leading + kept if keepdims else kept)


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
    else:
        device.xp.add.at(out, index, values._array)
    return _wrap(out, device)


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
