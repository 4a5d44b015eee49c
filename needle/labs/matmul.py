"""The matmul speed ladder: a 5x784 by 784x10 product five ways, from Python loops to BLAS.

fast.ai's "from the foundations" (lesson 8) on needle Tensors: three nested Python loops
over elements, one loop level replaced by an elementwise row * column product, then by
broadcasting a row against the whole matrix, then ``ndl.einsum("ik,kj->ij")`` and finally
``@``. The notebook measured 835 ms -> 1.39 ms -> 254 us -> 57 us -> 18 us on PyTorch
tensors (about 49,000x). All five results must equal numpy's product (to 1e-4).

Results: ``ms_loops``, ``ms_elementwise``, ``ms_broadcast``, ``ms_einsum``, ``ms_matmul``
(median wall-clock milliseconds), ``speedup_loops_to_matmul`` and ``max_abs_diff`` over the
five results. Figure: ``matmul_ladder.png``.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable

import numpy as np

import needle as ndl

from . import common

NOTEBOOK_MS = {"loops": 835.0, "elementwise": 1.39, "broadcast": 0.254, "einsum": 0.057,
               "matmul": 0.018}


def matmul_loops(a: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    """c[i, j] = sum_k a[i, k] b[k, j]: three Python loops over Tensor elements."""
    (ar, ac), (_, bc) = a.shape, b.shape
    rows = []
    for i in range(ar):
        row = []
        for j in range(bc):
            total = a[i, 0] * b[0, j]
            for k in range(1, ac):
                total = total + a[i, k] * b[k, j]
            row.append(total)
        rows.append(ndl.stack(row))
    return ndl.stack(rows)


def matmul_elementwise(a: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    """c[i, j] = (a[i, :] * b[:, j]).sum(): the inner loop as one elementwise product."""
    return ndl.stack([ndl.stack([(a[i, :] * b[:, j]).sum() for j in range(b.shape[1])])
                      for i in range(a.shape[0])])


def matmul_broadcast(a: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    """c[i] = (a[i, :, None] * b).sum(0): one row broadcast against all of b."""
    return ndl.stack([(ndl.broadcast_to(a[i, :].reshape((-1, 1)), b.shape) * b).sum(0)
                      for i in range(a.shape[0])])


def matmul_einsum(a: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    return ndl.einsum("ik,kj->ij", a, b)


def matmul_blas(a: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    return a @ b


WAYS: dict[str, Callable[[ndl.Tensor, ndl.Tensor], ndl.Tensor]] = {
    "loops": matmul_loops, "elementwise": matmul_elementwise, "broadcast": matmul_broadcast,
    "einsum": matmul_einsum, "matmul": matmul_blas}


def time_ms(fn: Callable[[], ndl.Tensor], repeats: int) -> tuple[float, ndl.Tensor]:
    """The median wall-clock time of ``fn()`` in milliseconds (after a warm-up call when
    ``repeats`` > 1) and its result."""
    result = fn() if repeats > 1 else None
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    assert result is not None
    return statistics.median(times) * 1e3, result


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    try:  # the notebook multiplies MNIST images by a weight matrix
        images = common.load_mnist(data_dir)[0][:5].reshape(5, 784)
    except FileNotFoundError:
        images = np.random.rand(5, 784).astype(np.float32)
    weights = np.random.randn(784, 10).astype(np.float32)
    a, b = (ndl.Tensor(v, requires_grad=False) for v in (images, weights))
    want = images.astype(np.float64) @ weights.astype(np.float64)
    repeats = {"loops": 1 if quick else 3, "elementwise": 5, "broadcast": 50, "einsum": 500,
               "matmul": 500}
    results: dict[str, float] = {}
    diffs = []
    with ndl.no_grad():
        for name, fn in WAYS.items():
            ms, product = time_ms(lambda: fn(a, b), repeats[name])
            results[f"ms_{name}"] = ms
            diffs.append(float(np.abs(product.numpy() - want).max()))
    results["speedup_loops_to_matmul"] = results["ms_loops"] / results["ms_matmul"]
    results["max_abs_diff"] = max(diffs)
    _print_ladder(results)
    _plot(results, os.path.join(out, "matmul_ladder.png"))
    return results


def _print_ladder(results: dict[str, float]) -> None:
    print("way           needle          notebook (PyTorch)")
    for name in WAYS:
        print(f"{name:<12}{results[f'ms_{name}']:>10.4g} ms   {NOTEBOOK_MS[name]:>8.4g} ms")
    print(f"loops -> @: {results['speedup_loops_to_matmul']:,.0f}x (notebook "
          f"{NOTEBOOK_MS['loops'] / NOTEBOOK_MS['matmul']:,.0f}x)")


def _plot(results: dict[str, float], path: str) -> None:
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    names = list(WAYS)
    x = np.arange(len(names))
    ax.bar(x - 0.2, [results[f"ms_{n}"] for n in names], 0.4, label="needle (this machine)")
    ax.bar(x + 0.2, [NOTEBOOK_MS[n] for n in names], 0.4, label="notebook (PyTorch)")
    ax.set_yscale("log")
    ax.set_xticks(x, names)
    ax.set_ylabel("milliseconds (log)")
    ax.set_title("5x784 @ 784x10")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
