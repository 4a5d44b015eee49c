"""One MLP-ResNet training step (forward, backward, Adam) in needle and in PyTorch CPU.

    PYTHONPATH=. python bench/mlp_resnet.py [--rounds 3] [--steps 500] [--warmup 50]
    PYTHONPATH=. python bench/mlp_resnet.py --profile     # cProfile of needle's steps
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/mlp_resnet.py --threads 1 --clock cpu

On a loaded machine, ``--threads 1 --clock cpu`` (one BLAS thread on both sides, each step
timed by the thread's CPU time) gives a steadier ratio than wall-clock time.

The workload is ``../shared/bench/torch_ref.py mlp_resnet``: MLPResNet(784, 100, 3 blocks,
BatchNorm1d, dropout 0.1), batch 128, softmax loss, Adam(lr 1e-3, weight_decay 1e-3), four
pre-generated random batches cycled. Each round times PyTorch and then needle the way
torch_ref does (warm-up, then the median of per-step perf_counter times); the printed ratio
is the median over rounds of needle / PyTorch.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from typing import Callable

import numpy as np

import needle as ndl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("NEEDLE_BENCH_REF", os.path.join(ROOT, "..", "shared", "bench")))
import torch_ref  # noqa: E402  (the PyTorch side of every workload)
from common import CLOCKS, profile, timer, training_step  # noqa: E402

N_BATCHES, BATCH = 4, 128


def needle_step_fn(seed: int = 0) -> Callable[[], None]:
    """A closure running one training step on the next of four fixed batches."""
    np.random.seed(seed)
    ndl.backend_ndarray.allocator.enable()  # as fit and the command line do
    model = ndl.models.MLPResNet(784, hidden_dim=100, num_blocks=3, num_classes=10,
                                 drop_prob=0.1)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    xs = [ndl.Tensor(np.random.rand(BATCH, 1, 28, 28).astype(np.float32), requires_grad=False)
          for _ in range(N_BATCHES)]
    ys = [ndl.Tensor(np.random.randint(0, 10, BATCH)) for _ in range(N_BATCHES)]
    return training_step(model, opt, xs, ys)


def time_needle(warmup: int, steps: int) -> float:
    ts = torch_ref.time_steps(needle_step_fn(), warmup, steps)
    return statistics.median(ts) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="time.perf_counter (as torch_ref) or time.thread_time")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch_ref.time_steps = timer(CLOCKS[args.clock])  # the loop both frameworks are timed by
    if args.profile:
        profile(needle_step_fn(), args.steps, warmup=20)
        return
    if args.threads:
        torch_ref.torch.set_num_threads(args.threads)
    ratios = []
    for r in range(args.rounds):
        torch_ms = torch_ref.w_mlp_resnet(warmup=args.warmup, steps=args.steps)["median_ms"]
        needle_ms = time_needle(args.warmup, args.steps)
        ratios.append(needle_ms / torch_ms)
        print(f"round {r + 1}: pytorch {torch_ms:.3f} ms/step  needle {needle_ms:.3f} ms/step  "
              f"ratio {needle_ms / torch_ms:.2f}", flush=True)
    print(f"mlp_resnet step: needle / pytorch = {statistics.median(ratios):.2f} "
          f"(median of {args.rounds} rounds, {args.clock} clock; target <= 0.90)")


if __name__ == "__main__":
    main()
