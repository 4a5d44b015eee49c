"""Helpers shared by the benchmark scripts: a training-step closure, timing loops, profiles."""

from __future__ import annotations

import cProfile
import pstats
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # needle is imported by the caller (a torch-only process never loads it)
    import needle as ndl

CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def needle_blas() -> str:
    """The library needle's larger products run on in this process (``backend_ndarray/blas``:
    MKL when installed and BLAS has one thread, unless ``NEEDLE_BLAS`` says otherwise)."""
    from needle.backend_ndarray import blas
    return "MKL" if blas.available() else "numpy's OpenBLAS"


def training_step(model: ndl.nn.Module, opt: ndl.optim.Optimizer,
                  inputs: list[ndl.Tensor], labels: list[ndl.Tensor]) -> Callable[[], None]:
    """A closure running one training step (softmax loss, backward, optimiser step) on the
    next of the fixed batches, cycling through them as torch_ref does."""
    from needle.nn import SoftmaxLoss

    loss_fn = SoftmaxLoss()
    model.train()
    state = {"k": 0}

    def step() -> None:
        k = state["k"]
        state["k"] = (k + 1) % len(inputs)
        opt.reset_grad()
        loss_fn(model(inputs[k]), labels[k]).backward()
        opt.step()

    return step


def timer(clock: Callable[[], float]) -> Callable[..., list[float]]:
    """torch_ref's timing loop (warm-up steps, then one time per step) reading ``clock``."""
    def time_steps(step: Callable[[], Any], warmup: int, steps: int) -> list[float]:
        for _ in range(warmup):
            step()
        times = []
        for _ in range(steps):
            start = clock()
            step()
            times.append(clock() - start)
        return times

    return time_steps


def profile(step: Callable[[], Any], steps: int, warmup: int = 3,
            lines: int = 30) -> pstats.Stats:
    """cProfile of ``steps`` calls of ``step`` after ``warmup``; prints the top ``lines``."""
    for _ in range(warmup):
        step()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(lines)
    return stats
