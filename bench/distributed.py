"""Data parallelism on MPI: all-reduce bandwidth and training throughput on 1 vs 2 ranks,
needle (mpi4py + the mpich wheel) against PyTorch (torch.distributed gloo, DDP) in one run.

    PYTHONPATH=. python bench/distributed.py [--rounds 3] [--steps 15]

Every measurement is its own job, started by this script: ``mpiexec -n 2`` for 2 ranks, a
plain process for 1, each rank with one BLAS thread (OMP/OPENBLAS/MKL_NUM_THREADS=1,
torch.set_num_threads(1)). Rounds alternate the order of needle and PyTorch; the summary
gives the median and the range over rounds.

- all-reduce: float32 buffers of 1-64 MB summed in place on 2 ranks; GB/s = bytes / median
  time of one all-reduce (algorithm bandwidth; for 2 ranks it equals the bus bandwidth).
- training: MLP-ResNet (784-100, 3 blocks, Adam) and ResNet9 (3x32x32, SGD momentum), the
  workloads of ../shared/bench/torch_ref.py, with 128 images per rank (weak scaling, as
  Horovod reports it); images/s = ranks x 128 / median step time; scaling = images/s on 2
  ranks over images/s on 1. needle's steps are split into compute (forward + backward),
  waiting (a barrier before the all-reduce: the slower rank's lead), all-reduce and update.

On a machine shared with other jobs the wall-clock figures move with their load, so each
is given twice: by wall clock, and by CPU clock, an estimate of a dedicated core per rank:
the slower rank's CPU time per step (leaving out time it was not running) — for needle
that of compute and update, plus the fastest all-reduce seen (MPI busy-polls while it
waits, which would otherwise count); for PyTorch its process CPU time (gloo blocks while
it waits; DDP overlaps its all-reduces with the backward pass). Contention for memory
bandwidth between the ranks still shows, as on a dedicated machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Callable

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = os.environ.get("NEEDLE_BENCH_REF", os.path.join(ROOT, "..", "shared", "bench"))
SIZES_MB = (1, 4, 16, 64)
BATCH = 128
MODELS = ("mlp_resnet", "resnet9")
CLOCK_KEYS = {"wall": "images_per_s", "cpu": "cpu_images_per_s"}
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                     "MKL_NUM_THREADS")}


# ---------------------------------------------------------------------------- workers
def rank_and_world() -> tuple[int, int]:
    return int(os.environ.get("PMI_RANK", 0)), int(os.environ.get("PMI_SIZE", 1))


def torch_init() -> Any:
    import torch
    import torch.distributed as tdist

    torch.set_num_threads(1)
    rank, world = rank_and_world()
    if world > 1:
        port = os.environ["BENCH_PORT"]
        tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                                 world_size=world)
    return torch


def median_seconds(fn: Callable[[], Any], barrier: Callable[[], Any], warmup: int,
                   repeats: int) -> tuple[float, float]:
    """Median wall-clock and CPU seconds of ``fn``, each call after a barrier."""
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        barrier()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def allreduce_worker(impl: str) -> dict[str, Any]:
    out = {}
    if impl == "needle":
        from needle import distributed as dist

        for mb in SIZES_MB:
            buffer = np.ones(mb * 2**20 // 4, dtype=np.float32)
            seconds, _ = median_seconds(lambda: dist.all_reduce(buffer), dist.barrier, 3, 20)
            out[f"{mb}MB"] = mb * 2**20 / seconds / 1e9
        return out
    torch = torch_init()
    import torch.distributed as tdist

    for mb in SIZES_MB:
        tensor = torch.ones(mb * 2**20 // 4)
        seconds, _ = median_seconds(lambda: tdist.all_reduce(tensor), tdist.barrier, 3, 20)
        out[f"{mb}MB"] = mb * 2**20 / seconds / 1e9
    return out


def needle_train_worker(model_name: str, warmup: int, steps: int) -> dict[str, Any]:
    import needle as ndl
    from needle import distributed as dist

    np.random.seed(0)
    model: ndl.nn.Module
    opt: ndl.optim.Optimizer
    if model_name == "resnet9":
        model = ndl.models.ResNet9()
        opt = ndl.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        shape: tuple[int, ...] = (BATCH, 3, 32, 32)
    else:
        model = ndl.models.MLPResNet(784, hidden_dim=100, num_blocks=3, num_classes=10)
        opt = ndl.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
        shape = (BATCH, 1, 28, 28)
    dist.broadcast_parameters(model)
    dopt = dist.DistributedOptimizer(opt)
    xs = [ndl.Tensor(np.random.rand(*shape).astype(np.float32), requires_grad=False)
          for _ in range(4)]
    ys = [ndl.Tensor(np.random.randint(0, 10, BATCH)) for _ in range(4)]
    loss_fn = ndl.nn.SoftmaxLoss()
    parts: dict[str, list[float]] = {k: [] for k in ("compute", "wait", "all_reduce",
                                                      "update", "step", "cpu")}
    for i in range(warmup + steps):
        dist.barrier()
        t0, cpu0 = time.perf_counter(), time.process_time()
        dopt.reset_grad()
        loss_fn(model(xs[i % 4]), ys[i % 4]).backward()
        t1, cpu1 = time.perf_counter(), time.process_time()
        dist.barrier()
        t2 = time.perf_counter()
        dopt.synchronize()
        t3, cpu3 = time.perf_counter(), time.process_time()
        dopt.step()
        t4, cpu4 = time.perf_counter(), time.process_time()
        if i >= warmup:  # cpu: compute and update, without MPI's busy-waiting
            for key, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0,
                                            (cpu1 - cpu0) + (cpu4 - cpu3))):
                parts[key].append(seconds)
    result = {k: statistics.median(v) * 1e3 for k, v in parts.items()}
    result["images_per_s"] = dist.world_size() * BATCH / statistics.median(parts["step"])
    # a dedicated core per rank: the slower rank's CPU time, plus the fastest all-reduce
    slowest_cpu = max(dist.all_gather_object(statistics.median(parts["cpu"])))
    result["cpu_images_per_s"] = dist.world_size() * BATCH / (slowest_cpu +
                                                              min(parts["all_reduce"]))
    return result


def torch_train_worker(model_name: str, warmup: int, steps: int) -> dict[str, Any]:
    torch = torch_init()
    import torch.distributed as tdist
    import torch.nn.functional as F

    sys.path.insert(0, REF)
    import torch_ref

    torch.manual_seed(0)
    if model_name == "resnet9":
        model = torch_ref.ResNet9().train()
        opt: Any = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        shape: tuple[int, ...] = (BATCH, 3, 32, 32)
    else:
        model = torch_ref.MLPResNet().train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
        shape = (BATCH, 1, 28, 28)
    _, world = rank_and_world()
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    xs = [torch.rand(*shape) for _ in range(4)]
    ys = [torch.randint(0, 10, (BATCH,)) for _ in range(4)]

    def step_fn() -> None:
        step_fn.k = (getattr(step_fn, "k", 0) + 1) % 4  # type: ignore[attr-defined]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(xs[step_fn.k]), ys[step_fn.k]).backward()  # type: ignore
        opt.step()

    barrier = tdist.barrier if world > 1 else (lambda: None)
    seconds, cpu = median_seconds(step_fn, barrier, warmup, steps)
    if world > 1:
        every: list[Any] = [None] * world
        tdist.all_gather_object(every, cpu)
        cpu = max(every)
    return {"step": seconds * 1e3, "images_per_s": world * BATCH / seconds,
            "cpu_images_per_s": world * BATCH / cpu}


def worker(args: argparse.Namespace) -> None:
    scale = 10 if args.worker == "mlp_resnet" else 1  # its steps are ~30x shorter
    if args.worker == "allreduce":
        result = allreduce_worker(args.impl)
    elif args.impl == "needle":
        result = needle_train_worker(args.worker, args.warmup * scale, args.steps * scale)
    else:
        result = torch_train_worker(args.worker, args.warmup * scale, args.steps * scale)
    if rank_and_world()[0] == 0:
        print(json.dumps(result), flush=True)
    if args.impl == "torch" and rank_and_world()[1] > 1:
        import torch.distributed as tdist

        tdist.barrier()
        tdist.destroy_process_group()


# ---------------------------------------------------------------------------- driver
def run_job(kind: str, impl: str, ranks: int, args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--impl", impl,
               "--warmup", str(args.warmup), "--steps", str(args.steps)]
    if ranks > 1:
        command = [os.path.join(os.path.dirname(sys.executable), "mpiexec"), "-n",
                   str(ranks)] + command
    for attempt in range(3):  # gloo's TCP set-up fails now and then on a loaded machine
        env = dict(os.environ, **ONE_THREAD, PYTHONPATH=ROOT, BENCH_PORT=str(free_port()))
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode == 0 and lines:
            return json.loads(lines[-1])
        print(f"(retrying: {' '.join(command[-7:])} failed: {done.stderr.strip()[-300:]})",
              file=sys.stderr, flush=True)
    raise SystemExit(f"{' '.join(command)} failed three times")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def spread(values: list[float], fmt: str = ".2f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


def driver(args: argparse.Namespace) -> None:
    impls = ["needle", "torch"]
    bandwidth: dict[str, dict[str, list[float]]] = {i: {} for i in impls}
    speed: dict[tuple[str, str, int, str], list[float]] = {}
    parts: dict[tuple[str, int], list[dict[str, float]]] = {}
    for round_index in range(args.rounds):
        order = impls if round_index % 2 == 0 else impls[::-1]
        for impl in order:
            for size, gbs in run_job("allreduce", impl, 2, args).items():
                bandwidth[impl].setdefault(size, []).append(gbs)
        for model in MODELS:
            for impl in order:
                for ranks in (1, 2):
                    result = run_job(model, impl, ranks, args)
                    for clock in CLOCK_KEYS:
                        speed.setdefault((model, impl, ranks, clock), []).append(
                            result[CLOCK_KEYS[clock]])
                    if impl == "needle":
                        parts.setdefault((model, ranks), []).append(result)
        line = "  ".join(f"{m} {i} {r}x: {speed[(m, i, r, 'wall')][-1]:.0f} img/s"
                         for m in MODELS for i in impls for r in (1, 2))
        print(f"round {round_index + 1}: {line}", flush=True)
    report(bandwidth, speed, parts, args.rounds)


def report(bandwidth: dict[str, dict[str, list[float]]],
           speed: dict[tuple[str, str, int, str], list[float]],
           parts: dict[tuple[str, int], list[dict[str, float]]], rounds: int) -> None:
    print(f"\nall-reduce on 2 ranks, GB/s, median (range) of {rounds} rounds:")
    for size in bandwidth["needle"]:
        ratio = [a / b for a, b in zip(bandwidth["needle"][size], bandwidth["torch"][size])]
        print(f"  {size:>5}: needle/mpich {spread(bandwidth['needle'][size])}  "
              f"pytorch/gloo {spread(bandwidth['torch'][size])}  needle/pytorch "
              f"{spread(ratio)}")
    for clock in CLOCK_KEYS:
        print(f"\ntraining, {BATCH} images per rank, one BLAS thread per rank, images/s by "
              f"{clock} clock:")
        for model in MODELS:
            for impl in ("needle", "torch"):
                one, two = speed[(model, impl, 1, clock)], speed[(model, impl, 2, clock)]
                scaling = [b / a for a, b in zip(one, two)]
                target = "  (target >= 1.60)" if model == "resnet9" and impl == "needle" \
                    else ""
                print(f"  {model:10} {impl:6} 1 rank {spread(one, '.0f')}  2 ranks "
                      f"{spread(two, '.0f')}  scaling {spread(scaling)}{target}")
    print("\nwhere needle's step goes, ms (median over rounds of per-step medians):")
    for (model, ranks), results in sorted(parts.items()):
        keys = ("compute", "wait", "all_reduce", "update", "step", "cpu")
        cells = "  ".join(f"{k} {statistics.median(r[k] for r in results):.2f}" for k in keys)
        print(f"  {model:10} {ranks} rank{'s' if ranks > 1 else ' '}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--impl", default="needle", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
    else:
        driver(args)


if __name__ == "__main__":
    main()
