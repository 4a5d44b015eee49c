"""The profiler: where a block's time goes, per op class and phase.

    with ndl.profile() as prof:
        train_step()
    print(prof.table())

Rows are (name, phase), with call count, total and mean time and the bytes allocated
(views allocate nothing):

- ``forward``: each op's ``compute``, by op class;
- ``module``: each module's own Python in its ``__call__``/``forward`` (argument checks,
  reshapes of arguments, calls into ops), by module class — the ops it runs and the
  modules it calls have their own rows, so a module row is its *exclusive* time;
- ``backward``: everything ``backward()`` does for a node — summing its adjoints and
  running its op's ``gradient`` (the elementary ops that gradient runs are counted in this
  row, not as forward ops); ``AccumulateGrad`` is the tail of the pass (the leaves'
  adjoints) and ``backward()`` the engine's own work around the nodes (the topological
  sort, the default ``out_grad``, freeing the graph);
- ``optimizer``: each ``Optimizer.step()`` and ``zero_grad()`` (which ``reset_grad()`` calls);
- ``data``: each batch a ``DataLoader`` yields (fetching, collating).

The table ends with the sum of the rows against the block's wall time; the rest is the
caller's own Python between these calls (metrics on numpy arrays, printing). On a GPU each
op is synchronised before its time is taken. The profiler is a tracer (``needle.tracing``)
and patches the methods above only while it is active: when no profile is active it costs
nothing beyond the engine's one ``is None`` test per op.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from . import autograd, nn, optim
from .backend_ndarray.buffers import allocated_bytes
from .data.dataloader import DataLoader
from .tracing import Tracer


_END = object()  # what next() gives at the end of a loader's batches


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
        self._patched: list[tuple[type, str, Callable[..., Any]]] = []
        self._in_step = False
        self._accounted = 0.0  # seconds in rows so far: what an enclosing call excludes

    def _add(self, name: str, phase: str, seconds: float, nbytes: int) -> None:
        row = self._rows.get((name, phase))
        if row is None:
            row = self._rows[(name, phase)] = Row(name, phase)
        row.calls += 1
        row.seconds += seconds
        row.bytes += nbytes
        self._accounted += seconds

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

    def _exclusive(self, call: Callable[..., Any], name: Callable[[Any], str],
                   phase: str) -> Callable[..., Any]:
        """``call`` timed into the row (name(obj), phase), less the time of the rows added
        while it ran (the ops and modules inside it have their own)."""
        def timed(obj: Any, *args: Any, **kwargs: Any) -> Any:
            start, accounted = time.perf_counter(), self._accounted
            try:
                return call(obj, *args, **kwargs)
            finally:
                inner = self._accounted - accounted
                self._add(name(obj), phase, time.perf_counter() - start - inner, 0)
        return timed

    def _timed_batches(self, iterate: Callable[..., Iterator[Any]]) -> Callable[..., Any]:
        """A DataLoader's ``__iter__`` whose every batch is timed into ("DataLoader", data)."""
        def batches(loader: Any) -> Iterator[Any]:
            items = iterate(loader)
            while True:
                start, accounted = time.perf_counter(), self._accounted
                batch = next(items, _END)
                if batch is _END:
                    return
                inner = self._accounted - accounted
                self._add(type(loader).__name__, "data", time.perf_counter() - start - inner, 0)
                yield batch
        return batches

    def _patch(self, cls: type, method: str, timed: Callable[..., Any]) -> None:
        self._patched.append((cls, method, vars(cls)[method]))
        setattr(cls, method, timed)

    # ------------------------------------------------------------------ the block
    def __enter__(self) -> profile:
        for cls in _subclasses(optim.Optimizer):
            if "step" in vars(cls):
                self._patch(cls, "step", self._timed_step(vars(cls)["step"]))
        self._patch(optim.Optimizer, "zero_grad", self._exclusive(  # reset_grad calls it
            vars(optim.Optimizer)["zero_grad"], lambda opt: f"{type(opt).__name__}.zero_grad",
            "optimizer"))
        self._patch(nn.Module, "__call__", self._exclusive(
            vars(nn.Module)["__call__"], lambda module: type(module).__name__, "module"))
        self._patch(autograd.Tensor, "backward", self._exclusive(
            vars(autograd.Tensor)["backward"], lambda _: "backward()", "backward"))
        self._patch(DataLoader, "__iter__", self._timed_batches(vars(DataLoader)["__iter__"]))
        super().__enter__()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_seconds = time.perf_counter() - self._started
        super().__exit__(*exc)
        for cls, method, original in reversed(self._patched):
            setattr(cls, method, original)
        self._patched.clear()

    # ------------------------------------------------------------------ results
    def rows(self) -> list[Row]:
        """The rows, longest total time first."""
        return sorted(self._rows.values(), key=lambda r: -r.seconds)

    @property
    def total_seconds(self) -> float:
        """The time in the rows: ops, modules, backward, optimiser and data (their sum)."""
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
                  f"outside these rows (the caller's own Python: metrics, printing): "
                  f"{rest * 1e3:.2f} ms ({100 * rest / wall:.1f} %)",
                  f"ops, modules, backward, optimizer and data: "
                  f"{self.total_seconds * 1e3:.2f} ms of "
                  f"{self.wall_seconds * 1e3:.2f} ms wall time "
                  f"({100 * self.total_seconds / wall:.1f} %)"]
        return "\n".join(lines)


def _subclasses(base: type) -> list[type]:
    """``base`` and every class derived from it."""
    found: list[type] = []
    todo: list[type] = [base]
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
