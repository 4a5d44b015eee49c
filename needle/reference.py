"""Reference mode: needle's readable path, switched on for a block or a whole process.

needle is fast by default: a few fused primitives (``ops/fused/``), deferred adjoints summed
by their own kind in ``backward`` and optimisers that update all parameters in flat
buffers. Each of these stands beside a plain version that computes the same thing:

- every fused function runs its composition from ``ops/`` instead (``@replaces``);
- ``backward`` turns deferred adjoints into plain Tensors and adds them one by one;
- optimisers run their per-parameter rule, written in Tensor arithmetic under ``no_grad``.

>>> import needle as ndl
>>> with ndl.reference_mode():
...     ndl.is_reference_mode()
True

``NEEDLE_REFERENCE=1`` in the environment turns it on for the whole process (the test
suite runs once in each mode).
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import Any, Callable, TypeVar

_enabled = os.environ.get("NEEDLE_REFERENCE", "0") not in ("", "0")

F = TypeVar("F", bound=Callable[..., Any])


def is_reference_mode() -> bool:
    """True inside ``reference_mode()`` (or with ``NEEDLE_REFERENCE=1``)."""
    return _enabled


class reference_mode(contextlib.ContextDecorator):
    """Context manager (and decorator) running needle's plain compositions instead of its
    fused fast paths; ``reference_mode(False)`` switches back to the fast path. Nests."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._previous: list[bool] = []

    def __enter__(self) -> None:
        global _enabled
        self._previous.append(_enabled)
        _enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        global _enabled
        _enabled = self._previous.pop()


def replaces(composed: Callable[..., Any]) -> Callable[[F], F]:
    """Mark a fused function as the fast form of ``composed``: in reference mode the call
    goes to ``composed``. Both stay reachable as ``.fused`` and ``.composed`` (for tests)."""

    def decorate(fast: F) -> F:
        @functools.wraps(fast)
        def dispatch(*args: Any, **kwargs: Any) -> Any:
            return (composed if _enabled else fast)(*args, **kwargs)

        dispatch.fused = fast  # type: ignore[attr-defined]
        dispatch.composed = composed  # type: ignore[attr-defined]
        return dispatch  # type: ignore[return-value]

    return decorate

