"""Matrix products on Intel MKL when it is installed (the ``mkl`` extra), else numpy's.

Why: numpy's wheels link OpenBLAS, which on an AVX-512 Xeon runs the products that dominate
the language models' steps 1.1–1.8× slower than MKL, the BLAS PyTorch links (one thread,
best of four rounds: a (32, 256) @ (1024, 256)ᵀ recurrent product 0.30 ms against MKL's
0.17 ms; the LSTM decoder's (1120, 10000) @ (10000, 256) gradient product 54 → 44 ms). The
product is the same; only the library that computes it changes.

What: ``matmul(xp, a, b)`` is ``xp.matmul(a, b)``. For 2-D float32 or float64 operands whose
rows or columns are contiguous (any matrix or its transpose), and 3-D stacks of them with
one batch stride (or a 2-D operand broadcast over the batch), it is one ``cblas_?gemm``
(``cblas_?gemm_batch_strided``) call into MKL's ``libmkl_rt`` by ``ctypes``, writing a
fresh C-contiguous result (or ``out``). Everything else — other dtypes, other layouts,
products too small for the call's overhead to pay (``MIN_FLOPS``), a missing MKL — goes to
numpy.

When: ``NEEDLE_BLAS`` (read at import) is ``auto`` (the default), ``mkl`` or ``numpy``.
``auto`` calls MKL only on an Intel CPU and when BLAS runs on one thread
(``MKL_NUM_THREADS``, ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS`` is 1: the benchmarks'
steady mode, MPI ranks), and then on MKL's sequential layer, so no second thread pool exists.
With more threads MKL's OpenMP workers and numpy's OpenBLAS workers each spin on the other
core after their products (OpenMP 0.2 s, OpenBLAS 0.1 s: see ``parallel.py``) and fight for
it: the ResNet9 step (``bench/conv.py``, two threads, wall clock) measured 1.19–1.20× PyTorch on
OpenBLAS alone and 1.44–1.84× with MKL's threads beside it (1.31–1.39× against 1.32–1.68×
with OpenBLAS's spin cut short, ``OPENBLAS_THREAD_TIMEOUT=4``). ``mkl`` calls MKL with as
many threads as are set (else its default, the physical cores), its workers asleep 1 ms
after a product (``KMP_BLOCKTIME=1`` unless set): the language models' large products gain
(LSTM LM 1.53–1.60× → 1.40–1.46×, Transformer LM 1.39–1.44× → 1.31–1.41×), the
convolutions gain or lose by the run. ``numpy``, or ``ENABLED = False``, never calls MKL;
reference mode uses numpy's product too.

Why only on Intel's CPUs: on AMD's EPYC (AVX2, one thread, median of six alternating rounds)
OpenBLAS measured as fast or faster on every product the benchmarks run: the LSTM decoder's
(1120, 256) @ (256, 10000) 65.7 ms against MKL's 93.6 ms, its (1120, 10000) @ (10000, 256)
gradient 62.5 against 65.0 ms, the recurrent (32, 256) @ (256, 1024) 0.234 against 0.307 ms;
every benchmark step ran faster on OpenBLAS there (LSTM LM 1.11× → 1.04× PyTorch).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import sys
import warnings
from typing import Any

import numpy as np

from .. import reference

#: Products of fewer multiply-adds than this (the whole call, and each matrix of a stack)
#: go to numpy: MKL's call costs about 15 µs more than OpenBLAS's, and wins only from about
#: 2^23 multiply-adds, or 2^20 for each matrix of a stack (one thread: (128, 100) @ (100, 50)
#: 32 µs against 16 µs; 64 stacked (64, 32) @ (32, 64) 311 µs against 223 µs).
MIN_FLOPS, MIN_MATRIX_FLOPS = 1 << 23, 1 << 20

_ROW_MAJOR, _NO_TRANS, _TRANS, _SEQUENTIAL = 101, 111, 112, 1
_PACKED, _B_MATRIX = 151, 162  # CblasPacked, CblasBMatrix


def _find_mkl() -> str | None:
    """The path of ``libmkl_rt`` in this environment's ``lib`` (where the wheel puts it)."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found = sorted(glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*")))
        if found:
            return found[0]
    return None


