"""Reverse-mode automatic differentiation over a dynamic graph of Tensors.

Every op computes eagerly when it is called. While gradients are enabled and some input
requires a gradient, the result remembers its op and inputs: that is the graph. ``backward``
walks it once in reverse topological order, sums the partial adjoints of each node, sets
``.grad`` on every node it reaches and then frees the graph (unless asked to keep it).
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
from typing import Any, Iterable, Sequence, TypeVar

import numpy as np

from . import backend_ndarray as nd
from .backend_ndarray import Device, NDArray

Shape = tuple[int, ...]
Axes = int | tuple[int, ...] | None
Adjoint = TypeVar("Adjoint", "Tensor", "TensorTuple")

# ---------------------------------------------------------------------------- grad mode
_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Any:
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, enabled
    try:
        yield
    finally:
        _grad_enabled = previous


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) inside which ops record no graph; nests safely.

    >>> x = Tensor([1.0, 2.0])
    >>> with no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = False

    def __exit__(self, *exc: object) -> None:
        global _grad_enabled
        _grad_enabled = self._previous.pop()


class enable_grad(no_grad):
    """Context manager that turns graph recording back on inside a ``no_grad`` block."""

    def __enter__(self) -> None:
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = True


# ---------------------------------------------------------------------------- ops
class Op:
    """An operation: ``compute`` on NDArrays, ``gradient`` written in Tensor ops."""

    #: False for ops with no derivative (comparisons): their results never require grad.
    differentiable = True

    def __call__(self, *args: Any) -> Any:
        raise NotImplementedError

    def compute(self, *args: Any) -> Any:
        """The forward value from the inputs' NDArrays."""
        raise NotImplementedError

    def gradient(self, out_grad: Any, node: Any) -> Any:
        """The adjoint of each input given the adjoint ``out_grad`` of the output ``node``.

        An entry may be None for an input that needs no gradient."""
        raise NotImplementedError

    def gradient_as_tuple(self, out_grad: Any, node: Any) -> tuple[Any, ...]:
        grads = self.gradient(out_grad, node)
        if isinstance(grads, list):
            grads = tuple(grads)
        elif not isinstance(grads, tuple):
            grads = (grads,)
        return check_adjoints(self, grads, node.inputs)

    def partial_adjoints(self, out_grad: Any, node: Any) -> tuple[Any, ...]:
        """What ``backward`` collects for each input: ``gradient_as_tuple`` unless the op
        defers some work to the summation of adjoints (``TupleElementAdjoint``,
        ``ProductAdjoint``), where many partial adjoints combine more cheaply."""
        return self.gradient_as_tuple(out_grad, node)


def check_adjoints(op: Op, grads: tuple[Any, ...], inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each adjoint has its input's shape, or an error naming the op (a custom op's wrong
    ``gradient`` would otherwise surface much later, in the optimiser). A floating adjoint of
    another floating dtype (a mixed-precision graph) is cast to the input's dtype, so a
    gradient always has its tensor's dtype, as in PyTorch; any other dtype is an error."""
    if len(grads) != len(inputs):
        raise ValueError(f"{type(op).__name__}.gradient returned {len(grads)} adjoint(s) for "
                         f"{len(inputs)} input(s); return one per input (None where there is "
                         f"none)")
    if all(not isinstance(g, Tensor) or (g.shape == x.shape and g.dtype == x.dtype)
           for g, x in zip(grads, inputs)):
        return grads  # the usual case: nothing to fix
    return tuple(_checked_adjoint(op, i, grad, x) for i, (grad, x) in enumerate(zip(grads,
                                                                                     inputs)))


def _checked_adjoint(op: Op, i: int, grad: Any, x: Any) -> Any:
    if grad is not None and not isinstance(grad, Value):
        raise TypeError(f"{type(op).__name__}.gradient returned a {type(grad).__name__} for "
                        f"input {i}; adjoints are Tensors built from needle ops (or None)")
    if not isinstance(grad, Tensor) or (grad.shape == x.shape and grad.dtype == x.dtype):
        return grad
    both_floating = np.issubdtype(grad.dtype, np.floating) and \
        np.issubdtype(x.dtype, np.floating)
    if grad.shape != x.shape or not both_floating:
        raise ValueError(f"{type(op).__name__}.gradient returned an adjoint of shape "
                         f"{grad.shape} and dtype {grad.dtype} for input {i}, which has "
                         f"shape {x.shape} and dtype {x.dtype}; they must match")
    return ops.astype(grad, x.dtype)


