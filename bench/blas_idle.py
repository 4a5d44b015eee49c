"""Imported before numpy by the benchmarks that time needle and PyTorch in one process.

After every product, numpy's OpenBLAS keeps its idle worker thread spinning on the second
core for 2^28 cycles, about 0.1 s (its THREAD_TIMEOUT), so that the next product starts
without waking it. In a process shared with PyTorch that spinning thread holds the core
PyTorch's second thread needs: with the default, PyTorch's two-thread steps in
``bench/seq.py`` took 191-225 ms (LSTM LM) and 177-188 ms (Transformer LM); with 2^4
cycles, 144-166 and 139-147 ms, and needle's own steps were no slower. OpenBLAS reads
``OPENBLAS_THREAD_TIMEOUT`` once, when numpy loads it, hence an import before numpy's.
One-thread runs (``--threads 1``, OPENBLAS_NUM_THREADS=1) have no such thread.
"""

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
