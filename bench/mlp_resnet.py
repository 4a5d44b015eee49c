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

import blas_idle  # noqa: F401  (before numpy: OpenBLAS's idle thread must sleep)
import numpy as np

import needle as ndl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.environ.get("NEEDLE_BENCH_REF", os.path.join(ROOT, "..", "shared", "bench")))
import torch_ref  # noqa: E402  (the PyTorch side of every workload)
from common import CLOCKS, needle_blas, profile, timer, training_step  # noqa: E402

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


def learner_step_fn(seed: int = 0) -> Callable[[], None]:
    """The same step run by ``needle.learner.Learner.run_batch`` with ``fit``'s Recorder
    (events fired, loss and accuracy recorded every batch), as the command line trains."""
    np.random.seed(seed)
    model = ndl.models.MLPResNet(784, hidden_dim=100, num_blocks=3, num_classes=10,
                                 drop_prob=0.1)
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    batches = [(ndl.Tensor(np.random.rand(BATCH, 1, 28, 28).astype(np.float32),
                           requires_grad=False), ndl.Tensor(np.random.randint(0, 10, BATCH)))
               for _ in range(N_BATCHES)]
    learner = ndl.learner.Learner(model, batches, ndl.nn.SoftmaxLoss(), opt,
                                  callbacks=[ndl.callbacks.Recorder()])
    learner.training = True
    model.train()
    state = {"k": 0}

    def step() -> None:
        state["k"] = (state["k"] + 1) % N_BATCHES
        learner.run_batch(batches[state["k"]])

    return step


def time_needle(warmup: int, steps: int, loop: str = "step") -> float:
    make = learner_step_fn if loop == "learner" else needle_step_fn
    ts = torch_ref.time_steps(make(), warmup, steps)
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
    parser.add_argument("--loop", choices=["step", "learner", "both"], default="step",
                        help="needle's plain step, the Learner's run_batch, or both")
    args = parser.parse_args()
    torch_ref.time_steps = timer(CLOCKS[args.clock])  # the loop both frameworks are timed by
    if args.profile:
        profile(needle_step_fn(), args.steps, warmup=20)
        return
    if args.threads:
        torch_ref.torch.set_num_threads(args.threads)
    loops = ["step", "learner"] if args.loop == "both" else [args.loop]
    ratios: dict[str, list[float]] = {loop: [] for loop in loops}
    for r in range(args.rounds):
        torch_ms = torch_ref.w_mlp_resnet(warmup=args.warmup, steps=args.steps)["median_ms"]
        for loop in loops[r % len(loops):] + loops[:r % len(loops)]:  # alternate the order
            needle_ms = time_needle(args.warmup, args.steps, loop)
            ratios[loop].append(needle_ms / torch_ms)
            print(f"round {r + 1}: pytorch {torch_ms:.3f} ms/step  needle ({loop}) "
                  f"{needle_ms:.3f} ms/step  ratio {needle_ms / torch_ms:.2f}", flush=True)
    for loop, values in ratios.items():
        print(f"mlp_resnet step ({loop}): needle / pytorch = {statistics.median(values):.2f} "
              f"(median of {args.rounds} rounds, range {min(values):.2f}-{max(values):.2f}, "
              f"{args.clock} clock; target <= 0.80; needle's products on {needle_blas()})")


if __name__ == "__main__":
    main()
