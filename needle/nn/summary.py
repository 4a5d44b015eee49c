"""``summary(model, input_shape)``: per layer, the output shape, the parameters and the memory.

The memory is the arithmetic of training (seed L9): a layer holds its parameters' bytes,
and for a batch every op output it computes stays alive in the graph until ``backward()``
(the activations kept for backward), together with any arrays its ops keep for their
gradient. summary runs one forward pass in training mode with the graph recorded, asks
which layer created each node (the innermost module running at the time), and counts the
distinct buffers the graph holds (views share their base's memory, counted once). The
model's buffers (BatchNorm's running statistics) and numpy's RNG are restored afterwards.
Every layer runs itself here, so each has its row: a wrapped forward keeps Sequential's
fusions (Conv/Linear → BatchNorm → ReLU as one node) off, and a fused training forward
keeps less than the figures say (MLP-ResNet at batch 256: 1.77 MiB, not 1.86).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..autograd import NDArray, Tensor, Value, enable_grad, find_topo_sort
from ..backend_ndarray.buffers import owner
from ..tracing import Tracer
from .module import Module, Parameter


@dataclass
class LayerRow:
    """One line of the summary."""

    label: str
    output_shape: str = ""
    params: int = 0
    param_bytes: int = 0
    activation_bytes: int = 0


class SummaryTable(str):
    """The printed table (a str), with its ``rows`` and totals as numbers."""

    rows: list[LayerRow]
    param_bytes: int
    activation_bytes: int


def _shape_of(value: Any) -> str:
    if isinstance(value, Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(_shape_of(v) for v in value)
    return type(value).__name__


class _Attribution(Tracer):
    """Remembers, for every op output, the row of the module that was running."""

    def __init__(self) -> None:
        super().__init__()
        self.current: list[int] = []
        self.row_of: dict[int, int] = {}

    def forward(self, op: Any, inputs: Sequence[Any], value: Any) -> None:
        super().forward(op, inputs, value)
        if self.current:
            self.row_of[id(value)] = self.current[-1]


def _recording(module: Module, label: str, rows: list[LayerRow], tracer: _Attribution
               ) -> Callable[..., Any]:
    """``module.forward`` wrapped to fill its row (in call order: parents before children)."""
    forward = type(module).forward.__get__(module)
    own = [v for _, v in module._members() if isinstance(v, Parameter)]

    def recorded(*args: Any, **kwargs: Any) -> Any:
        index = len(rows)
        rows.append(LayerRow(label, params=sum(p.size for p in own),
                             param_bytes=sum(p.size * p.dtype.itemsize for p in own)))
        tracer.current.append(index)
        try:
            out = forward(*args, **kwargs)
        finally:
            tracer.current.pop()
        rows[index].output_shape = _shape_of(out)
        return out

    return recorded


def _held_arrays(node: Value) -> list[NDArray]:
    """The arrays the graph keeps through ``node``: its value, what its op saved on the node
    for the gradient (``Op.saves``) and arrays its op keeps."""
    data = node.cached_data
    arrays = list(data) if isinstance(data, tuple) else [data]
    saved = node.saved
    for item in saved if isinstance(saved, (tuple, list)) else (saved,):
        for part in item if isinstance(item, (tuple, list)) else (item,):
            if isinstance(part, NDArray):
                arrays.append(part)
    for value in getattr(node.op, "__dict__", {}).values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, NDArray):
                arrays.append(item)
    return arrays


def _count_activations(output: Any, x: Tensor, tracer: _Attribution,
                       rows: list[LayerRow]) -> None:
    """Add each distinct buffer held by the graph of ``output`` to the row that made it.

    Constants made inside a layer (a dropout mask) count for the layer that uses them;
    the input ``x`` and the Parameters are not activations."""
    roots = [v for v in (output if isinstance(output, (tuple, list)) else (output,))
             if isinstance(v, Value)]
    seen = {id(owner(x.cached_data))}
    for node in find_topo_sort(roots):
        if node.op is None or id(node) not in tracer.row_of:
            continue
        row = rows[tracer.row_of[id(node)]]
        leaves = [v.cached_data for v in node.inputs
                  if v.op is None and not isinstance(v, Parameter)]
        for array in _held_arrays(node) + leaves:
            buffer = owner(array)
            if id(buffer) not in seen:
                seen.add(id(buffer))
                row.activation_bytes += int(buffer.nbytes)


def summary(model: Module, input_shape: tuple[int, ...], print_fn: Callable[[str], Any] = print,
            dtype: str = "float32") -> SummaryTable:
    """Run ``model`` once in training mode on zeros of ``input_shape`` (batch axis included)
    and print a table of every module called: its output shape, its own parameter count
    and bytes, and the activation bytes its ops keep for backward at this batch size; then
    the totals. Returns the table (a str with ``rows`` and totals as numbers)."""
    rows: list[LayerRow] = []
    tracer = _Attribution()
    modules = _named_modules(model, type(model).__name__, 0)
    state = _ModelState(model)
    try:
        for name, module, depth in modules:
            label = "  " * depth + f"{name} ({type(module).__name__})"
            module.forward = _recording(module, label, rows, tracer)  # type: ignore
        model.train()
        x = Tensor(np.zeros(input_shape, dtype=dtype), requires_grad=False)
        with enable_grad(), tracer:
            output = model(x)
        _count_activations(output, x, tracer, rows)
    finally:
        for _, module, _ in modules:
            vars(module).pop("forward", None)
        state.restore()
    return _table(rows, model, input_shape[0] if input_shape else 1, print_fn)


class _ModelState:
    """The mode, the buffers (running statistics) and numpy's RNG, to restore after a run."""

    def __init__(self, model: Module):
        self.model = model
        self.training = model.training
        self.buffers = [(t, t.numpy().copy()) for _, t in model.named_tensors()
                        if not isinstance(t, Parameter)]
        self.rng = np.random.get_state()

    def restore(self) -> None:
        for tensor, value in self.buffers:
            tensor.data = value
        np.random.set_state(self.rng)
        self.model.train(self.training)


