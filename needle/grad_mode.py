"""Grad mode: whether ops record the graph. ``no_grad`` and ``enable_grad`` nest safely."""

from __future__ import annotations

import contextlib
from typing import Any

enabled = True  # read by every op call (Value.make_from_op)
#: True while a backward pass runs that frees the graph after it (``retain_graph=False``):
#: what an op saved for its gradient is then read once, so the gradient may write into it
#: (``SoftmaxCrossEntropy`` does, sparing a fresh (N, C) array).
frees_graph = False


def is_grad_enabled() -> bool:
    return enabled


def backward_frees_graph() -> bool:
    """Whether the running backward pass frees the graph after it (see ``frees_graph``)."""
    return frees_graph


@contextlib.contextmanager
def _set(name: str, value: bool) -> Any:
    """This module's flag ``name`` is ``value`` inside, restored after (modes nest)."""
    previous = globals()[name]
    globals()[name] = value
    try:
        yield
    finally:
        globals()[name] = previous


def _grad_mode(on: bool) -> Any:
    return _set("enabled", on)


def _freeing_graph(frees: bool) -> Any:
    return _set("frees_graph", frees)


class no_grad(contextlib.ContextDecorator):
    """Context manager (and decorator) inside which ops record no graph; nests safely.

    >>> import needle as ndl
    >>> x = ndl.Tensor([1.0, 2.0])
    >>> with ndl.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __init__(self) -> None:
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global enabled
        self._previous.append(enabled)
        enabled = False

    def __exit__(self, *exc: object) -> None:
        global enabled
        enabled = self._previous.pop()


class enable_grad(no_grad):
    """Context manager that turns graph recording back on inside a ``no_grad`` block."""

    def __enter__(self) -> None:
        global enabled
        self._previous.append(enabled)
        enabled = True
