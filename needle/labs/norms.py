"""BatchNorm, LayerNorm, InstanceNorm and GroupNorm at batch sizes 2 and 64 on an MNIST CNN.

fast.ai's notebook 07: the same three-conv network (stride-2 3x3 convs of 8, 16 and 32
channels, each followed by the normalisation and a ReLU, then a linear classifier) trains
with each normalisation at batch size 64 and at batch size 2, with Adam. BatchNorm
normalises with the statistics of the batch while training but of its running averages in
evaluation: with two images per batch those disagree, and its test accuracy falls behind
the normalisations that use each sample's own statistics (table ``norms.md``, figure
``norms.png``). The MNIST split is the command line's (first 8,000 train, last 2,000 test).

Results: ``{bn,ln,in,gn}_bs{2,64}_val_acc``.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

import needle as ndl
from needle import nn
from needle.callbacks import Recorder
from needle.learner import Learner

from . import common

WIDTHS, SIZES = (8, 16, 32), (14, 7, 4)
NORMS: dict[str, Callable[[int, int], nn.Module]] = {
    "bn": lambda c, s: nn.BatchNorm2d(c),
    "ln": lambda c, s: nn.LayerNorm((c, s, s)),
    "in": lambda c, s: nn.InstanceNorm2d(c, affine=True),
    "gn": lambda c, s: nn.GroupNorm(c // 4, c),
}
NAMES = {"bn": "BatchNorm", "ln": "LayerNorm", "in": "InstanceNorm", "gn": "GroupNorm"}


def cnn(norm: str) -> nn.Module:
    layers: list[nn.Module] = []
    width = 1
    for out, size in zip(WIDTHS, SIZES):
        layers += [nn.Conv(width, out, 3, stride=2, bias=False), NORMS[norm](out, size),
                   nn.ReLU()]
        width = out
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(WIDTHS[-1] * SIZES[-1] ** 2, 10))


def accuracy(norm: str, batch_size: int, train: ndl.data.NDArrayDataset,
             test: ndl.data.DataLoader, seed: int) -> float:
    np.random.seed(seed)
    model = cnn(norm)
    recorder = Recorder()
    Learner(model, ndl.data.DataLoader(train, batch_size, shuffle=True), nn.SoftmaxLoss(),
            ndl.optim.Adam(model.parameters(), lr=1e-3), test_loader=test,
            callbacks=[recorder]).fit(1)
    return recorder.history[-1]["test_acc"]


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    x_train, y_train, x_test, y_test = common.load_mnist(data_dir)
    sizes = {2: 600, 64: 3000} if quick else {2: 2000, 64: 8000}
    n_test = 1000 if quick else len(x_test)
    test = ndl.data.DataLoader(ndl.data.NDArrayDataset(x_test[:n_test], y_test[:n_test]), 500)
    results: dict[str, float] = {}
    for batch_size, n in sizes.items():
        train = ndl.data.NDArrayDataset(x_train[:n], y_train[:n])
        for norm in NORMS:
            results[f"{norm}_bs{batch_size}_val_acc"] = accuracy(norm, batch_size, train,
                                                                 test, seed)
    table = _table(results, sizes)
    print(table)
    with open(os.path.join(out, "norms.md"), "w") as f:
        f.write(table + "\n")
    _plot(results, os.path.join(out, "norms.png"))
    return results


def _table(results: dict[str, float], sizes: dict[int, int]) -> str:
    lines = ["| normalisation | " + " | ".join(f"batch {b} ({n} images, 1 epoch)"
                                              for b, n in sizes.items()) + " |",
             "|---|" + "---|" * len(sizes)]
    for norm in NORMS:
        lines.append(f"| {NAMES[norm]} | " + " | ".join(
            f"{results[f'{norm}_bs{b}_val_acc']:.4f}" for b in sizes) + " |")
    return "\n".join(lines)


def _plot(results: dict[str, float], path: str) -> None:
    plt = common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(len(NORMS))
    for offset, batch_size in ((-0.2, 2), (0.2, 64)):
        ax.bar(x + offset, [results[f"{n}_bs{batch_size}_val_acc"] for n in NORMS], 0.4,
               label=f"batch size {batch_size}")
    ax.set_xticks(x, [NAMES[n] for n in NORMS])
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
