"""Passes split across two threads (``backend_ndarray/parallel.py``) give exactly the values
of the one-thread pass: each half writes its own rows with the same arithmetic."""

import numpy as np
import pytest

import needle as ndl
from needle import nn, optim
from needle.backend_ndarray import parallel


@pytest.fixture
def split_everything(monkeypatch):
    """Split every pass, however small (the real threshold is a million elements)."""
    monkeypatch.setattr(parallel, "ENABLED", True)
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)


def _loss_and_grad(logits, labels, reduction):
    z = ndl.Tensor(logits, requires_grad=True)
    loss = ndl.ops.softmax_cross_entropy(z, labels, reduction)
    (loss if reduction != "none" else loss.sum()).backward()
    return loss.numpy(), z.grad.numpy()


@ndl.reference_mode(False)  # the fused op (reference mode runs the composition)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_softmax_cross_entropy_split_equals_one_pass(reduction, monkeypatch):
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((9, 7)).astype(np.float32), rng.integers(0, 7, 9)
    monkeypatch.setattr(parallel, "ENABLED", False)
    whole = _loss_and_grad(logits, labels, reduction)
    monkeypatch.setattr(parallel, "ENABLED", True)
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    split = _loss_and_grad(logits, labels, reduction)
    for a, b in zip(whole, split):
        np.testing.assert_array_equal(b, a)


def test_split_runs_half_on_the_worker_thread(split_everything):
    import threading

    seen = []
    parallel.over_rows(lambda lo, hi: seen.append((lo, hi, threading.get_ident())), 10, 10, np)
    assert sorted((lo, hi) for lo, hi, _ in seen) == [(0, 5), (5, 10)]
    assert len({thread for *_, thread in seen}) == 2


def test_no_split_when_disabled_small_or_not_numpy(monkeypatch):
    calls = []
    monkeypatch.setattr(parallel, "ENABLED", True)
    parallel.over_rows(lambda lo, hi: calls.append((lo, hi)), 10, 10, np)  # below the threshold
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    parallel.over_rows(lambda lo, hi: calls.append((lo, hi)), 10, 10, object())  # not numpy
    monkeypatch.setattr(parallel, "ENABLED", False)
    parallel.over_rows(lambda lo, hi: calls.append((lo, hi)), 10, 10, np)
    assert calls == [(0, 10)] * 3


def test_an_error_in_either_half_is_raised(split_everything):
    def fail_low(lo, hi):
        if lo == 0:
            raise ValueError("low half")

    with pytest.raises(ValueError, match="low half"):
        parallel.over_rows(fail_low, 4, 4, np)


@ndl.reference_mode(False)  # the flat rule
@pytest.mark.parametrize("make", [lambda p: optim.Adam(p, lr=0.01, weight_decay=0.01),
                                  lambda p: optim.SGD(p, lr=0.1, momentum=0.9)])
def test_optimiser_chunks_on_two_threads_equal_one_thread(make, monkeypatch):
    def trajectory():
        np.random.seed(0)
        model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
        opt = make(model.parameters())
        x = ndl.Tensor(np.random.rand(4, 6).astype(np.float32))
        for _ in range(3):
            opt.reset_grad()
            model(x).sum().backward()
            opt.step()
        return [p.numpy().copy() for p in model.parameters()]

    monkeypatch.setattr(optim, "CACHE_CHUNK", 4)  # 14 spans over 53 values
    monkeypatch.setattr(parallel, "ENABLED", False)
    whole = trajectory()
    monkeypatch.setattr(parallel, "ENABLED", True)
    monkeypatch.setattr(parallel, "MIN_ELEMENTS", 1)
    split = trajectory()
    for a, b in zip(whole, split):
        np.testing.assert_array_equal(b, a)


def test_compact_copy_split_equals_numpy(split_everything):
    """``NDArray.compact`` (every gather: im2col, permuted copies) copies rows on two
    threads; a strided window view comes out as numpy's contiguous copy."""
    a = np.arange(2 * 5 * 6 * 3, dtype=np.float32).reshape(2, 5, 6, 3)
    view = ndl.backend_ndarray.array(a).permute((0, 3, 1, 2))[:, :, ::2, 1:]
    compact = view.compact()
    assert compact.is_compact()
    np.testing.assert_array_equal(compact.numpy(), np.ascontiguousarray(
        a.transpose(0, 3, 1, 2)[:, :, ::2, 1:]))


@pytest.mark.parametrize("env, expected", [
    ({}, False),                                               # opt-in
    ({"NEEDLE_SECOND_CORE": "1"}, True),
    ({"NEEDLE_SECOND_CORE": "1", "OMP_NUM_THREADS": "1"}, False),  # one-thread mode
    ({"NEEDLE_SECOND_CORE": "1", "OPENBLAS_NUM_THREADS": "1"}, False),
])
def test_the_second_core_is_opt_in_and_off_in_one_thread_mode(env, expected, monkeypatch):
    for name in ("NEEDLE_SECOND_CORE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 2)
    assert parallel._allowed() is expected


@pytest.mark.parametrize("env, expected", [({"NEEDLE_SECOND_CORE": "1"}, "4"),
                                           ({"NEEDLE_SECOND_CORE": "1",
                                             "OPENBLAS_THREAD_TIMEOUT": "9"}, "9"),
                                           ({}, "None")])
def test_the_second_core_lets_openblas_idle_worker_sleep(env, expected):
    """With the second core on, ``import needle`` (before numpy) sets OpenBLAS's spin time
    short, unless the environment chose one; without it, it leaves the variable alone."""
    import os
    import subprocess
    import sys

    clean = {k: v for k, v in os.environ.items()
             if k not in ("NEEDLE_SECOND_CORE", "OPENBLAS_THREAD_TIMEOUT")}
    code = "import needle, os; print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'))"
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == expected
