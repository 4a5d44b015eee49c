"""Anomaly detection: stop at the first op whose output or adjoint holds NaN or Inf.

    with ndl.detect_anomaly():
        loss = model(x).log().mean()
        loss.backward()

Inside the block every op output (forward) and every partial adjoint an op's gradient
returns (backward) is checked; the error names the op, the shapes, and the file:line of the
user's code that created the op. The creating line is captured only in this mode, so
normal runs pay nothing. ``NEEDLE_DETECT_ANOMALY=1`` in the environment turns the mode on
for the whole process (at ``import needle``).

An op whose output may legitimately hold infinities (max pooling's ``-inf`` padding)
says so with an attribute ``may_produce_inf = True``; its outputs are checked for NaN only.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import sys
import weakref
from typing import Any, Iterator, Sequence

import numpy as np

from .tracing import Tracer

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
Location = tuple[str, int, str]


class AnomalyError(RuntimeError):
    """An op produced NaN or Inf while ``detect_anomaly`` was on."""


def _user_location() -> Location:
    """(file, line, function) of the innermost caller outside the needle package."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ("<needle>", 0, "?")
    return (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name)


def _where(location: Location | None) -> str:
    if location is None:
        return "created before detect_anomaly was turned on"
    filename, line, function = location
    source = linecache.getline(filename, line).strip()
    return f"created at {filename}:{line} in {function}" + (f":\n    {source}" if source else "")


def _count_bad(array: Any, allow_inf: bool) -> tuple[int, int]:
    """(NaN count, Inf count) of a floating NDArray; (0, 0) for other dtypes."""
    if not np.issubdtype(array.dtype, np.floating):
        return 0, 0
    host = np.asarray(array.numpy())
    nans = int(np.isnan(host).sum())
    infs = 0 if allow_inf else int(np.isinf(host).sum())
    return nans, infs


def _describe(nans: int, infs: int) -> str:
    parts = [f"{nans} NaN" if nans else "", f"{infs} Inf" if infs else ""]
    return " and ".join(p for p in parts if p)


def _shapes(values: Sequence[Any]) -> str:
    return ", ".join(f"{tuple(v.shape)} {v.dtype}" if hasattr(v, "shape") else type(v).__name__
                     for v in values)


class detect_anomaly(Tracer):
    """Context manager: raise AnomalyError at the first NaN/Inf output or adjoint."""

    def __init__(self) -> None:
        super().__init__()
        self.created: dict[int, tuple[weakref.ref[Any], Location]] = {}
        self.backward_depth = 0

    def _remember(self, value: Any) -> None:
        key = id(value)
        self.created[key] = (weakref.ref(value, lambda _: self.created.pop(key, None)),
                             _user_location())

    def location_of(self, node: Any) -> Location | None:
        entry = self.created.get(id(node))
        return entry[1] if entry is not None and entry[0]() is node else None

    @contextlib.contextmanager
    def backward_pass(self) -> Iterator[None]:
        """Inside backward, a NaN is reported by ``adjoints`` for the op whose gradient made
        it (not for the elementary ops that gradient runs)."""
        self.backward_depth += 1
        try:
            with super().backward_pass():
                yield
        finally:
            self.backward_depth -= 1

    def forward(self, op: Any, inputs: Sequence[Any], value: Any) -> None:
        super().forward(op, inputs, value)
        if self.backward_depth:
            return
        self._remember(value)
        allow_inf = getattr(op, "may_produce_inf", False)
        outputs = value.cached_data if isinstance(value.cached_data, tuple) else \
            (value.cached_data,)
        for i, array in enumerate(outputs):
            nans, infs = _count_bad(array, allow_inf)
            if nans or infs:
                which = f"output {i}" if len(outputs) > 1 else "output"
                raise AnomalyError(
                    f"detect_anomaly: {type(op).__name__} produced {_describe(nans, infs)} "
                    f"value(s) in its {which} of shape {tuple(array.shape)} {array.dtype} "
                    f"(inputs: {_shapes([x.cached_data for x in inputs])}); the op was "
                    f"{_where(self.location_of(value))}")

    def adjoints(self, node: Any, partials: Sequence[Any]) -> None:
        super().adjoints(node, partials)
        for i, partial in enumerate(partials):
            held = getattr(partial, "value", partial)  # a tuple element's deferred adjoint
            array = getattr(held, "cached_data", None)
            for item in array if isinstance(array, tuple) else (array,):
                nans, infs = (0, 0) if item is None else _count_bad(item, False)
                if nans or infs:
                    raise AnomalyError(
                        f"detect_anomaly: the gradient of {type(node.op).__name__} gave "
                        f"{_describe(nans, infs)} value(s) in the adjoint of its input {i} "
                        f"(shape {tuple(item.shape)} {item.dtype}; output "
                        f"{_shapes([node.cached_data])}) during backward(); the op was "
                        f"{_where(self.location_of(node))}")


def _from_environment() -> detect_anomaly | None:
    """Anomaly detection for the whole process when ``NEEDLE_DETECT_ANOMALY=1``."""
    if os.environ.get("NEEDLE_DETECT_ANOMALY", "0") in ("", "0"):
        return None
    tracer = detect_anomaly()
    tracer.__enter__()
    return tracer


PROCESS_WIDE = _from_environment()
