"""Grad mode: whether ops record the graph. ``no_grad`` and ``enable_grad`` nest safely."""

from __future__ import annotations

import contextlib
from typing import Any

enabled = True  # read by every op call (Value.make_from_op)


def is_grad_enabled() -> bool:
    return enabled


@contextlib.contextmanager
def _grad_mode(on: bool) -> Any:
    global enabled
    previous, enabled = enabled, on
    try:
        yield
    finally:
        enabled = previous


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
