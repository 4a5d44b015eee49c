"""Reverse-mode automatic differentiation over a dynamic graph of Tensors.

Every op computes eagerly when it is called. While gradients are enabled and some input
requires a gradient, the result remembers its op and inputs: that is the graph. ``backward``
walks it once in reverse topological order, sums the partial adjoints of each node, sets
``.grad`` on every node it reaches and then frees the graph (unless asked to keep it).
"""

from __future__ import annotations

import contextlib
import functools
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


# ---------------------------------------------------------------------------- tracing
#: The active ``needle.tracing.Tracer`` (anomaly detection, the profiler), or None. When
#: None, tracing costs one ``is None`` test per op and per backward step, nothing else.
_tracer: Any = None
_NOT_TRACED = contextlib.nullcontext()


def _backward_scope() -> Any:
    """The active tracer's context for one backward pass (a no-op without a tracer)."""
    return _NOT_TRACED if _tracer is None else _tracer.backward_pass()


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
        if isinstance(grads, tuple):
            return grads
        if isinstance(grads, list):
            return tuple(grads)
        return (grads,)

    def partial_adjoints(self, out_grad: Any, node: Any) -> tuple[Any, ...]:
        """What ``backward`` collects for each input: ``gradient_as_tuple`` unless the op
        defers some work to the summation of adjoints (``TupleElementAdjoint``,
        ``ProductAdjoint``), where many partial adjoints combine more cheaply."""
        return self.gradient_as_tuple(out_grad, node)


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
        if _tracer is None:
            value.cached_data = op.compute(*[x.cached_data for x in inputs])
        else:
            _tracer.forward(op, inputs, value)  # computes value.cached_data, and observes
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

    def to(self, device: Device) -> Tensor:
        """This Tensor's values on ``device`` (a new leaf unless already there)."""
        if device is self.device:
            return self
        return Tensor.make_const(self.cached_data.to(device), self.requires_grad)

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
                 create_graph: bool = False) -> None:
        """Set ``.grad`` on every tensor this one depends on (fresh values, not summed into
        earlier ones). ``out_grad`` defaults to ones for a one-element tensor. The graph is
        freed afterwards unless ``retain_graph`` (default: ``create_graph``); with
        ``create_graph`` the gradients themselves are recorded, for higher derivatives."""
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
    def sum(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.summation(self, axes, keepdims=keepdims)

    def mean(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axes, keepdims=keepdims)

    def max(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axes, keepdims=keepdims)

    def logsumexp(self, axes: Axes = None) -> Tensor:
        return ops.logsumexp(self, axes)

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                           else shape)

    def broadcast_to(self, shape: Shape) -> Tensor:
        return ops.broadcast_to(self, shape)

    def transpose(self, axes: tuple[int, int] | None = None) -> Tensor:
        return ops.transpose(self, axes)

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
    with _grad_mode(create_graph), _backward_scope():
        for node in reversed(topo_order):
            grads = node_to_grads.pop(id(node), None)
            if grads is None:
                continue
            node.grad = sum_adjoints(grads, node)
            if node.op is None:
                continue
            partials = node.op.partial_adjoints(node.grad, node)
            if _tracer is not None:
                _tracer.adjoints(node, partials)
            for x, grad in zip(node.inputs, partials):
                if grad is not None and x.requires_grad:
                    node_to_grads.setdefault(id(x), []).append(grad)
    if not retain_graph:
        for node in topo_order:
            if node.op is not None:
                node.op, node.inputs = FREED, ()


from . import ops  # noqa: E402  (ops are built on Tensor, defined above)
