"""Products on MKL (``backend_ndarray/blas.py``) equal numpy's for every operand layout MKL
is called for; every other layout, dtype or size goes to numpy; the switches work."""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import needle as ndl
from needle import backend_ndarray as nd
from needle.backend_ndarray import blas

MKL = blas._MKL or blas.open_mkl(sequential=True)  # loaded whatever the thread count
needs_mkl = pytest.mark.skipif(MKL is None, reason="MKL (the mkl extra) not installed")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(autouse=True)
def mkl_on(monkeypatch):
    """MKL on for these tests, as NEEDLE_BLAS=auto turns it on with one BLAS thread."""
    monkeypatch.setattr(blas, "_MKL", MKL)
    monkeypatch.setattr(blas, "ENABLED", MKL is not None)


@pytest.fixture
def every_size(monkeypatch):
    """Call MKL for products of any size (the real thresholds are 2^23 and 2^20)."""
    monkeypatch.setattr(blas, "MIN_FLOPS", 1)
    monkeypatch.setattr(blas, "MIN_MATRIX_FLOPS", 1)


def _operand(draw, rows, cols, dtype, batch=None):
    """A (batch,) rows x cols array in one of the layouts BLAS reads in place: C order, a
    transpose, or a slice of a wider (or taller) array."""
    layout = draw(st.sampled_from(["c", "transposed", "sliced rows", "sliced columns"]))
    lead = () if batch is None else (batch,)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if layout == "c":
        return rng.standard_normal(lead + (rows, cols)).astype(dtype)
    if layout == "transposed":
        return np.swapaxes(rng.standard_normal(lead + (cols, rows)).astype(dtype), -1, -2)
    extra = draw(st.integers(1, 3))
    if layout == "sliced rows":  # rows contiguous, leading dimension > cols
        return rng.standard_normal(lead + (rows, cols + extra)).astype(dtype)[..., :cols]
    wide = rng.standard_normal(lead + (cols, rows + extra)).astype(dtype)[..., :rows]
    return np.swapaxes(wide, -1, -2)  # columns contiguous, leading dimension > rows


def operands(rows, cols, dtype):
    """A strategy for ``_operand``'s matrices."""
    return st.composite(lambda draw: _operand(draw, rows, cols, dtype))()


@st.composite
def products(draw):
    m, k, n = (draw(st.integers(1, 9)) for _ in range(3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["2-D", "3-D", "2-D @ 3-D", "3-D @ 2-D"]))
    batch = draw(st.integers(1, 4))
    a = _operand(draw, m, k, dtype, batch if kind in ("3-D", "3-D @ 2-D") else None)
    b = _operand(draw, k, n, dtype, batch if kind in ("3-D", "2-D @ 3-D") else None)
    return a, b


@needs_mkl
@settings(max_examples=150, deadline=None,  # the fixtures only set module constants
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(products())
def test_mkl_product_equals_numpys(every_size, ab):
    a, b = ab
    product = blas._mkl_matmul(a, b, None)
    assert product is not None, (a.shape, a.strides, b.shape, b.strides)
    expected = np.matmul(a.astype(np.float64), b.astype(np.float64))
    assert product.shape == expected.shape and product.dtype == a.dtype
    tol = 1e-5 if a.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(product, expected, rtol=tol, atol=tol)


@needs_mkl
def test_mkl_writes_into_out_and_refuses_an_unfit_one(every_size):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 4))
    out = np.full((5, 4), np.nan)
    assert blas.matmul(np, a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12)
    strided = np.zeros((5, 8))[:, ::2]  # not C-contiguous: numpy writes it
    assert blas._mkl_matmul(a, b, strided) is None
    blas.matmul(np, a, b, out=strided)
    np.testing.assert_allclose(strided, a @ b, rtol=1e-12)
    square = rng.standard_normal((4, 4))
    expected = square @ square
    assert blas._mkl_matmul(square, square, square) is None  # out is an operand: numpy
    np.testing.assert_allclose(blas.matmul(np, square, square, out=square), expected)


