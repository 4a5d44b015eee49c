"""Where the time of the workloads that miss their targets goes, against PyTorch, part by
part: the same operation timed in needle, in PyTorch and (where needle adds nothing but the
library call) as the plain numpy call that is its floor.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python bench/floors.py [--repeats 7]

One BLAS thread on both sides; each part is the fastest of ``--repeats`` runs by the
thread's CPU time (the machine is shared), each run the median of a few calls. Shapes are
the benchmarks' (``bench/seq.py``, ``bench/conv.py``, ``bench/mlp_resnet.py``):
- the language models' decoder (rows = seq x batch: 35 x 32 for the LSTM, 64 x 16 for the
  Transformer; vocabulary 10,000): its three GEMMs and the softmax cross-entropy;
- the Transformer's dropout mask, which the contract fixes as ``np.random.rand(*shape) <=
  1 - p`` (float64 draws from numpy's global RNG, ``../shared/API.md``);
- one LSTM layer over the whole sequence (forward and backward);
- Adam over the Transformer LM's parameters;
- the small CNN's 2x2 max pooling backward and BatchNorm2d forward and backward;
- every GEMM of one training step of lstm_lm, transformer_lm and mlp_resnet (forward and
  both gradients of each product), in numpy's BLAS and in PyTorch's: the step's floor.
"""

from __future__ import annotations

import argparse
import functools
import operator
import os
import statistics
import sys
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import needle as ndl  # noqa: E402
from common import CLOCKS, timer  # noqa: E402  (bench/, the script's own folder)
from needle import nn, ops  # noqa: E402
from needle.backend_ndarray import blas  # noqa: E402


def best_ms(fn: Callable[[], Any], repeats: int, calls: int = 3) -> float:
    """The fastest of ``repeats`` medians of ``calls`` calls (after one warm-up call), in
    thread CPU milliseconds."""
    time_steps = timer(CLOCKS["cpu"])
    fn()
    return min(statistics.median(time_steps(fn, 0, calls)) for _ in range(repeats)) * 1e3


def decoder(rows: int, hidden: int, vocab: int = 10000) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((rows, hidden), np.float32), rng.standard_normal((hidden, vocab),
                                                                                np.float32)
    dy, labels = rng.standard_normal((rows, vocab), np.float32), rng.integers(0, vocab, rows)
    tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
    nx, nw = ndl.Tensor(x, requires_grad=True), ndl.Tensor(w, requires_grad=True)
    logits, nlabels = ndl.Tensor(dy, requires_grad=True), ndl.Tensor(labels)
    out_grad = ndl.Tensor(dy, requires_grad=False)  # made once, as PyTorch's tdy (a 14 ms copy)
    tlogits = torch.from_numpy(dy).requires_grad_()
    tlabels = torch.from_numpy(labels)

    def needle_gemms() -> None:
        ops.matmul(nx, nw).backward(out_grad)

    def needle_loss() -> None:
        nn.SoftmaxLoss()(logits, nlabels).backward()

    def torch_loss() -> None:
        F.cross_entropy(tlogits, tlabels).backward()

    return {"3 GEMMs (x W, dY W^T, x^T dY): needle": needle_gemms,
            "3 GEMMs: numpy floor": lambda: (x @ w, dy @ w.T, x.T @ dy),
            "3 GEMMs: PyTorch": lambda: (tx @ tw, tdy @ tw.T, tx.T @ tdy),
            "softmax cross-entropy fwd+bwd: needle": needle_loss,
            "softmax cross-entropy fwd+bwd: PyTorch": torch_loss}


def dropout_masks() -> dict[str, Callable[[], Any]]:
    """The Transformer LM's ten dropout masks per step (the shapes of its dropout layers)."""
    shapes = [(16, 4, 64, 64)] * 2 + [(1024, 128)] * 6 + [(1024, 512)] * 2
    tensors = [torch.empty(s) for s in shapes]
    return {"10 dropout masks: contract (np.random.rand <= 1 - p)":
            lambda: [np.random.rand(*s) <= 0.9 for s in shapes],
            "10 dropout masks: PyTorch bernoulli_": lambda: [t.bernoulli_(0.9) for t in tensors]}


def lstm_layer(seq: int = 35, batch: int = 32, size: int = 256) -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((seq, batch, size), np.float32)
    layer = nn.LSTM(size, size)
    tlayer = torch.nn.LSTM(size, size)
    nx, tx = ndl.Tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()

    def needle_lstm() -> None:
        out, _ = layer(nx)
        out.sum().backward()

    def torch_lstm() -> None:
        out, _ = tlayer(tx)
        out.sum().backward()

    h, w = rng.standard_normal((batch, size), np.float32), rng.standard_normal((size, 4 * size),
                                                                              np.float32)
    d = rng.standard_normal((batch, 4 * size), np.float32)
    xs, ws = x.reshape(-1, size), rng.standard_normal((size, 4 * size), np.float32)
    dx = rng.standard_normal((seq * batch, 4 * size), np.float32)
    th, tw, td, txs, tws, tdx = (torch.from_numpy(a) for a in (h, w, d, xs, ws, dx))

    def numpy_gemms() -> None:
        for _ in range(seq):
            h @ w
            (w @ d.T).T  # dh = d W^T as needle's backward runs it, (H, 4H) @ (4H, B)
        xs @ ws, dx @ ws.T, xs.T @ dx, np.repeat(h, seq, 0).T @ dx

    def torch_gemms() -> None:
        for _ in range(seq):
            th @ tw
            td @ tw.T
        txs @ tws, tdx @ tws.T, txs.T @ tdx, th.repeat(seq, 1).T @ tdx

    return {"LSTM layer 256->256 fwd+bwd: needle": needle_lstm,
            "LSTM layer 256->256 fwd+bwd: PyTorch": torch_lstm,
            "its GEMMs (2 a step x 35, 4 over the sequence): numpy floor": numpy_gemms,
            "its GEMMs: PyTorch": torch_gemms}


