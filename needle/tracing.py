"""Tracers: observers of every op that the engine calls through one hook.

``autograd`` holds one optional tracer. While one is active, ``Value.make_from_op`` lets
it compute each op (``forward``), the backward pass runs inside its ``backward_pass()``
context and shows it each node's partial adjoints (``adjoints``). With none active the
engine pays one ``is None`` test per op. Anomaly detection (``needle.anomaly``) and the
profiler (``needle.profiler``) are tracers; they nest, each wrapping the one active before.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from . import autograd


class Tracer:
    """Base class: computes ops unchanged and observes nothing. Use as a context manager."""

    def __init__(self) -> None:
        self.outer: Tracer | None = None

    def forward(self, op: Any, inputs: Sequence[Any], value: Any) -> None:
        """Set ``value.cached_data`` to ``op`` computed on ``inputs``."""
        if self.outer is None:
            data = op.compute(*[x.cached_data for x in inputs])
            if op.saves:  # (value, what its gradient needs): see ``Op.saves``
                data, value.saved = data
            value.cached_data = data
        else:
            self.outer.forward(op, inputs, value)

    def adjoints(self, node: Any, partials: Sequence[Any]) -> None:
        """Called with the partial adjoints ``node.op`` gives its inputs (``node.grad`` set)."""
        if self.outer is not None:
            self.outer.adjoints(node, partials)

    @contextlib.contextmanager
    def backward_pass(self) -> Iterator[None]:
        """The context of one whole backward pass."""
        with self.outer.backward_pass() if self.outer is not None else contextlib.nullcontext():
            yield

    def __enter__(self) -> Any:
        self.outer, autograd._tracer = autograd._tracer, self
        return self

    def __exit__(self, *exc: object) -> None:
        autograd._tracer, self.outer = self.outer, None