@needs_mkl
@pytest.mark.parametrize("case", ["int", "mixed dtypes", "float16", "1-D", "4-D",
                                  "stride-0 rows", "every other column", "reversed rows",
                                  "batches differ"])
def test_layouts_mkl_cannot_read_go_to_numpy(every_size, case):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 5))
    a, b = {"int": (a.astype(int), b.astype(int)),
            "mixed dtypes": (a.astype(np.float32), b),
            "float16": (a.astype(np.float16), b.astype(np.float16)),
            "1-D": (a, b[:, 0]),
            "4-D": (a[None, None], b[None, None]),
            "stride-0 rows": (np.broadcast_to(a[:1], (4, 3)), b),
            "every other column": (rng.standard_normal((4, 6))[:, ::2], b),
            "reversed rows": (a[::-1], b),
            "batches differ": (np.stack([a, a]), np.stack([b, b, b]))}[case]
    assert blas._mkl_matmul(a, b, None) is None
    if case != "batches differ":
        np.testing.assert_allclose(blas.matmul(np, a, b), np.matmul(a, b), rtol=1e-6)


@needs_mkl
def test_small_products_go_to_numpy():
    a, b = np.ones((128, 100), np.float32), np.ones((100, 50), np.float32)
    assert blas._mkl_matmul(a, b, None) is None  # 640,000 multiply-adds < 2^23
    stack = np.ones((64, 64, 32), np.float32), np.ones((64, 32, 64), np.float32)
    assert blas._mkl_matmul(*stack, None) is None  # 2^17 a matrix < 2^20
    a, b = np.ones((32, 256), np.float32), np.ones((256, 1024), np.float32)
    assert blas._mkl_matmul(a, b, None) is not None  # the LSTM's per-step product: 2^23



@needs_mkl
@ndl.reference_mode(False)  # reference mode never packs
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_packed_products_equal_numpys_for_every_layout(every_size, data):
    m, k, n = (data.draw(st.integers(1, 9)) for _ in range(3))
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    b = data.draw(operands(k, n, dtype))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    with blas.Packed(np, b, m) as times_b:
        assert times_b.is_packed
        for _ in range(3):  # one packing, several products
            a = data.draw(operands(m, k, dtype))
            product = times_b(a)
            assert product.shape == (m, n) and product.dtype == dtype
            np.testing.assert_allclose(product, a.astype(np.float64) @ b.astype(np.float64),
                                       rtol=tol, atol=tol)


@needs_mkl
@ndl.reference_mode(False)  # reference mode never packs
@pytest.mark.parametrize("case", ["other rows", "other dtype", "1-D", "closed"])
def test_packed_products_mkl_cannot_take_go_unpacked(every_size, case):
    rng = np.random.default_rng(3)
    b = rng.standard_normal((3, 5))
    a = {"other rows": rng.standard_normal((2, 3)), "other dtype": np.ones((4, 3), np.float32),
         "1-D": rng.standard_normal(3), "closed": rng.standard_normal((4, 3))}[case]
    times_b = blas.Packed(np, b, 4)
    assert times_b.is_packed
    if case == "closed":
        times_b.close()
        assert not times_b.is_packed
    np.testing.assert_allclose(times_b(a), np.matmul(a, b), rtol=1e-6)
    times_b.close()


@needs_mkl
@ndl.reference_mode(False)  # reference mode never packs
def test_packing_is_off_where_products_go_to_numpy(monkeypatch):
    b = np.ones((256, 1024), np.float32)
    assert blas.Packed(np, b, 32).is_packed  # the LSTM's recurrent weight: 2^23
    assert not blas.Packed(np, np.ones((100, 50), np.float32), 128).is_packed  # too small
    assert not blas.Packed(np, b.astype(np.float16), 32).is_packed
    assert not blas.Packed(np, b[:, ::2], 32).is_packed  # no contiguous rows or columns
    with ndl.reference_mode(True):
        assert not blas.Packed(np, b, 32).is_packed
    monkeypatch.setattr(blas, "ENABLED", False)
    times_b = blas.Packed(np, b, 32)
    assert not times_b.is_packed
    np.testing.assert_allclose(times_b(np.ones((32, 256), np.float32)), np.full((32, 1024), 256))

