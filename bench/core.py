"""Core benchmark: BLAS throughput through the autograd engine, and per-op overhead.

    python bench/core.py            # from the repository root (PYTHONPATH=. in a worktree)

(a) C = A @ B for 1024×1024 float32 matrices, forward and backward (dA = G Bᵀ, dB = Aᵀ G):
    three 1024³ products through needle's Tensor, raw numpy and PyTorch; GFLOP/s and the
    ratio needle / numpy (target >= 95 %).
(b) A chain of 100 elementwise ops (cycling y*w, y+b, tanh y, 0.9 y) on 1-element tensors,
    forward + backward, in needle and PyTorch eager; microseconds per op and the ratio
    needle / PyTorch (target <= 2.0).

Each figure is the median over several timed rounds after a warm-up, all measured in one run
with the frameworks taking turns in each round.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import blas_idle  # noqa: F401  (before numpy: OpenBLAS's idle thread must sleep)
import numpy as np
import torch

import needle as ndl
from common import needle_blas


def median_seconds(steps: dict[str, Callable[[], Any]], repeat: int,
                   number: int) -> dict[str, float]:
    """Per step, the median over ``repeat`` rounds of the mean time of ``number`` calls.

    The steps take turns within each round, so a load change on a shared machine hits all
    of them alike, and the order rotates from round to round, so none always runs right
    after another framework's threads (each is warmed up once first)."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():
        step()
    names = list(steps)
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:  # each leads in turn
            step = steps[name]
            start = time.perf_counter()
            for _ in range(number):
                step()
            times[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(values) for name, values in times.items()}


# ---------------------------------------------------------------------------- (a) matmul
def matmul_steps(n: int) -> dict[str, Callable[[], Any]]:
    """One forward+backward of C = A @ B per framework, on the same float32 data."""
    rng = np.random.default_rng(0)
    a, b, g = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(3))

    def numpy_step() -> Any:
        return a @ b, g @ b.T, a.T @ g

    lhs, rhs = ndl.Tensor(a), ndl.Tensor(b)
    out_grad = ndl.Tensor(g, requires_grad=False)

    def needle_step() -> Any:
        (lhs @ rhs).backward(out_grad)
        return lhs.grad, rhs.grad

    torch_lhs = torch.tensor(a, requires_grad=True)
    torch_rhs = torch.tensor(b, requires_grad=True)
    torch_g = torch.tensor(g)

    def torch_step() -> Any:
        torch_lhs.grad = torch_rhs.grad = None
        (torch_lhs @ torch_rhs).backward(torch_g)
        return torch_lhs.grad, torch_rhs.grad

    return {"numpy": numpy_step, "needle": needle_step, "torch": torch_step}


def bench_matmul(n: int, repeat: int) -> None:
    flops = 3 * 2 * n ** 3
    steps = matmul_steps(n)
    # torch's two OpenMP threads stay busy a moment after each of its steps and slowed the
    # step after it, so numpy and needle take turns first and torch is timed on its own
    torch_step = {"torch": steps.pop("torch")}
    seconds = {**median_seconds(steps, repeat, number=1),
               **median_seconds(torch_step, repeat, number=1)}
    print(f"(a) {n}x{n}x{n} float32 matmul, forward + backward (3 products, "
          f"{flops / 1e9:.1f} GFLOP)")
    for name, s in seconds.items():
        print(f"    {name:7s} {s * 1e3:8.2f} ms   {flops / s / 1e9:7.1f} GFLOP/s")
    print(f"    needle / numpy throughput: {seconds['numpy'] / seconds['needle']:.1%} "
          "(target >= 95 %)")
    print(f"    needle / torch throughput: {seconds['torch'] / seconds['needle']:.1%}")


# ---------------------------------------------------------------------------- (b) overhead
def chain_op(i: int, y: Any, w: Any, b: Any) -> Any:
    """The i-th op of the chain, the same code for needle and PyTorch tensors."""
    kind = i % 4
    if kind == 0:
        return y * w
    if kind == 1:
        return y + b
    if kind == 2:
        return y.tanh()
    return y * 0.9


def needle_chain(length: int) -> Callable[[], Any]:
    x, w, b = (ndl.Tensor([v]) for v in (0.5, 1.1, 0.1))

    def step() -> Any:
        y = x
        for i in range(length):
            y = chain_op(i, y, w, b)
        y.backward()  # assigns fresh gradients: nothing to reset
        return x.grad

    return step


def torch_chain(length: int) -> Callable[[], Any]:
    x, w, b = (torch.tensor([v], requires_grad=True) for v in (0.5, 1.1, 0.1))

    def step() -> Any:
        x.grad = w.grad = b.grad = None
        y = x
        for i in range(length):
            y = chain_op(i, y, w, b)
        y.backward()
        return x.grad

    return step


def bench_overhead(length: int, repeat: int, number: int) -> None:
    seconds = median_seconds({"needle": needle_chain(length), "torch": torch_chain(length)},
                             repeat, number)
    needle_s, torch_s = seconds["needle"], seconds["torch"]
    print(f"(b) chain of {length} elementwise ops on 1-element tensors, forward + backward")
    print(f"    needle  {needle_s * 1e3:8.3f} ms   {needle_s / length * 1e6:6.2f} us/op")
    print(f"    torch   {torch_s * 1e3:8.3f} ms   {torch_s / length * 1e6:6.2f} us/op")
    print(f"    needle / torch time: {needle_s / torch_s:.2f}x (target <= 2.0x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="matmul size n (n×n×n)")
    parser.add_argument("--chain", type=int, default=100, help="ops in the overhead chain")
    parser.add_argument("--repeat", type=int, default=11, help="timed rounds per figure")
    args = parser.parse_args()
    print(f"numpy {np.__version__}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), needle {ndl.__version__} (its products on "
          f"{needle_blas()})")
    bench_matmul(args.size, args.repeat)
    bench_overhead(args.chain, args.repeat, number=50)


if __name__ == "__main__":
    main()
