"""e^x over large arrays by MKL's vector math (``vsExp``, ``vdExp``) where it is installed.

Why: numpy's float32 e^x takes 1.3–1.6 ns an element on an AVX2 CPU (AMD EPYC, one thread),
MKL's 1.0–1.05 ns, with the same accuracy (relative error 6e-8 against float64; numpy's
2e-7). The softmax cross-entropy of the LSTM LM's (1120, 10000) logits takes e^z of 11.2 M
elements a step, in cache-sized row blocks of 130,000: its forward 22.4 -> 18.2 ms (14.7 ms
without the range check below). On the
AVX-512 Xeon where numpy's e^x is vectorised the gain measured about 1.1× for large
arrays, and MKL lost on small ones (8,192 elements: 9.7 against 4.5 µs: the call's cost),
so only arrays from ``MIN_ELEMENTS`` go to MKL.

What: ``exp(xp, a, out)`` is ``xp.exp(a, out=out)``; by ``v?Exp`` for numpy float32 or
float64 arrays, C-contiguous, of ``MIN_ELEMENTS`` or more, whose every e^x is a normal
float (``NORMAL_RESULTS``), when MKL is loaded. The softmax cross-entropy's forward calls
it (``fused.softmax_cross_entropy``); ``NDArray.exp`` does not: an attention mask's -inf
sends every masked block back to numpy after two wasted reductions (run through MKL
unchecked, the Transformer LM's step went 0.97x -> 1.13x PyTorch).

When: as ``blas.py``'s ``auto`` for the library, but on Intel's CPUs and on any without
AVX-512 (``faster_than_numpy``; an AMD EPYC with AVX-512 runs numpy's e^x 2.5x faster than
MKL's): with one BLAS thread (MKL's sequential layer), the ``mkl`` extra installed, not in
reference mode, unless ``NEEDLE_VML=0`` (or ``ENABLED = False``).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

import numpy as np

from .. import reference
from . import blas

#: Arrays of fewer elements go to numpy (MKL's call costs a few µs more).
MIN_ELEMENTS = 1 << 16


def open_vml() -> Any:
    """MKL's runtime on its sequential layer with ``v?Exp`` declared (None where it is not
    installed)."""
    lib = blas.open_mkl(sequential=True)
    if lib is None:
        return None
    for name in ("vsExp", "vdExp"):
        function = getattr(lib, name)
        function.argtypes = [ctypes.c_longlong, ctypes.c_void_p, ctypes.c_void_p]
        function.restype = None
    return lib


def faster_than_numpy() -> bool:
    """Whether MKL's e^x beats numpy's on this CPU: on an Intel CPU and on one without
    AVX-512, not on an AMD CPU with it, where numpy's float32 e^x runs on AVX-512 and MKL's
    does not (an AMD EPYC with AVX-512, 131,072 elements: numpy 65-76 us, MKL 175-185)."""
    return blas.cpu_vendor() == "GenuineIntel" or "avx512f" not in blas.cpu_flags()


def _load() -> Any:
    """``open_vml()`` with one BLAS thread where it is ``faster_than_numpy()``, unless
    ``NEEDLE_VML=0``."""
    if os.environ.get("NEEDLE_VML", "1") == "0" or blas._blas_threads() != "1" or \
            not faster_than_numpy():
        return None
    return open_vml()


_MKL = _load()
ENABLED = _MKL is not None


def _by_mkl(xp: Any, a: Any, out: Any) -> bool:
    return (ENABLED and xp is np and not reference.is_reference_mode()
            and a.size >= MIN_ELEMENTS and a.dtype in (np.float32, np.float64)
            and out.dtype == a.dtype and out.shape == a.shape
            and a.flags.c_contiguous and out.flags.c_contiguous)


#: The x whose e^x is a normal float (neither overflowing nor underflowing into subnormals
#: or 0), by dtype. MKL's e^x is 30-140x slower on the others: 262,144 elements at -100 took
#: 50 ms against numpy's 0.9 ms, at +100 38 ms against 0.4 ms, so an array with any x outside
#: goes to numpy (an attention mask's -inf, a saturated logit). Checking costs two reductions
#: (22 us each for those 262,144 elements, against 270 us for e^x).
NORMAL_RESULTS = {np.dtype(np.float32): (-87.0, 88.0), np.dtype(np.float64): (-708.0, 709.0)}


def exp(xp: Any, a: Any, out: Any) -> Any:
    """``xp.exp(a, out=out)``: e^x elementwise into ``out``, by MKL where it is loaded, the
    arrays allow and every result is a normal float (``out`` may be ``a``)."""
    if not _by_mkl(xp, a, out):
        return xp.exp(a, out=out)
    low, high = NORMAL_RESULTS[a.dtype]
    if not (a.min() >= low and a.max() <= high):  # NaN too
        return xp.exp(a, out=out)
    function = _MKL.vsExp if a.dtype == np.float32 else _MKL.vdExp
    function(a.size, a.ctypes.data, out.ctypes.data)
    return out