@needs_mkl
def test_ndarray_matmul_runs_on_mkl_and_reference_mode_on_numpy(monkeypatch):
    calls = []
    real = blas._mkl_matmul

    def spy(a, b, out):
        calls.append(a.shape)
        return real(a, b, out)
    monkeypatch.setattr(blas, "_mkl_matmul", spy)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((256, 256)), rng.standard_normal((256, 256))
    x, y = nd.NDArray(a, dtype="float32"), nd.NDArray(b, dtype="float32")
    with ndl.reference_mode(False):
        fast = (x @ y).numpy()
    assert calls == [(256, 256)]
    with ndl.reference_mode():
        plain = (x @ y).numpy()
    assert calls == [(256, 256)]
    np.testing.assert_allclose(fast, plain, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(fast, a @ b, rtol=1e-4, atol=1e-3)


def _in_a_new_process(code, **env):
    """``code`` run in a fresh Python with only ``env`` of the variables blas.py reads."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("NEEDLE_BLAS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                            "OPENBLAS_NUM_THREADS", "KMP_BLOCKTIME")}
    return subprocess.run([sys.executable, "-c", code], env={**environ, **env}, cwd=ROOT,
                          capture_output=True, text=True, check=True)


STATE = ("from needle.backend_ndarray import blas; import os; print(blas.available(), "
         "blas._MKL.MKL_Get_Max_Threads() if blas._MKL else '-', "
         "os.environ.get('KMP_BLOCKTIME', '-'))")


INTEL = blas.cpu_vendor() == "GenuineIntel"
AUTO_ONE_THREAD = ["True", "1", "-"] if INTEL else ["False", "-", "-"]  # sequential MKL


@needs_mkl
@pytest.mark.parametrize("env, state", [
    ({"OPENBLAS_NUM_THREADS": "1"}, AUTO_ONE_THREAD),   # auto, one thread: MKL on Intel's
    ({"OMP_NUM_THREADS": "1"}, AUTO_ONE_THREAD),
    ({"MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "2"}, AUTO_ONE_THREAD),
    ({}, ["False", "-", "-"]),                              # auto, all threads: OpenBLAS only
    ({"OPENBLAS_NUM_THREADS": "2"}, ["False", "-", "-"]),
    ({"NEEDLE_BLAS": "mkl", "OPENBLAS_NUM_THREADS": "2"}, ["True", "2", "1"]),
    ({"NEEDLE_BLAS": "numpy", "OPENBLAS_NUM_THREADS": "1"}, ["False", "-", "-"]),
])
def test_needle_blas_and_the_thread_count_choose_the_library(env, state):
    assert _in_a_new_process(STATE, **env).stdout.split() == state


def test_an_unknown_needle_blas_warns_and_means_auto():
    out = _in_a_new_process(STATE, NEEDLE_BLAS="openblas", MKL_NUM_THREADS="1")
    assert "NEEDLE_BLAS must be auto, mkl or numpy, got 'openblas': using auto" in out.stderr
    assert out.stdout.split()[0] == str(MKL is not None and INTEL)  # auto with one thread


@needs_mkl
@pytest.mark.parametrize("vendor, loads", [("GenuineIntel", True), ("AuthenticAMD", False),
                                           (None, False)])
def test_auto_calls_mkl_only_on_intel_cpus(monkeypatch, vendor, loads):
    for name in ("NEEDLE_BLAS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(blas, "cpu_vendor", lambda: vendor)
    assert (blas._load() is not None) == loads


def test_the_cpu_vendor_is_read_from_proc_cpuinfo():
    try:
        with open("/proc/cpuinfo") as info:
            vendors = {line.split(":")[1].strip() for line in info
                       if line.startswith("vendor_id")}
    except OSError:
        vendors = set()
    assert blas.cpu_vendor() == (vendors.pop() if vendors else None)


def test_the_cpu_flags_are_read_from_proc_cpuinfo():
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":")[1].split() for line in info
                          if line.startswith("flags")), [])
    except OSError:
        flags = []
    assert blas.cpu_flags() == frozenset(flags)
