"""The second core for large memory-bound passes, while BLAS is idle (opt-in).

numpy releases the GIL inside its loops, so two threads that each run a pass over half of
an array's rows run at once. ``over_rows(fn, rows, size, xp)`` calls ``fn(lo, hi)`` for the
two halves of ``range(rows)``, the first on a worker thread, and returns when both are
done; the caller's next operation (often a BLAS call, which has both cores) starts after.
Three places use it: the softmax cross-entropy's rows (forward and backward), the
optimisers' cache-sized spans and ``NDArray.compact`` (every gather: im2col, permuted
copies).

OpenBLAS's idle worker. After every product, numpy's OpenBLAS keeps its worker thread
spinning on the second core for 2^28 cycles, about 0.1 s (its THREAD_TIMEOUT), so a pass
split right after a product competes with that thread for the core: five passes over a
(50176, 16) array after a 512² product took 1.9-2.3 ms on one thread and 2.1-2.4 ms split,
no gain (with one BLAS thread, so no such worker: 2.1-2.4 -> 1.3-1.4 ms). With
``OPENBLAS_THREAD_TIMEOUT=4`` (2^4 cycles: the worker sleeps at once) the split took
1.2-1.6 ms. This is why splitting first measured no faster inside training steps.
OpenBLAS reads the variable once, when numpy loads it: ``import needle`` sets it (unless
set) when ``NEEDLE_SECOND_CORE=1``, which takes effect if numpy was not imported before.

Off unless ``NEEDLE_SECOND_CORE=1`` (or ``ENABLED = True``). With the timeout set it
took the two-thread language-model steps of ``bench/seq.py`` from 1.57-1.62x to
1.44-1.50x PyTorch (LSTM) and from 1.43-1.46x to 1.30-1.34x (Transformer), two
alternating runs each, but the convolution workloads of ``bench/conv.py`` measured no
faster beyond the noise. (Splitting BatchNorm's elementwise passes as well took the small
MNIST CNN's BatchNorm from 7.3-7.5 to 5.8-6.7 ms a step forward, but whole steps only
from 34.9-37.7 to 32.2-35.4 ms, and its extra calls cost the default path 1.8 % more
instructions a MLP-ResNet step, so it was not kept.) Even when enabled it splits only on
the CPU, only passes of at least ``MIN_ELEMENTS`` elements, and never when
``OMP_NUM_THREADS=1`` or ``OPENBLAS_NUM_THREADS=1`` (the benchmarks' one-thread mode).
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
#: The smallest pass that is split (elements of its largest array); the figures above were
#: measured with 2^18 (2^20 before 2026-12-02).
MIN_ELEMENTS = 1 << 18

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
