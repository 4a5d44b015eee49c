"""Tracing: one forward pass of a model, with every op it ran and the modules that have an
ONNX rule of their own.

The forward runs eagerly as always; while tracing, each value an op makes is kept with its
op and inputs (also for values the autograd graph would not record, such as comparisons or
products of constants), and the output of each module listed in ``MODULE_RULES`` is kept
with the module and its arguments. A value is *dynamic* when it depends on a model input;
every other value is a constant of the exported graph.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from ..autograd import Op, Tensor, TensorTuple, Value, enable_grad
from ..nn import Module


@dataclass
class Trace:
    """What one forward pass computed: inputs, outputs, producers, module calls."""

    inputs: list[Tensor]
    outputs: list[Value]
    #: id(value) -> (op, inputs) for every value an op made, in the order they were made
    producers: dict[int, tuple[Op, tuple[Value, ...]]] = field(default_factory=dict)
    #: id(output) -> (module, args) for the calls of modules with their own rule
    module_calls: dict[int, tuple[Module, tuple[Any, ...]]] = field(default_factory=dict)
    values: dict[int, Value] = field(default_factory=dict)  # keeps every value alive
    dynamic: set[int] = field(default_factory=set)

    def sources(self, value: Value) -> tuple[Any, ...]:
        """The values ``value`` is exported from: a module call's arguments, or its op's
        inputs."""
        key = id(value)
        if key in self.module_calls:
            return self.module_calls[key][1]
        return self.producers[key][1] if key in self.producers else ()

    def needed(self) -> list[Value]:
        """The dynamic values the outputs need, each after its sources (iterative DFS);
        the ops inside a module call with its own rule are not needed."""
        done = {id(x) for x in self.inputs}
        order: list[Value] = []
        stack: list[tuple[Value, bool]] = [(y, False) for y in reversed(self.outputs)]
        while stack:
            value, sources_done = stack.pop()
            if sources_done:
                order.append(value)
                continue
            if id(value) in done or id(value) not in self.dynamic:
                continue
            done.add(id(value))
            stack.append((value, True))
            stack.extend((x, False) for x in reversed(self.sources(value))
                         if isinstance(x, Value))
        return order

    def op_classes(self) -> set[type]:
        """The classes of the ops the export converts."""
        return {type(self.producers[id(v)][0]) for v in self.needed()
                if id(v) not in self.module_calls}


def flatten(value: Any) -> list[Value]:
    """The Tensors inside nested tuples and lists, in order (a model's outputs)."""
    if isinstance(value, (Tensor, TensorTuple)):
        return [value]
    if isinstance(value, (tuple, list)):
        return [x for item in value for x in flatten(item)]
    raise TypeError(f"a model output must be a Tensor or a tuple of Tensors, got "
                    f"{type(value).__name__}")


@contextlib.contextmanager
def _recording(trace: Trace, module_types: tuple[type, ...]) -> Iterator[None]:
    """Within the block, every op result and every call of ``module_types`` is recorded."""
    make_from_op = Value.__dict__["make_from_op"]
    call = Module.__call__

    def record_op(cls: type, op: Op, inputs: Any) -> Any:
        value = make_from_op.__func__(cls, op, inputs)
        trace.producers[id(value)] = (op, tuple(inputs))
        trace.values[id(value)] = value
        return value

    def record_call(self: Module, *args: Any, **kwargs: Any) -> Any:
        out = call(self, *args, **kwargs)
        if isinstance(self, module_types) and isinstance(out, Tensor):
            trace.module_calls[id(out)] = (self, args + tuple(kwargs.values()))
            trace.values[id(out)] = out
        return out

    Value.make_from_op = classmethod(record_op)  # type: ignore[method-assign, assignment]
    Module.__call__ = record_call  # type: ignore[method-assign]
    try:
        yield
    finally:
        Value.make_from_op = make_from_op  # type: ignore[method-assign]
        Module.__call__ = call  # type: ignore[method-assign]


def as_inputs(example_input: Any) -> tuple[Any, list[Tensor]]:
    """The model's arguments, with each array of ``example_input`` (a Tensor, an array, or
    a tuple of them, nested like the arguments: ``(ids, (h0, c0))``) as a fresh leaf Tensor
    sharing its data, and those Tensors in order (the graph's inputs)."""
    leaves: list[Tensor] = []

    def convert(item: Any) -> Any:
        if isinstance(item, (tuple, list)):
            return tuple(convert(x) for x in item)
        leaves.append(Tensor(item.cached_data if isinstance(item, Tensor) else np.asarray(item)))
        return leaves[-1]

    items = example_input if isinstance(example_input, (tuple, list)) else (example_input,)
    return tuple(convert(x) for x in items), leaves


def trace(model: Module, example_input: Any, module_types: tuple[type, ...] = ()) -> Trace:
    """Run ``model`` once on ``example_input`` (see ``as_inputs``), recording what it
    computes; ``module_types`` are the modules kept whole."""
    args, inputs = as_inputs(example_input)
    result = Trace(inputs, [])
    with enable_grad(), _recording(result, module_types):
        out = model(*args)
    result.outputs = flatten(out)
    result.dynamic = _dynamic_values(result)
    return result


def _dynamic_values(trace: Trace) -> set[int]:
    """The ids of values that depend on an input. Values were recorded in the order they
    were made, so one pass finds them all, except after a module call whose op inputs
    alone look constant (a lookup by token ids): then another pass."""
    dynamic = {id(x) for x in trace.inputs}
    size = -1
    while size != len(dynamic):
        size = len(dynamic)
        for key, (_, inputs) in trace.producers.items():
            if any(id(x) in dynamic for x in inputs):
                dynamic.add(key)
        for key, (_, args) in trace.module_calls.items():
            if any(isinstance(a, Value) and id(a) in dynamic for a in args):
                dynamic.add(key)
    return dynamic
