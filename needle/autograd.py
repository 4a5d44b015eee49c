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
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from . import backend_ndarray as nd
from .backend_ndarray import Device, NDArray
from . import grad_mode, op_checks, tensor_methods
from .grad_mode import _freeing_graph, _grad_mode, enable_grad, is_grad_enabled, no_grad
from .reference import is_reference_mode
from .op_checks import _compute_result, _input_arrays, check_adjoints
from .tensor_methods import TensorMethods, _to_ndarray


# ---------------------------------------------------------------------------- tracing
#: The active ``needle.tracing.Tracer`` (anomaly detection, the profiler), or None. When
#: None, tracing costs one ``is None`` test per op and per backward step, nothing else.
_tracer: Any = None
_NOT_TRACED = contextlib.nullcontext()


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
        needle course's gradient checks expect; each checked against its input."""
        grads = as_tuple(self.gradient(out_grad, node))
        return check_adjoints(self, tuple(g.value(x) if isinstance(g, DeferredAdjoint) else g
                                          for g, x in zip(grads, node.inputs)), node.inputs)


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
#: The number of live Values (Tensors and TensorTuples): course code checks it for leaks.
TENSOR_COUNTER = 0


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

    def __del__(self) -> None:
        global TENSOR_COUNTER
        if TENSOR_COUNTER is not None:  # None while the interpreter tears the module down
            TENSOR_COUNTER -= 1

    def realize_cached_data(self) -> Any:
        return self.cached_data

    def is_leaf(self) -> bool:
        return self.op is None

    def _init(self, op: Op | None, inputs: tuple[Value, ...], cached_data: Any,
              requires_grad: bool) -> None:
        global TENSOR_COUNTER
        TENSOR_COUNTER += 1
        self.op = op
        self.inputs = inputs
        self.cached_data = cached_data
        self.saved = None
        self.requires_grad = requires_grad
        self.grad = None

    @classmethod
    def make_from_op(cls, op: Op, inputs: Sequence[Value]) -> Any:
        """Compute ``op`` on ``inputs`` now; record the edge when a gradient may flow."""
        global TENSOR_COUNTER
        try:
            arrays = [x.cached_data for x in inputs]
        except AttributeError:
            arrays = _input_arrays(op, inputs)
        value = object.__new__(cls)
        TENSOR_COUNTER += 1
        value.saved = value.grad = None
        if _tracer is None:
            data = op.compute(*arrays)
            if op.saves:
                data, value.saved = data
        else:
            _tracer.forward(op, inputs, value)  # computes value.cached_data, and observes
            data = value.cached_data
        value.cached_data = data if type(data) is NDArray else _compute_result(op, data, inputs)
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
    Python numbers and lists become float32; a numpy array keeps its dtype (float64 stays
    float64, as with ``torch.tensor``); integer and boolean tensors never require a gradient.
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

    # ------------------------------------------------------------------ autograd
    def backward(self, out_grad: Tensor | None = None, *, retain_graph: bool | None = None,
                 create_graph: bool = False, accumulate: bool = False) -> None:
        """Set ``.grad`` on every tensor this one depends on (fresh values, not summed into
        earlier ones). ``out_grad`` defaults to ones of this tensor's shape. The graph is
        freed afterwards unless ``retain_graph`` (default: ``create_graph``); with
        ``create_graph`` the gradients themselves are recorded, for higher derivatives.
        With ``accumulate=True`` the leaves' new gradients are added to the ``.grad`` they
        already hold (PyTorch's behaviour, for gradient accumulation over micro-batches)."""
        if accumulate:
            return self._backward_accumulating(out_grad, retain_graph, create_graph)
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad: no input "
                               "had requires_grad=True, or it was computed under no_grad()")
        if out_grad is None:  # the contract: ones of the output's shape, for any shape
            out_grad = Tensor.make_const(nd.full(self.shape, 1, self.dtype, self.device))
        elif out_grad.shape != self.shape:
            raise ValueError(f"out_grad has shape {out_grad.shape}, expected the output's "
                             f"shape {self.shape}")
        keep = create_graph if retain_graph is None else retain_graph
        compute_gradient_of_variables(self, out_grad, retain_graph=keep,
                                      create_graph=create_graph)


# ---------------------------------------------------------------------------- backward
def find_topo_sort(node_list: Iterable[Value]) -> list[Value]:
    """All nodes reachable from ``node_list``, each after its inputs: a depth-first search,
    first input first, without recursion (a long graph is deeper than Python's stack). The
    stack holds each open node with an iterator over its inputs, so a node is pushed once
    and finished when its iterator runs out (MLP-ResNet's 52 nodes: 46 -> 19 µs against
    pushing a node per input edge and a second time to finish it)."""
    order: list[Value] = []
    visited: set[int] = set()
    for root in node_list:
        if id(root) in visited:
            continue
        visited.add(id(root))
        stack: list[tuple[Value, Iterator[Value]]] = [(root, iter(root.inputs))]
        while stack:
            node, inputs = stack[-1]
            for x in inputs:
                if id(x) not in visited:  # go down to it; the rest of node's inputs wait
                    visited.add(id(x))
                    stack.append((x, iter(x.inputs)))
                    break
            else:  # every input is done
                stack.pop()
                order.append(node)
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
    if len(node_list) == 1 and isinstance(node_list[0], Value):
        return node_list[0]  # the usual case: one consumer
    deferred = next((g for g in node_list if isinstance(g, DeferredAdjoint)), None)
    if deferred is not None and node is not None:
        if not is_reference_mode():
            return type(deferred).combine(node_list, node)
        node_list = [g.value(node) if isinstance(g, DeferredAdjoint) else g for g in node_list]
    return functools.reduce(operator.add, node_list)


def compute_gradient_of_variables(output_tensor: Value, out_grad: Value, *,
                                  retain_graph: bool = True, create_graph: bool = False) -> None:
    """Set ``.grad`` on every node reaching ``output_tensor``, summing all contributions."""
    reverse_topo_order = list(reversed(find_topo_sort([output_tensor])))
    node_to_output_grads: dict[Value, list[Any]] = {output_tensor: [out_grad]}
    with _grad_mode(create_graph), _freeing_graph(not retain_graph), \
            _NOT_TRACED if _tracer is None else _tracer.backward_pass():
        for node in reverse_topo_order:
            partial_adjoints = node_to_output_grads.pop(node, None)
            if partial_adjoints is None:  # no path from this node to the output
                continue
            node.grad = sum_node_list(partial_adjoints, node)
            if node.op is None:
                continue
            grads = check_adjoints(node.op, as_tuple(node.op.gradient(node.grad, node)),
                                   node.inputs)
            if _tracer is not None:
                _tracer.adjoints(node, grads)
            for x, grad in zip(node.inputs, grads):
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
# and what its in-place updates build on (tensor_methods cannot import this module)
tensor_methods.Tensor, tensor_methods.Value = Tensor, Value  # type: ignore[misc]
tensor_methods.find_topo_sort = find_topo_sort  # type: ignore[assignment]
op_checks.Tensor, op_checks.Value = Tensor, Value  # type: ignore[misc]
op_checks.DeferredAdjoint = DeferredAdjoint  # type: ignore[misc]
