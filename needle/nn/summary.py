"""``summary(model, input_shape)``: each layer's output shape and parameter count."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..autograd import Tensor, no_grad
from .module import Module, Parameter


def _shape_of(value: Any) -> str:
    if isinstance(value, Tensor):
        return str(tuple(value.shape))
    if isinstance(value, (tuple, list)):
        return ", ".join(_shape_of(v) for v in value)
    return type(value).__name__


def _recording(module: Module, name: str, depth: int, rows: list[tuple[str, str, int]]
               ) -> Callable[..., Any]:
    """``module.forward`` wrapped to append (label, output shape, own parameters) to rows."""
    forward = type(module).forward.__get__(module)
    own = sum(v.size for _, v in module._members() if isinstance(v, Parameter))

    def recorded(*args: Any, **kwargs: Any) -> Any:
        index = len(rows)
        rows.append(("", "", 0))  # keep rows in call order: parents before children
        out = forward(*args, **kwargs)
        rows[index] = ("  " * depth + f"{name} ({type(module).__name__})", _shape_of(out), own)
        return out

    return recorded


def summary(model: Module, input_shape: tuple[int, ...], print_fn: Callable[[str], Any] = print,
            dtype: str = "float32") -> str:
    """Run ``model`` (in eval mode, without a graph) on zeros of ``input_shape`` (batch axis
    included) and print a table of every module called: its output shape and its own
    parameter count, then the totals. Returns the table."""
    rows: list[tuple[str, str, int]] = []
    modules = _named_modules(model, type(model).__name__, 0)
    was_training = model.training
    try:
        for name, module, depth in modules:
            module.forward = _recording(module, name, depth, rows)  # type: ignore[method-assign]
        model.eval()
        with no_grad():
            model(Tensor(np.zeros(input_shape, dtype=dtype), requires_grad=False))
    finally:
        for _, module, _ in modules:
            vars(module).pop("forward", None)
        model.train(was_training)
    return _table(rows, model, print_fn)


def _named_modules(model: Module, name: str, depth: int) -> list[tuple[str, Module, int]]:
    """(name, module, depth) for ``model`` and every module below it, depth first."""
    found = [(name, model, depth)]
    for child_name, child in model.named_children():
        found.extend(_named_modules(child, child_name, depth + 1))
    return found


def _table(rows: list[tuple[str, str, int]], model: Module,
           print_fn: Callable[[str], Any]) -> str:
    width = max([len(label) for label, _, _ in rows] + [20]) + 2
    lines = [f"{'Layer (type)':<{width}}{'Output shape':<24}{'Param #':>10}", "-" * (width + 34)]
    lines += [f"{label:<{width}}{shape:<24}{count:>10,}" for label, shape, count in rows]
    total = sum(p.size for p in model.parameters())
    lines += ["-" * (width + 34), f"Total parameters: {total:,}"]
    text = "\n".join(lines)
    print_fn(text)
    return text