def adam() -> dict[str, Callable[[], Any]]:
    from needle.models import LanguageModel

    model = LanguageModel(128, 10000, 512, num_layers=2, seq_model="transformer", seq_len=64,
                          num_head=4, dim_head=32, dropout=0.1)
    params = model.parameters()
    for p in params:
        p.grad = ndl.Tensor(np.ones(p.shape, np.float32))
    opt = ndl.optim.Adam(params, lr=1e-3)
    tparams = [torch.zeros(p.shape, requires_grad=True) for p in params]
    for t in tparams:
        t.grad = torch.ones(t.shape)
    topt = torch.optim.Adam(tparams, lr=1e-3)
    count = sum(p.size for p in params)
    return {f"Adam step, {count / 1e6:.1f} M parameters: needle": opt.step,
            f"Adam step, {count / 1e6:.1f} M parameters: PyTorch": topt.step}


def cnn_parts() -> dict[str, Callable[[], Any]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 28, 28), np.float32)
    pool, bn = nn.MaxPool2d(2), nn.BatchNorm2d(16)
    tpool, tbn = torch.nn.MaxPool2d(2), torch.nn.BatchNorm2d(16)
    nx, tx = ndl.Tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()

    def run(layer: Any, inp: Any) -> None:
        layer(inp).sum().backward()

    return {"MaxPool2d(2) fwd+bwd on 64x16x28x28: needle": lambda: run(pool, nx),
            "MaxPool2d(2) fwd+bwd on 64x16x28x28: PyTorch": lambda: run(tpool, tx),
            "BatchNorm2d(16) fwd+bwd on 64x16x28x28: needle": lambda: run(bn, nx),
            "BatchNorm2d(16) fwd+bwd on 64x16x28x28: PyTorch": lambda: run(tbn, tx)}


Shape2 = tuple[int, int]


def products(m: int, k: int, n: int, times: int = 1) -> list[tuple[Shape2, Shape2]]:
    """The three GEMMs of y = x W for x (m, k), W (k, n): x W, dY W^T and x^T dY."""
    return [((m, k), (k, n)), ((m, n), (n, k)), ((k, m), (m, n))] * times


def all_products(pairs: list[tuple[Any, Any]],
                 product: Callable[[Any, Any], Any] = operator.matmul) -> Callable[[], Any]:
    return lambda: [product(a, b) for a, b in pairs]


def step_gemms() -> dict[str, Callable[[], Any]]:
    """Each workload's GEMMs of one training step, in numpy (OpenBLAS) and PyTorch (the
    Transformer's batched attention products, about 2 % of its FLOPs, left out)."""
    lstm = products(35 * 32, 256, 10000)  # the decoder
    for size in (128, 256):  # each layer: the input projection, 35 steps each way, W_hh's grad
        lstm += products(35 * 32, size, 1024)
        lstm += [((32, 256), (256, 1024)), ((256, 1024), (1024, 32))] * 35  # dh transposed
        lstm += [((256, 35 * 32), (35 * 32, 1024))]
    tokens, width = 64 * 16, 128
    transformer = products(tokens, width, 10000)
    for _ in range(2):  # layers: q, k, v and output projections, the feed-forward pair
        transformer += products(tokens, width, width, 4)
        transformer += products(tokens, width, 512) + products(tokens, 512, width)
    mlp = products(128, 784, 100)[::2] + products(128, 100, 50, 3) + \
        products(128, 50, 100, 3) + products(128, 100, 10)
    rng = np.random.default_rng(0)
    parts: dict[str, Callable[[], Any]] = {}
    for name, shapes in (("lstm_lm", lstm), ("transformer_lm", transformer),
                         ("mlp_resnet", mlp)):
        arrays = [(rng.standard_normal(a, np.float32), rng.standard_normal(b, np.float32))
                  for a, b in shapes]
        tensors = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in arrays]
        parts[f"{name}: {len(shapes)} GEMMs, numpy"] = all_products(arrays)
        if blas.available():
            parts[f"{name}: {len(shapes)} GEMMs, MKL (needle.blas)"] = all_products(
                arrays, functools.partial(blas.matmul, np))
        parts[f"{name}: {len(shapes)} GEMMs, PyTorch"] = all_products(tensors)
    return parts


SECTIONS = {"lstm_lm decoder (1120 x 256 -> 10000)": lambda: decoder(35 * 32, 256),
            "transformer_lm decoder (1024 x 128 -> 10000)": lambda: decoder(64 * 16, 128),
            "transformer_lm dropout": dropout_masks,
            "lstm_lm recurrence": lstm_layer,
            "transformer_lm optimiser": adam,
            "cnn_mnist passes": cnn_parts,
            "one step's GEMMs": step_gemms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sections", nargs="*", default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    ndl.backend_ndarray.allocator.enable()  # as fit and the command line do
    for name in args.sections:
        print(name)
        for part, fn in SECTIONS[name]().items():
            print(f"  {part:<58} {best_ms(fn, args.repeats):8.2f} ms")


if __name__ == "__main__":
    main()
