"""One training step of the sequence language models: needle against PyTorch on the CPU.

    python bench/seq.py                      # lstm_lm and transformer_lm
    python bench/seq.py lstm_lm --steps 30
    OPENBLAS_NUM_THREADS=1 python bench/seq.py --threads 1 --clock cpu   # on a busy machine

Workloads (``../shared/bench/torch_ref.py``, whose PyTorch models this script imports):
- lstm_lm: 2-layer LSTM LM, vocab 10,000, embedding 128, hidden 256, seq 35, batch 32,
  SGD(lr 1) with gradient clipping at 0.25, hidden state carried and detached;
- transformer_lm: 2-layer Transformer LM, vocab 10,000, d_model 128, 4 heads, ffn 512,
  seq 64, batch 16, dropout 0.1, Adam(lr 1e-3).
The two frameworks' steps alternate, so that load from other processes hits both alike;
the script prints the median ms per step of each, the ratio needle / PyTorch, and where
needle's step goes (forward, backward, optimiser with clipping).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from typing import Any, Callable

import blas_idle  # noqa: F401  (before numpy: OpenBLAS's idle thread must sleep)
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import needle as ndl  # noqa: E402
from needle.models import LanguageModel  # noqa: E402
from needle.train_lm import detach_state, lm_loss  # noqa: E402
from common import needle_blas  # noqa: E402  (bench/, the script's own folder)

VOCAB, N_BATCHES = 10000, 4
TARGETS = {"lstm_lm": 1.0, "transformer_lm": 1.1}
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
clock = time.perf_counter
Phases = dict[str, float]


def load_torch_ref() -> Any:
    """The shared PyTorch reference module (``$NEEDLE_SHARED/bench/torch_ref.py``)."""
    shared = os.environ.get("NEEDLE_SHARED", os.path.join(ROOT, os.pardir, "shared"))
    path = os.path.join(shared, "bench", "torch_ref.py")
    spec = importlib.util.spec_from_file_location("torch_ref", path)
    if spec is None or spec.loader is None or not os.path.isfile(path):
        raise SystemExit(f"PyTorch reference not found at {path} (set NEEDLE_SHARED)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cycle() -> Callable[[], int]:
    state = {"k": -1}

    def next_index() -> int:
        state["k"] = (state["k"] + 1) % N_BATCHES
        return state["k"]
    return next_index


# ---------------------------------------------------------------------------- needle
def needle_step(model: LanguageModel, opt: ndl.optim.Optimizer, data: np.ndarray,
                clip: float | None, carry: bool) -> Callable[[Phases], None]:
    """A training step on time-major windows data[k] (seq + 1, batch), timed by phase."""
    next_index, params, state = cycle(), model.parameters(), {"h": None}

    def step(phases: Phases) -> None:
        start = time.perf_counter()
        k = next_index()
        x = ndl.Tensor(data[k, :-1], requires_grad=False)
        y = ndl.Tensor(data[k, 1:].reshape(-1), requires_grad=False)
        opt.reset_grad()
        logits, h = model(x, detach_state(state["h"]) if carry else None)
        loss = lm_loss(logits, y)
        forward = time.perf_counter()
        loss.backward()
        backward = time.perf_counter()
        if clip:
            ndl.optim.clip_grad_norm(params, clip)
        opt.step()
        state["h"] = h
        end = time.perf_counter()
        for name, seconds in (("forward", forward - start), ("backward", backward - forward),
                              ("optimiser", end - backward)):
            phases[name] = phases.get(name, 0.0) + seconds
    return step


def needle_lstm_lm() -> Callable[[Phases], None]:
    model = LanguageModel(128, VOCAB, 256, num_layers=2, seq_model="lstm")
    data = np.random.randint(0, VOCAB, (N_BATCHES, 36, 32))
    return needle_step(model, ndl.optim.SGD(model.parameters(), lr=1.0), data, 0.25, True)


def needle_transformer_lm() -> Callable[[Phases], None]:
    model = LanguageModel(128, VOCAB, 512, num_layers=2, seq_model="transformer", seq_len=64,
                          num_head=4, dim_head=32, dropout=0.1)
    data = np.random.randint(0, VOCAB, (N_BATCHES, 65, 16))
    return needle_step(model, ndl.optim.Adam(model.parameters(), lr=1e-3), data, None, False)


# ---------------------------------------------------------------------------- PyTorch
def torch_lstm_lm(ref: Any) -> Callable[[], None]:
    """torch_ref.w_lstm_lm's step."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(ref.SEED)
    model = ref.LSTMLM(VOCAB, 128, 256, 2).train()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    data = torch.randint(0, VOCAB, (N_BATCHES, 36, 32))
    zeros = torch.zeros(2, 32, 256)
    state, next_index = {"h": (zeros, zeros.clone())}, cycle()

    def step() -> None:
        k = next_index()
        h = tuple(t.detach() for t in state["h"])
        opt.zero_grad(set_to_none=True)
        logits, state["h"] = model(data[k, :-1], h)
        F.cross_entropy(logits, data[k, 1:].reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
    return step


def torch_transformer_lm(ref: Any) -> Callable[[], None]:
    """torch_ref.w_transformer_lm's step."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(ref.SEED)
    model = ref.TransformerLM(VOCAB, 128, 4, 2, 512, 64, 0.1).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.randint(0, VOCAB, (N_BATCHES, 16, 65))
    next_index = cycle()

    def step() -> None:
        k = next_index()
        opt.zero_grad(set_to_none=True)
        logits = model(data[k, :, :-1]).reshape(-1, VOCAB)
        F.cross_entropy(logits, data[k, :, 1:].reshape(-1)).backward()
        opt.step()
    return step


WORKLOADS = {"lstm_lm": (needle_lstm_lm, torch_lstm_lm),
             "transformer_lm": (needle_transformer_lm, torch_transformer_lm)}


def timed(fn: Callable[[], None]) -> float:
    start = clock()
    fn()
    return clock() - start


def run(name: str, ref: Any, steps: int, warmup: int) -> None:
    make_needle, make_torch = WORKLOADS[name]
    np.random.seed(0)
    needle_fn, torch_fn = make_needle(), make_torch(ref)
    phases: Phases = {}
    for _ in range(warmup):
        needle_fn(phases)
        torch_fn()
    phases.clear()
    needle_times, torch_times = [], []
    for _ in range(steps):  # alternate, so that load from elsewhere hits both alike
        needle_times.append(timed(lambda: needle_fn(phases)))
        torch_times.append(timed(torch_fn))
    needle_ms = statistics.median(needle_times) * 1e3
    torch_ms = statistics.median(torch_times) * 1e3
    ratio = needle_ms / torch_ms
    verdict = "meets" if ratio <= TARGETS[name] else "misses"
    print(f"{name:15s} needle {needle_ms:7.1f} ms  pytorch {torch_ms:7.1f} ms  "
          f"ratio {ratio:.2f}x ({verdict} the {TARGETS[name]}x target)")
    total = sum(phases.values())
    print(" " * 16 + "needle step: " + ", ".join(
        f"{k} {v / total:.0%}" for k, v in phases.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS),
                        help=f"any of {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads "
                        "(set OPENBLAS_NUM_THREADS to match for needle)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="time.perf_counter, or the thread's CPU time (steadier when busy)")
    args = parser.parse_args()
    global clock
    clock = CLOCKS[args.clock]
    ndl.backend_ndarray.allocator.enable()  # as fit and the command line do
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {list(WORKLOADS)}")
    ref = load_torch_ref()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"numpy {np.__version__}, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads; median of {args.steps} alternating steps; "
          f"needle's products on {needle_blas()}")
    for name in args.workloads:
        run(name, ref, args.steps, args.warmup)


if __name__ == "__main__":
    main()
