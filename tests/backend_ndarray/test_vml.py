"""e^x by MKL's vector math (``backend_ndarray/vml.py``) equals numpy's to rounding, and
only large contiguous float arrays go to MKL."""

import numpy as np
import pytest

import needle as ndl
from needle.backend_ndarray import vml

MKL = vml._MKL or vml.open_vml()  # loaded whatever the thread count
needs_mkl = pytest.mark.skipif(MKL is None, reason="MKL (the mkl extra) not installed")


@pytest.fixture
def counted(monkeypatch):
    """vml with MKL on, counting the elements its calls were given."""
    calls = []

    class Counting:
        def __getattr__(self, name):
            real = getattr(MKL, name)
            return lambda n, a, out: calls.append((name, n)) or real(n, a, out)

    monkeypatch.setattr(vml, "_MKL", Counting())
    monkeypatch.setattr(vml, "ENABLED", True)
    return calls


@needs_mkl
@ndl.reference_mode(False)  # reference mode never calls MKL (NEEDLE_REFERENCE=1 runs)
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 4e-7), (np.float64, 1e-15)])
@pytest.mark.parametrize("size", [vml.MIN_ELEMENTS, 3 * vml.MIN_ELEMENTS + 7])
def test_mkl_exp_equals_float64_exp(counted, dtype, rtol, size):
    a = (np.random.default_rng(size).standard_normal(size) * 10).astype(dtype)
    out = np.empty_like(a)
    assert vml.exp(np, a, out) is out
    np.testing.assert_allclose(out, np.exp(a.astype(np.float64)), rtol=rtol)
    assert counted == [("vsExp" if dtype == np.float32 else "vdExp", size)]


@needs_mkl
@ndl.reference_mode(False)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_place_at_the_edges_of_normal_results(counted, dtype):
    low, high = vml.NORMAL_RESULTS[np.dtype(dtype)]
    a = np.linspace(low, high, vml.MIN_ELEMENTS, dtype=dtype)
    expected = np.exp(a.astype(np.float64))
    vml.exp(np, a, a)
    np.testing.assert_allclose(a, expected, rtol=4e-7 if dtype == np.float32 else 1e-15)
    assert len(counted) == 1


@needs_mkl
@ndl.reference_mode(False)  # so that only the range sends these arrays to numpy
@pytest.mark.parametrize("outside", [-np.inf, -100.0, 100.0, np.nan])
def test_results_that_are_not_normal_floats_go_to_numpy(counted, outside):
    # MKL is 30-140x slower where e^x over- or underflows: one such x sends the array away
    a = np.random.default_rng(0).standard_normal(vml.MIN_ELEMENTS).astype(np.float32)
    a[123] = outside
    out = np.empty_like(a)
    with np.errstate(over="ignore"):
        vml.exp(np, a, out)
        np.testing.assert_array_equal(out, np.exp(a))
    assert counted == []


@needs_mkl
@pytest.mark.parametrize("case", ["small", "strided", "int", "reference"])
def test_everything_else_goes_to_numpy(counted, case):
    n = vml.MIN_ELEMENTS
    a = np.random.default_rng(0).standard_normal(2 * n).astype(np.float32)
    a = {"small": a[:n - 1], "strided": a[::2], "int": np.arange(n) % 50}.get(case, a)
    out = np.empty(a.shape, np.float64 if case == "int" else a.dtype)
    if case == "reference":
        with ndl.reference_mode():
            vml.exp(np, a, out)
    else:
        vml.exp(np, a, out)
    np.testing.assert_allclose(out, np.exp(a), rtol=1e-6)
    assert counted == []


@needs_mkl
@pytest.mark.parametrize("vendor, flags, loads", [
    ("GenuineIntel", {"avx2", "avx512f"}, True),   # the Xeon: MKL 1.1x numpy
    ("AuthenticAMD", {"avx2"}, True),              # the AVX2 EPYC: 1.0 against 1.3-1.6 ns
    ("AuthenticAMD", {"avx2", "avx512f"}, False),  # the AVX-512 EPYC: MKL 2.5x slower
    (None, frozenset(), True),
])
def test_mkl_exp_is_loaded_where_it_beats_numpy(monkeypatch, vendor, flags, loads):
    monkeypatch.delenv("NEEDLE_VML", raising=False)
    monkeypatch.setattr(vml.blas, "_blas_threads", lambda: "1")
    monkeypatch.setattr(vml.blas, "cpu_vendor", lambda: vendor)
    monkeypatch.setattr(vml.blas, "cpu_flags", lambda: frozenset(flags))
    assert (vml._load() is not None) == loads
    monkeypatch.setenv("NEEDLE_VML", "0")
    assert vml._load() is None