def _compute_result(op: Op, data: Any, inputs: Sequence[Value]) -> Any:
    """What ``op.compute`` returned, as an NDArray: numpy arrays and numbers are wrapped on the
    inputs' device; anything else is a clear error naming the op."""
    if isinstance(data, tuple):
        return tuple(_compute_result(op, d, inputs) for d in data)
    if isinstance(data, NDArray):
        return data
    if isinstance(data, (np.ndarray, np.generic, int, float, bool)):
        device = next((x.cached_data.device for x in inputs if isinstance(x, Tensor)), None)
        array = np.asarray(data)
        return NDArray(array, device=device, dtype=array.dtype)
    raise TypeError(f"{type(op).__name__}.compute returned a {type(data).__name__}; compute "
                    f"must return an NDArray (numpy arrays are wrapped)")


def _input_arrays(op: Op, inputs: Sequence[Any]) -> list[Any]:
    """The inputs' arrays, or a clear error when an input is not a Tensor (a number meant
    for the op's constructor, an array meant to be wrapped)."""
    bad = next((i for i, x in enumerate(inputs) if not isinstance(x, Value)), None)
    if bad is not None:
        raise TypeError(f"{type(op).__name__} got a {type(inputs[bad]).__name__} as input {bad}; "
                        f"ops take Tensors: pass numbers to the op's __init__ (as "
                        f"AddScalar(2.0) does) or wrap arrays in ndl.Tensor(...)")
    return [x.cached_data for x in inputs]


class TensorOp(Op):
    """An op whose output is a single Tensor."""

    def __call__(self, *args: Value) -> Tensor:
        return Tensor.make_from_op(self, args)


class TensorTupleOp(Op):
    """An op whose output is a TensorTuple."""

    def __call__(self, *args: Value) -> TensorTuple:
        return TensorTuple.make_from_op(self, args)


class _FreedGraph(Op):
    """Stands in for the op of a node whose graph was freed by ``backward``."""

    def gradient(self, out_grad: Value, node: Value) -> Value:
        raise RuntimeError("trying to backward through a graph a second time: its "
                           "intermediate values were freed by the first backward(); call "
                           "backward(retain_graph=True) the first time, or detach() tensors "
                           "(e.g. a carried hidden state) that start a new graph")


FREED = _FreedGraph()


# ---------------------------------------------------------------------------- values
class Value:
    """A node of the graph: its value, and the op and inputs that produced it."""

    __slots__ = ("op", "inputs", "cached_data", "requires_grad", "grad", "__weakref__")
    op: Op | None
    inputs: tuple[Any, ...]
    cached_data: Any
    requires_grad: bool
    grad: Any

    def realize_cached_data(self) -> Any:
        return self.cached_data

    def is_leaf(self) -> bool:
        return self.op is None

    def _init(self, op: Op | None, inputs: tuple[Value, ...], cached_data: Any,
              requires_grad: bool) -> None:
        self.op = op
        self.inputs = inputs
        self.cached_data = cached_data
        self.requires_grad = requires_grad
        self.grad = None

    @classmethod
    def make_from_op(cls, op: Op, inputs: Sequence[Value]) -> Any:
        """Compute ``op`` on ``inputs`` now; record the edge when a gradient may flow."""
        value = object.__new__(cls)
        try:
            arrays = [x.cached_data for x in inputs]
        except AttributeError:
            arrays = _input_arrays(op, inputs)
        data = op.compute(*arrays)
        value.cached_data = data if type(data) is NDArray else _compute_result(op, data, inputs)
        value.grad = None
        if _grad_enabled and op.differentiable:
            for x in inputs:
                if x.requires_grad:
                    value.op, value.inputs, value.requires_grad = op, tuple(inputs), True
                    return value
        value.op, value.inputs, value.requires_grad = None, (), False
        return value

    @classmethod
    def make_const(cls, data: Any, requires_grad: bool = False) -> Any:
        """A leaf holding ``data`` (no copy)."""
        value = object.__new__(cls)
        value._init(None, (), data, requires_grad)
        return value


