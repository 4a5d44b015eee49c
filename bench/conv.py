"""Convolution speed and memory in needle and in PyTorch CPU, measured in the same run.

    PYTHONPATH=. python bench/conv.py [--rounds 3] [conv_fwd_bwd] [resnet9] [conv_channels_last]
        [cnn_mnist]
    PYTHONPATH=. python bench/conv.py --threads 1 --clock cpu   # steadier on a busy machine
    PYTHONPATH=. python bench/conv.py --profile resnet9      # cProfile of needle's steps

Workloads (``../shared/bench/torch_ref.py``'s):
- ``conv_fwd_bwd``: Conv2d(64 -> 64, 3x3, padding 1) on 32x64x32x32, forward and the gradients
  of input, weight and bias; NCHW input and output gradient, as PyTorch's default layout.
- ``conv_channels_last``: the same with NCHW tensors whose memory is NHWC on both sides
  (torch_ref's ``channels_last``; what needle's layers hand each other inside a network).
- ``resnet9``: one ResNet9 training step, batch 128 of 3x32x32, softmax loss,
  SGD(lr 0.01, momentum 0.9), four pre-generated batches cycled.
- ``cnn_mnist``: a small CNN as a PyTorch user writes it, (Conv3x3-BN-ReLU-MaxPool2) x2
  (1 -> 16 -> 32 channels) then Linear to 10, batch 64 of 1x28x28, Adam(1e-3, wd 1e-4).
For the conv workloads the numpy floor of ``../shared/bench/numpy_floor.py`` (hand-written
NHWC im2col, input gradient as a transposed convolution, no autograd) is timed too.

Every measurement runs in a fresh process (so peak resident memory, ru_maxrss, belongs to
that workload alone; needle's process never imports torch): warm-up steps, then the median
of per-step times. Each round measures PyTorch, then needle; the ratio printed is the median
over rounds of needle / PyTorch; the ratio of the fastest steps is printed too, as it
suffers less from other processes. Targets: conv_fwd_bwd <= 1.2x, resnet9 <= 1.1x,
cnn_mnist <= 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from typing import Any, Callable

import numpy as np
from common import CLOCKS, needle_blas, profile, timer, training_step

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_REF = os.environ.get("NEEDLE_BENCH_REF", os.path.join(ROOT, "..", "shared", "bench"))
TARGETS = {"conv_fwd_bwd": 1.2, "conv_channels_last": 1.2, "resnet9": 1.1, "cnn_mnist": 1.2}
STEPS = {"conv_fwd_bwd": (5, 40), "conv_channels_last": (5, 40), "resnet9": (5, 40),
         "cnn_mnist": (5, 60)}
N_BATCHES, BATCH = 4, 128


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ---------------------------------------------------------------------- needle workloads
def needle_conv(channels_last: bool = False) -> Callable[[], None]:
    import needle as ndl

    np.random.seed(0)
    conv = ndl.nn.Conv2d(64, 64, 3, padding=1)

    def image() -> ndl.Tensor:
        nhwc = np.random.randn(32, 32, 32, 64).astype(np.float32)
        return ndl.Tensor(nhwc, requires_grad=False).permute((0, 3, 1, 2)) if channels_last \
            else ndl.Tensor(np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2)),
                            requires_grad=False)

    x, g = image(), image()
    x = ndl.Tensor.make_const(x.cached_data, requires_grad=True)

    def step() -> None:
        conv(x).backward(g)

    return step


def needle_resnet9() -> Callable[[], None]:
    import needle as ndl

    np.random.seed(0)
    model = ndl.models.ResNet9()
    opt = ndl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs = [ndl.Tensor(np.random.randn(BATCH, 3, 32, 32).astype(np.float32), requires_grad=False)
          for _ in range(N_BATCHES)]
    ys = [ndl.Tensor(np.random.randint(0, 10, BATCH)) for _ in range(N_BATCHES)]
    return training_step(model, opt, xs, ys)


def needle_cnn_mnist() -> Callable[[], None]:
    import needle as ndl
    from needle import nn

    np.random.seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(32 * 7 * 7, 10))
    opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    xs = [ndl.Tensor(np.random.rand(64, 1, 28, 28).astype(np.float32), requires_grad=False)
          for _ in range(N_BATCHES)]
    ys = [ndl.Tensor(np.random.randint(0, 10, 64)) for _ in range(N_BATCHES)]
    return training_step(model, opt, xs, ys)


NEEDLE = {"conv_fwd_bwd": needle_conv, "conv_channels_last": lambda: needle_conv(True),
          "resnet9": needle_resnet9, "cnn_mnist": needle_cnn_mnist}


# ---------------------------------------------------------------------- one measurement
def worker(impl: str, workload: str, clock: str) -> dict[str, Any]:
    """Time one workload in this process; memory is this process's peak."""
    warmup, steps = STEPS[workload]
    time_steps = timer(CLOCKS[clock])
    if impl == "torch":
        sys.path.insert(0, TORCH_REF)
        import torch_ref

        torch_ref.time_steps = time_steps
        baseline = peak_rss_mb()
        name, _, layout = workload.partition("_channels_")
        if name == "cnn_mnist":
            result = torch_ref.w_cnn_mnist(warmup=warmup, steps=steps)
        else:
            run = {"conv": torch_ref.w_conv_fwd_bwd, "resnet9": torch_ref.w_resnet9}[
                "conv" if name.startswith("conv") else "resnet9"]
            result = run(warmup=warmup, steps=steps, channels_last=bool(layout))
        median, fastest = result["median_ms"], result["min_ms"]
    elif impl == "floor":
        sys.path.insert(0, TORCH_REF)
        import numpy_floor

        numpy_floor.time_steps = time_steps
        baseline = peak_rss_mb()
        result = numpy_floor.w_conv_fwd_bwd(warmup=warmup, steps=steps, dx="tconv")
        median, fastest = result["median_ms"], result["min_ms"]
    else:
        import needle  # (imported before the baseline, like torch)

        needle.backend_ndarray.allocator.enable()  # as fit and the command line do

        baseline = peak_rss_mb()
        times = time_steps(NEEDLE[workload](), warmup, steps)
        median, fastest = statistics.median(times) * 1e3, min(times) * 1e3
    return {"median_ms": median, "min_ms": fastest, "peak_mb": peak_rss_mb(),
            "import_mb": baseline, "blas": needle_blas() if impl == "needle" else ""}


