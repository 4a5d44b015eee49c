"""``export(model, example_input, path, opset=17)``: trace one eval-mode forward pass and
write it as an ONNX model (checked with ``onnx.checker``, written atomically).

The graph has the example's shapes: inputs ``input`` (or ``input_0``, ``input_1``, ...),
outputs ``output`` (or ``output_0``, ... for a tuple such as a language model's
``(logits, (h, c))``). Parameters and buffers become initializers under their state-dict
names; values that do not depend on an input are folded into initializers.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import Any

import onnx
from onnx import helper

from .. import nn
from ..autograd import TensorTuple, Value
from ..reference import reference_mode
from .converters import (CONVERTER_NAMES, CONVERTERS, MODULE_RULES, Node, UnsupportedOpError, Windows,
                         no_mapping_message)
from .graph import GraphBuilder, tensor_type
from .trace import Trace, trace

WINDOW_CONSUMERS = {CONVERTER_NAMES["Summation"], CONVERTER_NAMES["Max"]}


class Exporter(GraphBuilder):
    """Turns a Trace into an ONNX graph: one converter call per dynamic value."""

    def __init__(self, opset: int, traced: Trace, tensor_names: dict[int, str]):
        super().__init__(opset)
        self.trace = traced
        self.tensor_names = tensor_names
        self.names: dict[int, Any] = {}

    def tensor(self, value: Any) -> Any:
        """A value's ONNX name: converted already, else a constant made an initializer."""
        key = id(value)
        if key not in self.names:  # not computed from an input: a constant
            if isinstance(value, TensorTuple):
                self.names[key] = [self.constant(x.numpy(), "const")
                                   for x in value.cached_data]
            else:
                hint = self.tensor_names.get(key, "const")
                self.names[key] = self.constant(value.cached_data.numpy(), hint)
        return self.names[key]

    def convert(self, value: Value) -> None:
        """Emit the ONNX nodes computing one dynamic value."""
        key = id(value)
        if key in self.trace.module_calls:
            module, args = self.trace.module_calls[key]
            rule = next(r for t, r in MODULE_RULES.items() if isinstance(module, t))
            names = [self.tensor(a) for a in args if isinstance(a, Value)]
            self.names[key] = rule(self, module, args, *names)
            return
        op, inputs = self.trace.producers[key]
        converter = CONVERTERS[type(op)]
        names = [self.tensor(x) for x in inputs]
        if converter not in WINDOW_CONSUMERS and any(isinstance(n, Windows) for n in names):
            raise UnsupportedOpError(f"Im2Col windows export only as a pooling (a max or sum "
                                     f"over axes 3 and 4), not under {type(op).__name__}")
        self.names[key] = converter(self, Node(op, value, inputs), *names)

    def build(self) -> onnx.GraphProto:
        inputs = []
        for i, x in enumerate(self.trace.inputs):
            name = "input" if len(self.trace.inputs) == 1 else f"input_{i}"
            self.names[id(x)] = self.fresh(name)
            inputs.append(_value_info(name, x))
        for value in self.trace.needed():
            self.convert(value)
        outputs = []
        for i, y in enumerate(self.trace.outputs):
            source = self.tensor(y)
            if not isinstance(source, str):
                raise UnsupportedOpError(f"model output {i} is not a tensor ONNX can hold "
                                         f"({type(source).__name__})")
            name = self.fresh("output" if len(self.trace.outputs) == 1 else f"output_{i}")
            self.nodes.append(helper.make_node("Identity", [source], [name]))
            outputs.append(_value_info(name, y))
        return helper.make_graph(self.nodes, "needle", inputs, outputs, self.initializers)


def _value_info(name: str, value: Value) -> onnx.ValueInfoProto:
    data = value.cached_data
    return helper.make_tensor_value_info(name, tensor_type(data.dtype), list(data.shape))


def _all_modules(module: nn.Module) -> list[nn.Module]:
    found = [module]
    for child in module.children():
        found.extend(_all_modules(child))
    return found


def _warn_if_training(modules: list[nn.Module]) -> None:
    """A warning when modules that behave differently in training are in training mode."""
    dropout = [m for m in modules if m.training and isinstance(m, nn.Dropout) and m.p > 0]
    batch_norm = [m for m in modules if m.training and isinstance(m, nn.BatchNorm1d)]
    if not dropout and not batch_norm:
        return
    found = [f"{len(found)} {kind} layer(s)" for found, kind in
             ((dropout, "active Dropout"), (batch_norm, "BatchNorm")) if found]
    warnings.warn(f"exporting a model in training mode with {' and '.join(found)}: the "
                  "ONNX graph has eval behaviour (no dropout, BatchNorm with its running "
                  "statistics); call model.eval() first to silence this", UserWarning,
                  stacklevel=4)


def trace_eval(model: nn.Module, example_input: Any) -> Trace:
    """Trace ``model`` in eval mode (warning when it was training), then restore modes.

    The trace always takes the fast path, even inside ``reference_mode()``: its fused
    primitives (convolution, pooling, linear, softmax) are what map one-to-one onto ONNX
    operators, so one model exports to the same file in either mode."""
    modules = _all_modules(model)
    _warn_if_training(modules)
    modes = [m.training for m in modules]
    model.eval()
    try:
        with reference_mode(False):
            return trace(model, example_input, tuple(MODULE_RULES))
    finally:
        for m, mode in zip(modules, modes):
            m.training = mode


def to_onnx(model: nn.Module, example_input: Any, opset: int = 17) -> onnx.ModelProto:
    """The checked ONNX model of one eval-mode forward pass of ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"export needs a needle nn.Module, got {type(model).__name__}")
    if opset < 17:
        raise ValueError(f"export needs opset 17 or later (LayerNormalization), got {opset}")
    traced = trace_eval(model, example_input)
    missing = traced.op_classes() - set(CONVERTERS)
    if missing:
        raise UnsupportedOpError(no_mapping_message(missing))
    names = {id(t): name for name, t in model.named_tensors()}
    graph = Exporter(opset, traced, names).build()
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="needle")
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model: nn.Module, example_input: Any, path: str | os.PathLike[str],
           opset: int = 17) -> onnx.ModelProto:
    """Write ``model`` as ONNX to ``path`` (atomically; an old file survives a failure)."""
    proto = to_onnx(model, example_input, opset)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        onnx.save(proto, tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return proto