class TensorTuple(Value):
    """A tuple of Tensors produced by one op (``split``, ``make_tuple``)."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self.cached_data)

    def __getitem__(self, index: int) -> Tensor:
        if not (_grad_enabled and self.requires_grad):  # nothing to record: skip the op
            return Tensor.make_const(self.cached_data[index])
        return ops.tuple_get_item(self, index)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def tuple(self) -> tuple[Tensor, ...]:
        return tuple(self)

    def __repr__(self) -> str:
        return f"needle.TensorTuple({self.tuple()!r})"

    def __add__(self, other: TensorTuple) -> TensorTuple:
        if len(self) != len(other):
            raise ValueError(f"cannot add TensorTuples of lengths {len(self)} and {len(other)}")
        return ops.make_tuple(*[a + b for a, b in zip(self, other)])

    def detach(self) -> TensorTuple:
        return TensorTuple.make_const(self.cached_data)


class Tensor(Value):
    """An n-dimensional array that records the ops applied to it, for ``backward()``.

    ``Tensor(array, device=None, dtype=None, requires_grad=True)`` takes a list, number,
    numpy array (both copied), NDArray or Tensor (shared when device and dtype match).
    Python numbers and float64 arrays become float32; integer and boolean numpy arrays keep
    their dtype and never require a gradient.
    """

    __slots__ = ()
    __hash__ = Value.__hash__  # identity: Tensors are graph nodes; == is elementwise
    __array_ufunc__ = None  # numpy defers to Tensor's reflected operators

    def __init__(self, array: Any, *, device: Device | None = None, dtype: Any = None,
                 requires_grad: bool = True):
        data = _to_ndarray(array, device, dtype)
        floating = np.issubdtype(data.dtype, np.floating)
        self._init(None, (), data, bool(requires_grad) and floating)

    # ------------------------------------------------------------------ data access
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

    @property
    def data(self) -> Tensor:
        """A detached Tensor sharing this one's values."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor | NDArray | Any) -> None:
        """Replace the values without recording anything (optimiser updates)."""
        new = value.cached_data if isinstance(value, Tensor) else _to_ndarray(value, self.device,
                                                                              self.dtype)
        if new.shape != self.shape:
            raise ValueError(f"cannot assign data of shape {new.shape} to a tensor of "
                             f"shape {self.shape}")
        self.cached_data = new

    def detach(self) -> Tensor:
        """A new leaf sharing this Tensor's values, cut off from the graph."""
        return Tensor.make_const(self.cached_data)

    def numpy(self) -> np.ndarray:
        return self.cached_data.numpy()

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.numpy().item()

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

    # ------------------------------------------------------------------ autograd
    def backward(self, out_grad: Tensor | None = None, *, retain_graph: bool | None = None,
                 create_graph: bool = False, accumulate: bool = False) -> None:
        """Set ``.grad`` on every tensor this one depends on (fresh values, not summed into
        earlier ones). ``out_grad`` defaults to ones for a one-element tensor. The graph is
        freed afterwards unless ``retain_graph`` (default: ``create_graph``); with
        ``create_graph`` the gradients themselves are recorded, for higher derivatives.
        With ``accumulate=True`` the leaves' new gradients are added to the ``.grad`` they
        already hold (PyTorch's behaviour, for gradient accumulation over micro-batches)."""
        if accumulate:
            return self._backward_accumulating(out_grad, retain_graph, create_graph)
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "had requires_grad=True, or it was computed under no_grad()")
        if out_grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward() without out_grad needs a one-element tensor, "
                                   f"got shape {self.shape}; pass out_grad of that shape")
            out_grad = Tensor.make_const(nd.full(self.shape, 1, self.dtype, self.device))
        elif out_grad.shape != self.shape:
            raise ValueError(f"out_grad has shape {out_grad.shape}, expected the output's "
                             f"shape {self.shape}")
        keep = create_graph if retain_graph is None else retain_graph
        compute_gradient_of_variables(self, out_grad, retain_graph=keep,
                                      create_graph=create_graph)

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
        return ops.max(self, _axes(axes, dim), keepdims=_keep(keepdims, keepdim))

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
        return _grad_enabled and any(isinstance(x, Value) and x.requires_grad
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
    dtype already match, anything else is copied. Without a dtype, Python numbers and
    float64 arrays become float32; other numpy dtypes are kept."""
    if isinstance(array, Tensor):
        array = array.cached_data
    if isinstance(array, NDArray):
        if device in (None, array.device) and dtype in (None, array.dtype):
            return array
        return NDArray(array, device=device or array.device, dtype=dtype or array.dtype)
    if dtype is None:
        host = np.asarray(array)
        from_python = not isinstance(array, np.ndarray)
        if host.dtype == np.float64 or (from_python and host.dtype.kind in "iu"):
            dtype = "float32"
        array = host
    return NDArray(array, device=device, dtype=dtype)


# ---------------------------------------------------------------------------- backward
def find_topo_sort(node_list: Iterable[Value]) -> list[Value]:
    """All nodes reachable from ``node_list``, each after its inputs (iterative DFS)."""
    order: list[Value] = []
    visited: set[int] = set()
    for root in node_list:
        stack: list[tuple[Value, bool]] = [(root, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((x, False) for x in reversed(node.inputs) if id(x) not in visited)
    return order


def sum_node_list(node_list: list[Adjoint]) -> Adjoint:
    """The sum of partial adjoints (without a zero start, which would cost an op)."""
    return functools.reduce(operator.add, node_list)


class TupleElementAdjoint:
    """The adjoint that element ``index`` of a TensorTuple received (``tuple_get_item``).

    Summed per element when the tuple's adjoint is assembled, so taking all n elements of
    a ``split`` costs n adjoints, not n tuples of n (mostly zero) arrays."""

    __slots__ = ("index", "value")

    def __init__(self, index: int, value: Value):
        self.index = index
        self.value = value


class ProductAdjoint:
    """A partial adjoint ``a^T @ g`` not multiplied out yet (a MatMul's right operand).

    A weight used at every time step of a recurrent network gets one per step; their sum
    is one product of stacked rows, [a_1; ..; a_n]^T @ [g_1; ..; g_n], which BLAS runs much
    faster than n small products and n - 1 additions."""

    __slots__ = ("a", "g")

    def __init__(self, a: Tensor, g: Tensor):
        self.a = a
        self.g = g

    def value(self) -> Tensor:
        return ops.MatMul(transpose_a=True)(self.a, self.g)


def sum_products(products: list[ProductAdjoint]) -> Value:
    """sum_i a_i^T @ g_i, as one product of concatenations when the factors are matrices."""
    if len(products) == 1 or any(p.a.ndim != 2 for p in products):
        return sum_node_list([p.value() for p in products])
    return ProductAdjoint(ops.concatenate([p.a for p in products], axis=0),
                          ops.concatenate([p.g for p in products], axis=0)).value()


def sum_adjoints(grads: list[Any], node: Value) -> Value:
    """A node's adjoint: the sum of its partial adjoints. Deferred products are summed as
    one product; for a TensorTuple, element adjoints are summed per element and elements
    that received none get zeros."""
    if len(grads) == 1 and isinstance(grads[0], Value):
        return grads[0]  # the common case: one adjoint, nothing to sum
    if any(isinstance(g, TupleElementAdjoint) for g in grads):
        return _tuple_adjoint(grads, node)
    products = [g for g in grads if isinstance(g, ProductAdjoint)]
    if products:
        grads = [g for g in grads if not isinstance(g, ProductAdjoint)]
        grads.append(sum_products(products))
    return grads[0] if len(grads) == 1 else sum_node_list(grads)


def _tuple_adjoint(grads: list[Any], node: Value) -> Value:
    parts: list[list[Any]] = [[] for _ in node.cached_data]
    for grad in grads:
        if isinstance(grad, TupleElementAdjoint):
            parts[grad.index].append(grad.value)
        else:
            for part, element in zip(parts, grad):
                part.append(element)
    elements: list[Any] = [sum_node_list(part) if part else
                           Tensor.make_const(nd.full(x.shape, 0, x.dtype, x.device))
                           for part, x in zip(parts, node.cached_data)]
    return ops.make_tuple(*elements)


def compute_gradient_of_variables(output_tensor: Value, out_grad: Value, *,
                                  retain_graph: bool = True, create_graph: bool = False) -> None:
    """Set ``.grad`` on every node reaching ``output_tensor``, summing all contributions."""
    topo_order = find_topo_sort([output_tensor])
    node_to_grads: dict[int, list[Any]] = {id(output_tensor): [out_grad]}
    with _grad_mode(create_graph):
        for node in reversed(topo_order):
            grads = node_to_grads.pop(id(node), None)
            if grads is None:
                continue
            node.grad = sum_adjoints(grads, node)
            if node.op is None:
                continue
            for x, grad in zip(node.inputs, node.op.partial_adjoints(node.grad, node)):
                if grad is not None and x.requires_grad:
                    node_to_grads.setdefault(id(x), []).append(grad)
    if not retain_graph:
        for node in topo_order:
            if node.op is not None:
                node.op, node.inputs = FREED, ()


from . import ops  # noqa: E402  (ops are built on Tensor, defined above)
