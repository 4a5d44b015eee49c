"""The profiler: where a block's time goes, per op class and phase.

    with ndl.profile() as prof:
        train_step()
    print(prof.table())

Rows are (op class, phase), with call count, total and mean time and the bytes the op
allocated (views allocate nothing):

- ``forward``: each op's ``compute``;
- ``backward``: everything ``backward()`` does for a node — summing its adjoints and
  running its op's ``gradient`` (the elementary ops that gradient runs are counted in this
  row, not as forward ops); ``AccumulateGrad`` is the tail of the pass (the leaves'
  adjoints);
- ``optimizer``: each ``Optimizer.step()``.

The table ends with the sum of the rows against the block's wall time: the rest is Python
between ops (model code, data loading). On a GPU each op is synchronised before its time is
taken. The profiler is a tracer (``needle.tracing``): when no profile is active it costs
nothing beyond the engine's one ``is None`` test per op.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import optim
from .backend_ndarray.buffers import allocated_bytes
from .tracing import Tracer


@dataclass
class Row:
    """One line of the table: an op class in one phase."""

    name: str
    phase: str
    calls: int = 0
    seconds: float = 0.0
    bytes: int = 0

    @property
    def mean_seconds(self) -> float:
        return self.seconds / self.calls if self.calls else 0.0


def _arrays(data: Any) -> tuple[Any, ...]:
    return data if isinstance(data, tuple) else (data,)


def _input_arrays(inputs: Sequence[Any]) -> Iterator[Any]:
    """The inputs' arrays, lazily: only an output that is a view needs them."""
    for x in inputs:
        yield from _arrays(x.cached_data)


def _synchronize(data: Any) -> None:
    """Wait for a GPU array's kernels (CuPy) so that the clock measures them."""
    arrays = _arrays(data)
    xp = arrays[0].device.xp if arrays else np
    if xp is not np:
        xp.cuda.get_current_stream().synchronize()


class profile(Tracer):
    """Context manager that times every op, backward step and optimiser step inside it."""

    def __init__(self) -> None:
        super().__init__()
        self._rows: dict[tuple[str, str], Row] = {}
        self.wall_seconds = 0.0
        self._nested = 0  # > 0 inside a backward pass or an optimiser step
        self._lap = 0.0
        self._pending_bytes = 0
        self._patched: list[tuple[type, Callable[..., Any]]] = []
        self._in_step = False

    def _add(self, name: str, phase: str, seconds: float, nbytes: int) -> None:
        row = self._rows.get((name, phase))
        if row is None:
            row = self._rows[(name, phase)] = Row(name, phase)
        row.calls += 1
        row.seconds += seconds
        row.bytes += nbytes

    # ------------------------------------------------------------------ tracer hooks
    def forward(self, op: Any, inputs: Sequence[Any], value: Any) -> None:
        start = time.perf_counter()
        super().forward(op, inputs, value)
        _synchronize(value.cached_data)
        seconds = time.perf_counter() - start
        nbytes = sum(allocated_bytes(a, _input_arrays(inputs))
                     for a in _arrays(value.cached_data))
        if self._nested:
            self._pending_bytes += nbytes  # counted in the enclosing backward/optimizer row
        else:
            self._add(type(op).__name__, "forward", seconds, nbytes)

    @contextlib.contextmanager
    def backward_pass(self) -> Iterator[None]:
        outer_lap, outer_bytes = self._lap, self._pending_bytes
        self._nested += 1
        self._lap, self._pending_bytes = time.perf_counter(), 0
        try:
            with super().backward_pass():
                yield
        finally:
            self._nested -= 1
            self._add("AccumulateGrad", "backward", time.perf_counter() - self._lap,
                      self._pending_bytes)
            self._lap, self._pending_bytes = outer_lap, outer_bytes

    def adjoints(self, node: Any, partials: Sequence[Any]) -> None:
        super().adjoints(node, partials)
        _synchronize(node.cached_data)
        now = time.perf_counter()
        self._add(type(node.op).__name__, "backward", now - self._lap, self._pending_bytes)
        self._lap, self._pending_bytes = now, 0

    def _timed_step(self, step: Callable[..., Any]) -> Callable[..., Any]:
        def timed(opt: Any, *args: Any, **kwargs: Any) -> Any:
            if self._in_step:  # a subclass's step calling super().step(): timed once
                return step(opt, *args, **kwargs)
            self._in_step = True
            start, outer_bytes = time.perf_counter(), self._pending_bytes
            self._nested += 1
            self._pending_bytes = 0
            try:
                return step(opt, *args, **kwargs)
            finally:
                self._nested -= 1
                self._in_step = False
                self._add(f"{type(opt).__name__}.step", "optimizer",
                          time.perf_counter() - start, self._pending_bytes)
                self._pending_bytes = outer_bytes
        return timed

    # ------------------------------------------------------------------ the block
    def __enter__(self) -> profile:
        for cls in _optimizer_classes():
            if "step" in vars(cls):
                self._patched.append((cls, vars(cls)["step"]))
                setattr(cls, "step", self._timed_step(vars(cls)["step"]))
        super().__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_seconds = time.perf_counter() - self._started
        super().__exit__(*exc)
        for cls, step in reversed(self._patched):
            setattr(cls, "step", step)
        self._patched.clear()

    # ------------------------------------------------------------------ results
    def rows(self) -> list[Row]:
        """The rows, longest total time first."""
        return sorted(self._rows.values(), key=lambda r: -r.seconds)

    @property
    def total_seconds(self) -> float:
        """The time inside ops, backward steps and optimiser steps (the sum of the rows)."""
        return sum(r.seconds for r in self._rows.values())

    def table(self, row_limit: int | None = None) -> str:
        """The rows as a text table, then their total against the block's wall time."""
        rows = self.rows()[:row_limit]
        width = max([len(r.name) for r in rows] + [12]) + 2
        head = (f"{'Op':<{width}}{'Phase':<11}{'Calls':>8}{'Total ms':>11}{'Mean us':>11}"
                f"{'% time':>8}{'Allocated':>12}")
        wall = self.wall_seconds or self.total_seconds or 1.0
        lines = [head, "-" * len(head)]
        lines += [f"{r.name:<{width}}{r.phase:<11}{r.calls:>8}{r.seconds * 1e3:>11.2f}"
                  f"{r.mean_seconds * 1e6:>11.1f}{100 * r.seconds / wall:>7.1f}%"
                  f"{_human_bytes(r.bytes):>12}" for r in rows]
        rest = max(self.wall_seconds - self.total_seconds, 0.0)
        lines += ["-" * len(head),
                  f"outside ops (Python between them: model code, data, RNG): "
                  f"{rest * 1e3:.2f} ms ({100 * rest / wall:.1f} %)",
                  f"ops, backward and optimizer steps: {self.total_seconds * 1e3:.2f} ms of "
                  f"{self.wall_seconds * 1e3:.2f} ms wall time "
                  f"({100 * self.total_seconds / wall:.1f} %)"]
        return "\n".join(lines)


def _optimizer_classes() -> list[type]:
    found: list[type] = []
    todo: list[type] = [optim.Optimizer]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
