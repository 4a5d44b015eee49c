"""The learner's tools, measured: profiler coverage and cost, anomaly mode's cost.

    python bench/tools.py            # from the repository root (PYTHONPATH=. in a worktree)

(a) ``ndl.profile()`` around MLP-ResNet training steps (784 -> 512 hidden, batch 256 and
    a digits-sized one): the sum of the table's rows against the block's wall time (target
    within 10 %), and the step time profiled / unprofiled.
(b) ``ndl.detect_anomaly()``: the same step with every op output and adjoint checked, as a
    ratio to the plain step (what the mode costs while on; off it costs nothing — the
    per-op overhead figure of bench/core.py is the check for that).

Each figure is the median over rounds in which the variants take turns.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any, Callable

import numpy as np

import needle as ndl
from needle import nn


def mlp_resnet_step(dim: int, hidden: int, batch: int) -> Callable[[], None]:
    np.random.seed(0)
    model = ndl.models.MLPResNet(dim, hidden_dim=hidden, num_blocks=3)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3)
    x = ndl.Tensor(np.random.randn(batch, dim), dtype="float32", requires_grad=False)
    y = ndl.Tensor(np.random.randint(0, 10, batch))
    loss_fn = nn.SoftmaxLoss()

    def step() -> None:
        opt.reset_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    return step


def timed(step: Callable[[], None], number: int, context: Callable[[], Any] | None) -> float:
    start = time.perf_counter()
    if context is None:
        for _ in range(number):
            step()
    else:
        with context():
            for _ in range(number):
                step()
    return (time.perf_counter() - start) / number


def bench(label: str, step: Callable[[], None], rounds: int, number: int) -> None:
    step()
    plain, profiled, anomaly, coverage = [], [], [], []
    for _ in range(rounds):
        plain.append(timed(step, number, None))
        with ndl.profile() as prof:
            for _ in range(number):
                step()
        profiled.append(prof.wall_seconds / number)
        coverage.append(prof.total_seconds / prof.wall_seconds)
        anomaly.append(timed(step, number, ndl.detect_anomaly))
    base = statistics.median(plain)
    print(f"{label}: plain step {base * 1e3:.2f} ms")
    print(f"    profiler rows / wall time: {statistics.median(coverage):.1%} "
          f"(range {min(coverage):.1%}-{max(coverage):.1%}; target >= 90 %)")
    print(f"    profiled / plain step time: {statistics.median(profiled) / base:.2f}x")
    print(f"    detect_anomaly / plain step time: {statistics.median(anomaly) / base:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bench("(a) MLP-ResNet 784 -> 512, batch 256", mlp_resnet_step(784, 512, 256),
          args.rounds, number=3)
    bench("(b) MLP-ResNet 64 -> 100, batch 100 (digits)", mlp_resnet_step(64, 100, 100),
          args.rounds, number=10)


if __name__ == "__main__":
    main()
