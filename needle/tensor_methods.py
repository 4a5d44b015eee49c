# mypy: disable-error-code="arg-type, misc, return-value, attr-defined, list-item"
# (the methods hand ``self``, a Tensor at run time, to ops typed for Tensor)
"""What makes a Tensor feel like an array: its shape and dtype, conversions, Python's
operators and the numpy-style methods. Each operator and method is one function of
``needle.ops`` (bound by ``autograd`` once the ops, which build on Tensor, exist)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import backend_ndarray as nd
from . import grad_mode
from .backend_ndarray import Axes, Device, NDArray, Shape
from .grad_mode import _grad_mode, no_grad

if TYPE_CHECKING:
    from . import ops
    from .autograd import Tensor, Value, find_topo_sort


class TensorMethods:
    """Array behaviour shared by every Tensor (a mixin over ``cached_data``)."""

    __slots__ = ()
    cached_data: Any
    requires_grad: bool
    op: Any
    inputs: tuple[Any, ...]

    @property
    def shape(self) -> Shape:
        return self.cached_data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.cached_data.dtype

    @property
    def device(self) -> Device:
        return self.cached_data.device

    @property
    def ndim(self) -> int:
        return self.cached_data.ndim

    @property
    def size(self) -> int:
        return self.cached_data.size

    def numpy(self) -> np.ndarray:
        return self.cached_data.numpy()

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.numpy().item()

    def __dlpack__(self, **kwargs: Any) -> Any:
        """DLPack export of the values (shared memory): ``torch.from_dlpack(tensor)``."""
        return self.cached_data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.cached_data.__dlpack_device__()

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"needle.Tensor({self.numpy()!r}{grad})"

    def __str__(self) -> str:
        return str(self.numpy())

    @property
    def data(self) -> Tensor:
        """A detached Tensor sharing this one's values."""
        return self.detach()

    @data.setter
    def data(self, value: Any) -> None:
        """Replace the values without recording anything (optimiser updates); the tensor
        takes the new value's shape, as in PyTorch and the needle course."""
        self.cached_data = value.cached_data if isinstance(value, Tensor) else \
            _to_ndarray(value, self.device, self.dtype)

    def detach(self) -> Tensor:
        """A new leaf sharing this Tensor's values, cut off from the graph."""
        return Tensor.make_const(self.cached_data)

    def to(self, device: Device | str | Any = None, dtype: Any = None) -> Tensor:
        """This Tensor on ``device`` (a Device, "cpu" or "cuda"; a new leaf unless already
        there) and/or in ``dtype``; ``to(dtype)`` alone converts like ``astype``."""
        if device is not None and not isinstance(device, Device) and not _is_device_name(device):
            device, dtype = None, device  # to(dtype)
        out = self if dtype is None else self.astype(dtype)
        target = _device_named(device) if isinstance(device, str) else device
        if target is None or target is out.device:
            return out
        return Tensor.make_const(out.cached_data.to(target), out.requires_grad)

    # ------------------------------------------------------------------ operators
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.multiply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tensor:
        return ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.divide(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.power(other, self)

    def __neg__(self) -> Tensor:
        return ops.negate(self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.not_equal(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.greater_equal(self, other)

    def __invert__(self) -> Tensor:
        return ops.logical_not(self)

    # ------------------------------------------------------------------ methods
    # ``dim=`` and ``keepdim=`` are PyTorch's names for ``axes=`` and ``keepdims=``.
    def sum(self, axes: Axes = None, keepdims: bool = False, *, dim: Axes = None,
            keepdim: bool | None = None) -> Tensor:
        return ops.summation(self, _axes(axes, dim), keepdims=_keep(keepdims, keepdim))

    def mean(self, axes: Axes = None, keepdims: bool = False, *, dim: Axes = None,
             keepdim: bool | None = None) -> Tensor:
        return ops.mean(self, _axes(axes, dim), keepdims=_keep(keepdims, keepdim))

    def max(self, axes: Axes = None, keepdims: bool = False, *, dim: Axes = None,
            keepdim: bool | None = None) -> Tensor:
        """The maximum values (only the values, as in the course; argmax gives indices)."""
        return ops.amax(self, _axes(axes, dim), keepdims=_keep(keepdims, keepdim))

    def logsumexp(self, axes: Axes = None, keepdims: bool = False, *, dim: Axes = None,
                  keepdim: bool | None = None) -> Tensor:
        axes = _axes(axes, dim)
        out = ops.logsumexp(self, axes)
        if not _keep(keepdims, keepdim):
            return out
        return ops.reshape(out, ops.keepdims_shape(self.shape, axes))

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                           else shape)

    def broadcast_to(self, shape: Shape) -> Tensor:
        return ops.broadcast_to(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        """Swap the last two axes, or ``axes=(i, j)``; ``transpose(i, j)`` as in PyTorch."""
        pair = axes[0] if len(axes) == 1 else tuple(axes) if axes else None
        return ops.transpose(self, pair)

    def permute(self, *axes: Any) -> Tensor:
        return ops.permute(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int)
                           else axes)

    @property
    def T(self) -> Tensor:
        """All axes reversed (numpy's and PyTorch's ``.T``)."""
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    def matmul(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def flip(self, axes: Axes) -> Tensor:
        return ops.flip(self, axes)

    # ------------------------------------------------------------------ PyTorch idioms
    # Names and keywords a PyTorch user reaches for; each is a composition of needle's ops.
    def view(self, *shape: Any) -> Tensor:
        return self.reshape(*shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """A size-1 axis inserted at ``dim`` (counted in the result, as PyTorch)."""
        dim = dim + self.ndim + 1 if dim < 0 else dim
        return ops.reshape(self, self.shape[:dim] + (1,) + self.shape[dim:])

    def squeeze(self, dim: int | None = None) -> Tensor:
        """Size-1 axes removed: all of them, or ``dim`` only when it has size 1."""
        dims = [d for d in range(self.ndim) if self.shape[d] == 1] if dim is None else             [dim % self.ndim] if self.shape[dim] == 1 else []
        return ops.reshape(self, tuple(n for d, n in enumerate(self.shape) if d not in dims))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Axes ``start_dim`` .. ``end_dim`` (inclusive) merged into one."""
        if self.ndim == 0:
            return ops.reshape(self, (1,))
        start, end = start_dim % self.ndim, end_dim % self.ndim
        merged = math.prod(self.shape[start:end + 1])
        return ops.reshape(self, self.shape[:start] + (merged,) + self.shape[end + 1:])

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast to ``sizes``; -1 keeps an axis, new axes may lead (PyTorch's expand)."""
        sizes = tuple(sizes[0]) if len(sizes) == 1 and not isinstance(sizes[0], int) else sizes
        lead = len(sizes) - self.ndim
        shape = tuple(self.shape[i - lead] if n == -1 else n for i, n in enumerate(sizes))
        return ops.broadcast_to(self, shape)

    def clone(self) -> Tensor:
        """A copy with its own storage; the gradient flows back unchanged."""
        return ops.mul_scalar(self, 1)

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def numel(self) -> int:
        return self.size

    def dim(self) -> int:
        return self.ndim

    def abs(self) -> Tensor:
        """|x| = x sign(x); the gradient sign(x) is 0 at 0, as PyTorch's."""
        a = self.cached_data
        sign = (a > 0).astype(a.dtype) - (a < 0).astype(a.dtype)
        return self * Tensor.make_const(sign)

    __abs__ = abs

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (torch's names)
        """Values limited to [min, max]; the gradient is 1 inside, bounds included."""
        out = self
        if min is not None:
            out = ops.where(out < min, min, out)
        if max is not None:
            out = ops.where(out > max, max, out)
        return out

    clip = clamp

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmin(self, dim, keepdim)

    def softmax(self, dim: int = -1) -> Tensor:
        return ops.softmax(self, dim)

    def log_softmax(self, dim: int = -1) -> Tensor:
        return ops.logsoftmax(self, dim)

    def multinomial(self, num_samples: int = 1, replacement: bool = False) -> Tensor:
        return ops.multinomial(self, num_samples, replacement)

    def astype(self, dtype: Any) -> Tensor:
        """This tensor in ``dtype``: differentiable to floating dtypes; integer and boolean
        results are constants (they cannot carry a gradient)."""
        if np.issubdtype(np.dtype(dtype), np.floating):
            return ops.astype(self, np.dtype(dtype))
        return ops.astype(self.detach(), np.dtype(dtype))

    def float(self) -> Tensor:
        return self.astype("float32")

    def double(self) -> Tensor:
        return self.astype("float64")

    def half(self) -> Tensor:
        return self.astype("float16")

    def long(self) -> Tensor:
        return self.astype("int64")

    def int(self) -> Tensor:
        return self.astype("int32")

    def cpu(self) -> Tensor:
        return self.to(nd.cpu())

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (leaves only, floating dtypes only, as PyTorch)."""
        if not self.is_leaf():
            raise RuntimeError("you can only change requires_grad flags of leaf variables; "
                               "use detach() for a copy cut off from the graph")
        if requires_grad and not np.issubdtype(self.dtype, np.floating):
            raise RuntimeError(f"only Tensors of floating point dtype can require gradients, "
                               f"got {self.dtype}")
        self.requires_grad = bool(requires_grad)
        return self

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``np.asarray(tensor)``: the values (shared on the CPU unless a copy is asked)."""
        array = self.numpy()
        return array.astype(dtype or array.dtype, copy=bool(copy))

    # ------------------------------------------------------------------ in-place updates
    # Under no_grad (or when nothing needs a gradient) the new values are written into this
    # tensor's storage, so views and .data share them. While recording, a leaf that requires
    # grad refuses (PyTorch's error); any other tensor becomes the new node of the graph.
    def __iadd__(self, other: Any) -> Tensor:
        return self._inplace(lambda t: t + other, other)

    def __isub__(self, other: Any) -> Tensor:
        return self._inplace(lambda t: t - other, other)

    def __imul__(self, other: Any) -> Tensor:
        return self._inplace(lambda t: t * other, other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self._inplace(lambda t: t / other, other)

    def add_(self, other: Any) -> Tensor:
        return self.__iadd__(other)

    def sub_(self, other: Any) -> Tensor:
        return self.__isub__(other)

    def mul_(self, other: Any) -> Tensor:
        return self.__imul__(other)

    def div_(self, other: Any) -> Tensor:
        return self.__itruediv__(other)

    def fill_(self, value: Any) -> Tensor:
        return self._inplace(lambda t: ops.where(_all_true(t), value, t), value)

    def zero_(self) -> Tensor:
        return self.fill_(0.0)

    def copy_(self, src: Any) -> Tensor:
        """Values of ``src`` (broadcast, cast to this dtype, moved to this device)."""
        if isinstance(src, Tensor) and src.device is not self.device:
            src = src.to(self.device)
        elif not isinstance(src, Tensor):
            src = Tensor(np.asarray(src), device=self.device, dtype=self.dtype,
                         requires_grad=False)
        return self._inplace(lambda t: ops.where(_all_true(t), src, t), src)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002
        return self._inplace(lambda t: t.clamp(min, max), min, max)

    def __setitem__(self, index: Any, value: Any) -> None:
        """``x[index] = value`` (ints, slices, masks, integer arrays; value broadcast)."""
        if not self._records_inplace(value):
            target = value.cached_data if isinstance(value, Tensor) else value
            if not _writeable(self.cached_data):
                self.cached_data = self.cached_data.compact() + 0
            self.cached_data[_array_index(index)] = target
            return
        self._inplace(lambda t: ops.setitem(t, index, value), value)

    def _records_inplace(self, *operands: Any) -> bool:
        """Whether an in-place change of this tensor by ``operands`` enters the graph."""
        return grad_mode.enabled and any(isinstance(x, Value) and x.requires_grad
                                     for x in (self,) + operands)

    def _inplace(self, compute: Any, *operands: Any) -> Tensor:
        """This tensor's values replaced by ``compute(self)``: see the section comment."""
        if not self._records_inplace(*operands):
            with no_grad():
                self._write(compute(self).cached_data)
            return self
        if self.is_leaf() and self.requires_grad:
            raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                               "operation. Update it under `with ndl.no_grad():` or through "
                               ".data (see docs/compat.md)")
        old = object.__new__(Tensor)
        old._init(self.op, self.inputs, self.cached_data, self.requires_grad)
        new = compute(old)
        _check_inplace_shape(self.shape, new.shape)
        if new.dtype != self.dtype:
            new = ops.astype(new, self.dtype)
        self.op, self.inputs, self.cached_data = new.op, new.inputs, new.cached_data
        self.requires_grad = new.requires_grad
        return self

    def _write(self, value: NDArray) -> None:
        """Write ``value`` into this tensor's storage (a fresh one if it is read-only)."""
        _check_inplace_shape(self.shape, value.shape)
        if _writeable(self.cached_data):
            self.cached_data[...] = value
        else:  # a broadcast view shares one element among many positions: copy first
            self.cached_data = value.astype(self.dtype).compact()

    def _backward_accumulating(self, out_grad: Tensor | None, retain_graph: bool | None,
                               create_graph: bool) -> None:
        """``backward`` that adds the new gradients of leaves into their existing ``.grad``."""
        leaves = [node for node in find_topo_sort([self]) if node.op is None]
        earlier = [(leaf, leaf.grad) for leaf in leaves if leaf.grad is not None]
        self.backward(out_grad, retain_graph=retain_graph, create_graph=create_graph)
        with _grad_mode(create_graph):
            for leaf, grad in earlier:
                leaf.grad = grad if leaf.grad is None else grad + leaf.grad

def _writeable(array: NDArray) -> bool:
    """False for a read-only view (numpy's broadcast views); CuPy arrays are writeable."""
    return bool(getattr(array._array.flags, "writeable", True))


def _all_true(t: Tensor) -> Tensor:
    return Tensor.make_const(nd.full(t.shape, True, "bool", t.device))


def _array_index(index: Any) -> Any:
    """An index with its Tensors replaced by their NDArrays (for ``NDArray.__setitem__``)."""
    if isinstance(index, tuple):
        return tuple(i.cached_data if isinstance(i, Tensor) else i for i in index)
    return index.cached_data if isinstance(index, Tensor) else index


def _check_inplace_shape(shape: Shape, result: Shape) -> None:
    if tuple(result) != tuple(shape):
        raise RuntimeError(f"output with shape {list(shape)} doesn't match the broadcast shape "
                           f"{list(result)} (an in-place op cannot change a tensor's shape)")


def _axes(axes: Axes, dim: Axes) -> Axes:
    if dim is not None and axes is not None:
        raise TypeError(f"got both axes={axes!r} and dim={dim!r}: they name one argument")
    return axes if dim is None else dim


def _keep(keepdims: bool, keepdim: bool | None) -> bool:
    return keepdims if keepdim is None else keepdim


def _is_device_name(name: Any) -> bool:
    return isinstance(name, str) and name.split(":")[0] in ("cpu", "cuda", "cpu_numpy")


def _device_named(name: str) -> Device:
    """The device called ``name`` ("cpu", "cuda"), or a clear error when it is unavailable."""
    device = {"cpu": nd.cpu, "cuda": nd.cuda, "cpu_numpy": nd.cpu_numpy}[name.split(":")[0]]()
    if not device.enabled():
        raise RuntimeError(f"device {name!r} is not available here (needle.cuda() needs CuPy "
                           f"and a GPU); available: {nd.all_devices()}")
    return device


def _to_ndarray(array: Any, device: Device | None, dtype: Any) -> NDArray:
    """``array`` as an NDArray on ``device``: NDArrays and Tensors are shared when device and
    dtype already match, anything else is copied. Without a dtype, Python numbers and lists
    become float32 (integers too); numpy arrays and numbers keep their dtype."""
    if isinstance(array, Tensor):
        array = array.cached_data
    if isinstance(array, NDArray):
        if device in (None, array.device) and dtype in (None, array.dtype):
            return array
        return NDArray(array, device=device or array.device, dtype=dtype or array.dtype)
    if dtype is None:
        host = np.asarray(array)
        from_numpy = isinstance(array, (np.ndarray, np.generic))
        dtype = host.dtype if from_numpy or host.dtype.kind not in "iuf" else "float32"
        array = host
    return NDArray(array, device=device, dtype=dtype)