def _named_modules(model: Module, name: str, depth: int) -> list[tuple[str, Module, int]]:
    """(name, module, depth) for ``model`` and every module below it, depth first."""
    found = [(name, model, depth)]
    for child_name, child in model.named_children():
        found.extend(_named_modules(child, child_name, depth + 1))
    return found


def _bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:,.1f} KiB" if n < 1024**2 else f"{n / 1024**2:,.2f} MiB"


def _table(rows: list[LayerRow], model: Module, batch: int,
           print_fn: Callable[[str], Any]) -> SummaryTable:
    width = max([len(r.label) for r in rows] + [20]) + 2
    head = (f"{'Layer (type)':<{width}}{'Output shape':<24}{'Param #':>10}{'Param bytes':>14}"
            f"{'Activations':>14}")
    lines = [head, "-" * len(head)]
    lines += [f"{r.label:<{width}}{r.output_shape:<24}{r.params:>10,}{_bytes(r.param_bytes):>14}"
              f"{_bytes(r.activation_bytes):>14}" for r in rows]
    params = model.parameters()
    param_bytes = sum(p.size * p.dtype.itemsize for p in params)
    activation_bytes = sum(r.activation_bytes for r in rows)
    lines += ["-" * len(head),
              f"Parameter bytes: {_bytes(param_bytes)}; activations kept for backward at "
              f"batch {batch}: {_bytes(activation_bytes)}; together "
              f"{_bytes(param_bytes + activation_bytes)}",
              f"Total parameters: {sum(p.size for p in params):,}"]
    text = SummaryTable("\n".join(lines))
    text.rows, text.param_bytes, text.activation_bytes = rows, param_bytes, activation_bytes
    print_fn(text)
    return text
