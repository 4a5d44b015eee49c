"""The second core for large memory-bound passes, while BLAS is idle (opt-in).

numpy releases the GIL inside its loops, so two threads that each run a pass over half of
an array's rows run at once. ``over_rows(fn, rows, size, xp)`` calls ``fn(lo, hi)`` for the
two halves of ``range(rows)``, the first on a worker thread, and returns when both are
done; the caller's next operation (often a BLAS call, which has both cores) starts after.
Three places use it: the softmax cross-entropy's rows (forward and backward), the
optimisers' cache-sized spans and ``NDArray.compact`` (every gather: im2col, permuted
copies).

Off unless ``NEEDLE_SECOND_CORE=1`` (or ``ENABLED = True``), because on the 2-core machine
needle is developed on it measured faster only in isolation: the softmax cross-entropy of
1120 x 10,000 logits went from 38 to 21 ms, a 32x32x32x3x3x64 im2col gather from 16.3 to
7.0 ms, Adam over 3 M parameters from 18.0 to 15.5 ms; but in the training steps that run
them, on memory just written by the GEMMs before, the same passes were no faster (the
Transformer LM step 1.04x, conv_fwd_bwd 1.07x, cnn_mnist 1.04x the one-thread time, with
one or two BLAS threads): the passes are bound by memory bandwidth, which the two cores
share. Even when enabled it splits only on the CPU, only passes of at least
``MIN_ELEMENTS`` elements, and never when ``OMP_NUM_THREADS=1`` or
``OPENBLAS_NUM_THREADS=1`` (the benchmarks' one-thread mode).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import numpy as np


def _allowed() -> bool:
    one_thread = any(os.environ.get(name) == "1"
                     for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"))
    return (os.cpu_count() or 1) > 1 and not one_thread and \
        os.environ.get("NEEDLE_SECOND_CORE", "0") == "1"


ENABLED = _allowed()
#: The smallest pass that is split (elements of its largest array).
MIN_ELEMENTS = 1 << 20

_worker: ThreadPoolExecutor | None = None
_worker_pid = 0


def _the_worker() -> ThreadPoolExecutor:
    """The one worker thread, started at the first split (again in a forked child, which
    inherits the executor but not its thread)."""
    global _worker, _worker_pid
    if _worker is None or _worker_pid != os.getpid():
        _worker, _worker_pid = ThreadPoolExecutor(1, thread_name_prefix="needle"), os.getpid()
    return _worker


def splits(rows: int, size: int, xp: Any) -> bool:
    """Whether ``over_rows`` splits a pass of ``rows`` rows and ``size`` elements on ``xp``."""
    return ENABLED and xp is np and size >= MIN_ELEMENTS and rows >= 2


def over_rows(fn: Callable[[int, int], Any], rows: int, size: int, xp: Any) -> None:
    """``fn(0, rows)``, or ``fn(0, rows // 2)`` on the worker thread and ``fn(rows // 2,
    rows)`` here when the pass (``size`` elements, on module ``xp``) is worth splitting.
    ``fn`` must write disjoint rows of its outputs."""
    if not splits(rows, size, xp):
        fn(0, rows)
        return
    half = rows // 2
    pending = _the_worker().submit(fn, 0, half)
    try:
        fn(half, rows)
    finally:
        pending.result()
