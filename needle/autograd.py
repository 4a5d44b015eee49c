"""Reverse-mode automatic differentiation over a dynamic graph of Tensors.

Every op computes eagerly when it is called. While gradients are enabled and some input
requires a gradient, the result remembers its op and inputs: that is the graph. ``backward``
walks it once in reverse topological order, sums the partial adjoints of each node, sets
``.grad`` on every node it reaches and then frees the graph (unless asked to keep it).
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Iterable, Sequence

import numpy as np

from . import backend_ndarray as nd
from .backend_ndarray import Axes, Device, NDArray, Shape
from . import grad_mode, tensor_methods
from .grad_mode import _grad_mode, enable_grad, is_grad_enabled, no_grad
from .reference import is_reference_mode
from .tensor_methods import TensorMethods


# ---------------------------------------------------------------------------- ops
class Op:
    """An operation: ``compute`` on NDArrays, ``gradient`` written in Tensor ops."""

    #: False for ops with no derivative (comparisons): their results never require grad.
    differentiable = True
    #: True for an op whose ``compute`` returns ``(value, saved)``: ``saved`` is what its
    #: ``gradient`` needs from the forward pass (an im2col matrix, softmax probabilities),
    #: kept on the output node as ``node.saved``, so one op instance can be called again.
    saves = False

    def __call__(self, *args: Any) -> Any:
        raise NotImplementedError

    def compute(self, *args: Any) -> Any:
        """The forward value from the inputs' NDArrays."""
        raise NotImplementedError

    def gradient(self, out_grad: Any, node: Any) -> Any:
        """The adjoint of each input given the adjoint ``out_grad`` of the output ``node``.

        An entry may be None for an input that needs no gradient, or a ``DeferredAdjoint``
        that ``backward`` sums with the others of its kind."""
        raise NotImplementedError

    def gradient_as_tuple(self, out_grad: Any, node: Any) -> tuple[Any, ...]:
        """``gradient`` as a tuple of plain Values (deferred adjoints computed), as the
        needle course's gradient checks expect."""
        grads = as_tuple(self.gradient(out_grad, node))
        return tuple(g.value(x) if isinstance(g, DeferredAdjoint) else g
                     for g, x in zip(grads, node.inputs))


def as_tuple(grads: Any) -> tuple[Any, ...]:
    """An op's ``gradient`` result as a tuple, one entry per input."""
    if isinstance(grads, tuple):
        return grads
    return tuple(grads) if isinstance(grads, list) else (grads,)


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

    __slots__ = ("op", "inputs", "cached_data", "saved", "requires_grad", "grad",
                 "__weakref__")
    op: Op | None
    inputs: tuple[Any, ...]
    cached_data: Any
    saved: Any  # what the op's gradient needs from its forward pass (``Op.saves``)
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
        self.saved = None
        self.requires_grad = requires_grad
        self.grad = None

    @classmethod
    def make_from_op(cls, op: Op, inputs: Sequence[Value]) -> Any:
        """Compute ``op`` on ``inputs`` now; record the edge when a gradient may flow."""
        value = object.__new__(cls)
        value.cached_data = op.compute(*[x.cached_data for x in inputs])
        value.saved = value.grad = None
        if op.saves:
            value.cached_data, value.saved = value.cached_data
        if grad_mode.enabled and op.differentiable:
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
        if not (grad_mode.enabled and self.requires_grad):  # nothing to record: skip the op
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


class Tensor(TensorMethods, Value):
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
        if data.dtype.kind not in "biuf":
            raise TypeError(f"Tensor: unsupported dtype {data.dtype} (needle holds booleans, "
                            f"integers and floats)")
        floating = np.issubdtype(data.dtype, np.floating)
        self._init(None, (), data, bool(requires_grad) and floating)

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

    def to(self, device: Device) -> Tensor:
        """This Tensor's values on ``device`` (a new leaf unless already there)."""
        if device is self.device:
            return self
        return Tensor.make_const(self.cached_data.to(device), self.requires_grad)

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


class DeferredAdjoint:
    """A partial adjoint that an op's ``gradient`` hands back without computing it yet,
    because many of its kind add up more cheaply together (see ``ops/matmul.py`` and
    ``ops/tuple.py``). ``backward`` sums a node's list of partial adjoints that holds one
    with ``type(item).combine(items, node)``, or in reference mode adds ``value(node)``."""

    def value(self, node: Value) -> Value:
        """This partial adjoint alone, as a plain Tensor (or TensorTuple) of node's shape."""
        raise NotImplementedError

    @classmethod
    def combine(cls, items: list[Any], node: Value) -> Value:
        """The sum of ``items`` (adjoints of ``cls`` and plain Values) for ``node``."""
        return sum_node_list([x.value(node) if isinstance(x, cls) else x for x in items])


def sum_node_list(node_list: list[Any], node: Value | None = None) -> Any:
    """The sum of a node's partial adjoints, added in order (no zero start, which would
    cost an op). Deferred adjoints are combined by their kind, or plainly in reference mode."""
    if len(node_list) > 1 or not isinstance(node_list[0], Value):
        deferred = next((g for g in node_list if isinstance(g, DeferredAdjoint)), None)
        if deferred is not None and node is not None:
            if not is_reference_mode():
                return type(deferred).combine(node_list, node)
            node_list = [g.value(node) if isinstance(g, DeferredAdjoint) else g
                         for g in node_list]
    return functools.reduce(operator.add, node_list)


def compute_gradient_of_variables(output_tensor: Value, out_grad: Value, *,
                                  retain_graph: bool = True, create_graph: bool = False) -> None:
    """Set ``.grad`` on every node reaching ``output_tensor``, summing all contributions."""
    reverse_topo_order = list(reversed(find_topo_sort([output_tensor])))
    node_to_output_grads: dict[Value, list[Any]] = {output_tensor: [out_grad]}
    with _grad_mode(create_graph):
        for node in reverse_topo_order:
            partial_adjoints = node_to_output_grads.pop(node, None)
            if partial_adjoints is None:  # no path from this node to the output
                continue
            node.grad = sum_node_list(partial_adjoints, node)
            if node.op is None:
                continue
            for x, grad in zip(node.inputs, as_tuple(node.op.gradient(node.grad, node))):
                if grad is not None and x.requires_grad:
                    node_to_output_grads.setdefault(x, []).append(grad)
    if not retain_graph:
        free_graph(reverse_topo_order)


def free_graph(nodes: Iterable[Value]) -> None:
    """Drop the ops, inputs and saved values of ``nodes``: the graph's memory goes back."""
    for node in nodes:
        if node.op is not None:
            node.op, node.inputs, node.saved = FREED, (), None


from . import ops  # noqa: E402  (ops are built on Tensor, defined above)

tensor_methods.ops = ops  # what Tensor's operators and methods call