def measure(impl: str, workload: str, threads: int | None, clock: str) -> dict[str, Any]:
    """``worker`` in a fresh Python process (with ``threads`` BLAS/OpenMP threads if given)."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, __file__, "--worker", impl, workload, clock], env=env,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def profile_workload(workload: str, steps: int = 10) -> None:
    stats = profile(NEEDLE[workload](), steps, lines=20)
    print(f"time inside each op's compute (cumulative over {steps} steps):")
    stats.sort_stats("cumulative").print_stats(r"\(compute\)|\(gradient\)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=["conv_fwd_bwd", "resnet9"],
                        help=f"any of {sorted(NEEDLE)}")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", choices=sorted(NEEDLE))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both (OMP/OPENBLAS/MKL_NUM_THREADS); default: all")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="time.perf_counter (as torch_ref), or the thread's CPU time "
                             "(time.thread_time: steadier on a loaded machine, with --threads 1)")
    parser.add_argument("--worker", nargs=3, metavar=("IMPL", "WORKLOAD", "CLOCK"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = set(args.workloads) - set(NEEDLE)
    if unknown:
        parser.error(f"unknown workloads {sorted(unknown)}; choose from {sorted(NEEDLE)}")
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if args.profile:
        profile_workload(args.profile)
        return
    for workload in args.workloads:
        runs = [(measure("torch", workload, args.threads, args.clock),
                 measure("needle", workload, args.threads, args.clock))
                for _ in range(args.rounds)]
        ratio = statistics.median(n["median_ms"] / t["median_ms"] for t, n in runs)
        t_ms = statistics.median(t["median_ms"] for t, _ in runs)
        n_ms = statistics.median(n["median_ms"] for _, n in runs)
        t_mem, n_mem = runs[-1][0], runs[-1][1]
        each = [round(n["median_ms"] / t["median_ms"], 2) for t, n in runs]
        t_min = min(t["min_ms"] for t, _ in runs)
        n_min = min(n["min_ms"] for _, n in runs)
        print(f"{workload:20s} torch {t_ms:7.2f} ms  needle {n_ms:7.2f} ms  ratio {ratio:.2f}x "
              f"(target <= {TARGETS[workload]}x; {args.clock} clock; rounds {each}; "
              f"needle's products on {n_mem['blas']})")
        print(f"{'':20s} fastest step: torch {t_min:.2f} ms  needle {n_min:.2f} ms  ratio "
              f"{n_min / t_min:.2f}x (less sensitive to other load on the machine)")
        if workload.startswith("conv"):
            floor = statistics.median(measure("floor", workload, args.threads, args.clock)
                                      ["median_ms"] for _ in range(args.rounds))
            print(f"{'':20s} numpy floor (hand-written im2col, NHWC, no autograd) {floor:.2f} "
                  f"ms: needle / floor {n_ms / floor:.2f}x, floor / torch {floor / t_ms:.2f}x")
        print(f"{'':20s} peak RSS torch {t_mem['peak_mb']:.0f} MB (after import "
              f"{t_mem['import_mb']:.0f})  needle {n_mem['peak_mb']:.0f} MB (after import "
              f"{n_mem['import_mb']:.0f})", flush=True)


if __name__ == "__main__":
    main()