def _blas_threads() -> str | None:
    """The BLAS thread count set in the environment, if any (MKL's own variable first)."""
    for name in ("MKL_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if os.environ.get(name):
            return os.environ[name]
    return None


@functools.cache
def _first_cpu() -> dict[str, str]:
    """Each field's first value in Linux's ``/proc/cpuinfo`` (the first CPU's), read once:
    ``blas`` and ``vml`` both ask at import; none where there is no such file."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                name, _, value = line.partition(":")
                fields.setdefault(name.strip(), value.strip())
    except OSError:
        pass
    return fields


def _cpuinfo(field: str) -> str | None:
    """The first CPU's ``field`` in Linux's ``/proc/cpuinfo``, or None where it does not say."""
    return _first_cpu().get(field)


def cpu_vendor() -> str | None:
    """The CPU's vendor as Linux's ``/proc/cpuinfo`` names it ("GenuineIntel",
    "AuthenticAMD"), or None where that file does not say."""
    return _cpuinfo("vendor_id")


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags in ``/proc/cpuinfo`` ("avx2", "avx512f", ...); empty where
    that file does not say."""
    return frozenset((_cpuinfo("flags") or "").split())


def _load() -> Any:
    """MKL's runtime library as ``NEEDLE_BLAS`` and the thread count ask, or None."""
    mode, threads = os.environ.get("NEEDLE_BLAS", "auto"), _blas_threads()
    if mode not in ("auto", "mkl", "numpy"):  # a warning: import needle must not fail
        warnings.warn(f"NEEDLE_BLAS must be auto, mkl or numpy, got {mode!r}: using auto",
                      stacklevel=2)
        mode = "auto"
    chosen_by_auto = threads == "1" and cpu_vendor() == "GenuineIntel"
    if mode == "numpy" or (mode == "auto" and not chosen_by_auto):
        return None
    return open_mkl(sequential=threads == "1")


def open_mkl(sequential: bool) -> Any:
    """``libmkl_rt`` with its gemm signatures declared (None where it is not installed), on
    its sequential layer or its OpenMP threads."""
    path = _find_mkl() if sys.platform.startswith("linux") else None
    if path is None:
        return None
    if not sequential:
        os.environ.setdefault("KMP_BLOCKTIME", "1")
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    threads = _blas_threads()
    if sequential:
        lib.MKL_Set_Threading_Layer(ctypes.c_int(_SEQUENTIAL))  # before any other MKL call
    elif threads and threads.isdigit() and int(threads) > 0:
        lib.MKL_Set_Num_Threads(ctypes.c_int(int(threads)))
    size, ptr = ctypes.c_int, ctypes.c_void_p
    for name, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
        gemm = getattr(lib, f"cblas_{name}gemm")
        gemm.argtypes = [size] * 6 + [real, ptr, size, ptr, size, real, ptr, size]
        gemm.restype = None
        batched = getattr(lib, f"cblas_{name}gemm_batch_strided")
        batched.argtypes = ([size] * 6 + [real, ptr, size, ctypes.c_longlong, ptr, size,
                                          ctypes.c_longlong, real, ptr, size, ctypes.c_longlong,
                                          size])
        batched.restype = None
    _declare_packing(lib)
    return lib


def _declare_packing(lib: Any) -> None:
    """The signatures of MKL's packed products (``Packed``); ``lib.packing`` says whether
    this MKL has them."""
    size, ptr = ctypes.c_int, ctypes.c_void_p
    try:
        lib.MKL_malloc.argtypes, lib.MKL_malloc.restype = [ctypes.c_size_t, size], ptr
        lib.MKL_free.argtypes, lib.MKL_free.restype = [ptr], None
        for name, real in (("s", ctypes.c_float), ("d", ctypes.c_double)):
            get_size = getattr(lib, f"cblas_{name}gemm_pack_get_size")
            get_size.argtypes, get_size.restype = [size] * 4, ctypes.c_size_t
            pack = getattr(lib, f"cblas_{name}gemm_pack")
            pack.argtypes, pack.restype = [size] * 6 + [real, ptr, size, ptr], None
            compute = getattr(lib, f"cblas_{name}gemm_compute")
            compute.argtypes = [size] * 6 + [ptr, size, ptr, size, real, ptr, size]
            compute.restype = None
        lib.packing = True
    except AttributeError:  # an MKL without them: products go unpacked
        lib.packing = False


_MKL = _load()
ENABLED = _MKL is not None


def available() -> bool:
    """True when MKL was found and loaded for this process's products."""
    return _MKL is not None


def layout(matrix: Any) -> tuple[int, int] | None:
    """(transpose flag, leading dimension) of a matrix's last two axes for row-major BLAS,
    or None when neither its rows nor its columns are contiguous, so no BLAS reads it in
    place (``NDArray.__matmul__`` then copies it for numpy too)."""
    item = matrix.itemsize
    rows, cols = matrix.shape[-2:]
    row_stride, col_stride = matrix.strides[-2:]
    if col_stride == item or cols == 1:
        lead = row_stride // item if rows > 1 else cols
        if lead >= max(cols, 1) and row_stride % item == 0:
            return _NO_TRANS, lead
    if row_stride == item or rows == 1:
        lead = col_stride // item if cols > 1 else rows
        if lead >= max(rows, 1) and col_stride % item == 0:
            return _TRANS, lead
    return None


def _batch_stride(array: Any, batch: int) -> int | None:
    """The stride, in elements, between a stack's matrices (0 for one broadcast matrix)."""
    if array.ndim == 2:
        return 0
    if array.shape[0] != batch:
        return None
    step = array.strides[0] // array.itemsize if batch > 1 else 0
    return step if step >= 0 else None


def _mkl_matmul(a: Any, b: Any, out: Any) -> Any:
    """a @ b by MKL, or None when the operands are not a shape MKL is called for."""
    if a.dtype != b.dtype or a.dtype not in (np.float32, np.float64) or \
            not (2 <= a.ndim <= 3 and 2 <= b.ndim <= 3):
        return None
    m, k = a.shape[-2:]
    n = b.shape[-1]
    batch = a.shape[0] if a.ndim == 3 else b.shape[0] if b.ndim == 3 else 1
    if m * n * k < MIN_MATRIX_FLOPS or m * n * k * batch < MIN_FLOPS or \
            any(x.strides[0] % x.itemsize for x in (a, b)):
        return None
    a_layout, b_layout = layout(a), layout(b)
    a_step, b_step = _batch_stride(a, batch), _batch_stride(b, batch)
    if a_layout is None or b_layout is None or a_step is None or b_step is None:
        return None
    shape = (batch, m, n) if max(a.ndim, b.ndim) == 3 else (m, n)
    if out is None:
        out = np.empty(shape, a.dtype)
    elif out.shape != shape or out.dtype != a.dtype or not out.flags.c_contiguous or \
            np.may_share_memory(out, a) or np.may_share_memory(out, b):
        return None  # numpy buffers an out that overlaps an operand; gemm would not
    kind = "s" if a.dtype == np.float32 else "d"
    args = (_ROW_MAJOR, a_layout[0], b_layout[0], m, n, k, 1.0)
    if len(shape) == 2:
        getattr(_MKL, f"cblas_{kind}gemm")(*args, a.ctypes.data, a_layout[1], b.ctypes.data,
                                           b_layout[1], 0.0, out.ctypes.data, n)
    else:
        getattr(_MKL, f"cblas_{kind}gemm_batch_strided")(
            *args, a.ctypes.data, a_layout[1], a_step, b.ctypes.data, b_layout[1], b_step,
            0.0, out.ctypes.data, n, m * n, batch)
    return out


def _mkl_for(xp: Any) -> bool:
    """Whether products on the array module ``xp`` may go to MKL now."""
    return ENABLED and xp is np and not reference.is_reference_mode()


def matmul(xp: Any, a: Any, b: Any, out: Any = None) -> Any:
    """``xp.matmul(a, b, out=out)`` for the array module ``xp``, by MKL where it is loaded,
    ``xp`` is numpy and the operands allow."""
    if _mkl_for(xp):
        product = _mkl_matmul(a, b, out)
        if product is not None:
            return product
    return xp.matmul(a, b) if out is None else xp.matmul(a, b, out=out)


class Packed:
    """The right operand b of many products ``a @ b`` with the same b and a of the same
    shape (an LSTM's recurrent weight, once a time step), packed once by MKL into the
    layout its kernel reads (``cblas_?gemm_pack``; each product is ``cblas_?gemm_compute``),
    so that the products do not each copy b again. One thread, a (32, 256) @ (256, 1024)
    product: 245–261 → 121–172 µs; (32, 1024) @ (1024, 256)ᵀ: 265–286 → 179–186 µs.

    ``packed(a)`` is ``matmul(xp, a, b)``: by the packed b where MKL is used (``is_packed``)
    and a is a (rows, k) matrix of b's dtype with contiguous rows or columns, else as
    ``matmul`` does. Use it as a context manager: leaving it frees MKL's packed copy."""

    def __init__(self, xp: Any, b: Any, rows: int):
        self.xp, self.b, self.rows = xp, b, rows
        self._buffer, self._kind = None, "s" if b.dtype == np.float32 else "d"
        k, n = b.shape
        b_layout = layout(b) if b.ndim == 2 else None
        self._ldb = b_layout[1] if b_layout else 0
        if b_layout is not None and _mkl_for(xp) and _MKL.packing and \
                b.dtype in (np.float32, np.float64) and rows * k * n >= MIN_FLOPS:
            self._buffer = _MKL.MKL_malloc(self._call("pack_get_size", _B_MATRIX, rows, n, k),
                                           64)
            if self._buffer is not None:  # None where MKL could not allocate it
                self._call("pack", _ROW_MAJOR, _B_MATRIX, b_layout[0], rows, n, k, 1.0,
                           b.ctypes.data, b_layout[1], self._buffer)

    @property
    def is_packed(self) -> bool:
        return self._buffer is not None

    def _call(self, name: str, *args: Any) -> Any:
        return getattr(_MKL, f"cblas_{self._kind}gemm_{name}")(*args)

    def __call__(self, a: Any) -> Any:
        a_layout = layout(a) if self.is_packed and a.ndim == 2 else None
        if a_layout is None or a.dtype != self.b.dtype or a.shape != (self.rows,
                                                                      self.b.shape[0]):
            return matmul(self.xp, a, self.b)
        (m, k), n = a.shape, self.b.shape[1]
        out = np.empty((m, n), a.dtype)
        self._call("compute", _ROW_MAJOR, a_layout[0], _PACKED, m, n, k, a.ctypes.data,
                   a_layout[1], self._buffer, self._ldb, 0.0, out.ctypes.data, n)
        return out

    def close(self) -> None:
        """Free MKL's packed copy (products after this go the unpacked way)."""
        if self._buffer is not None and _MKL is not None:
            _MKL.MKL_free(self._buffer)
            self._buffer = None

    def __enter__(self) -> Packed:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()
