"""cs231n's CIFAR-10 open-ended challenge, ideas 0, 1 and 2 of seed 001, side by side.

Idea 0: conv 32 5x5 - ReLU - conv 16 3x3 - ReLU - linear, SGD (Nesterov momentum 0.9).
Idea 1: deeper, with BatchNorm: conv 64 5x5 - BN - ReLU - conv 32 5x5 - BN - ReLU - conv 16
3x3 - BN - ReLU - linear, SGD. Idea 2: each BN - ReLU becomes "Block0" = BN - PReLU -
Dropout(0.2), trained with Adam(1e-3). Every conv keeps the image size ("same" padding).
With CIFAR-10's python batches under ``--data-dir`` this runs on CIFAR-10 (quick: 2,000
training and 1,000 test images); without them it says so and runs on the MNIST split (the
first 8,000 of the 10,000 real MNIST images train, the last 2,000 test; quick: 2,000 of
them at 14 x 14, 500 test).

Results: ``idea{0,1,2}_val_acc``, ``on_cifar10`` (1 or 0), ``num_train``, ``size``; table
``cifar_ideas.md``, figure ``cifar_ideas.png`` (test accuracy per epoch).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

import needle as ndl
from needle import nn
from needle.callbacks import Recorder
from needle.learner import Learner

from . import common


def block0(channels: int, idea: int) -> list[nn.Module]:
    if idea == 1:
        return [nn.BatchNorm2d(channels), nn.ReLU()]
    return [nn.BatchNorm2d(channels), nn.PReLU(), nn.Dropout(0.2)]


def idea_model(idea: int, in_channels: int, size: int) -> nn.Module:
    if idea == 0:
        layers = [nn.Conv(in_channels, 32, 5), nn.ReLU(), nn.Conv(32, 16, 3), nn.ReLU()]
    else:
        layers = [nn.Conv(in_channels, 64, 5), *block0(64, idea), nn.Conv(64, 32, 5),
                  *block0(32, idea), nn.Conv(32, 16, 3), *block0(16, idea)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(16 * size * size, 10))


def optimizer(idea: int, model: nn.Module) -> ndl.optim.Optimizer:
    if idea == 2:
        return ndl.optim.Adam(model.parameters(), lr=1e-3)
    # PyTorch's SGD(lr=1e-2, momentum=0.9, nesterov=True) in needle's dampened convention
    return ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)


def load(data_dir: str | None, quick: bool) -> tuple[common.Split, bool]:
    folder = common.find_cifar10(data_dir)
    if folder is not None:
        split = common.load_cifar10(folder, 2000 if quick else 49000, 1000 if quick else 10000)
        mean = split[0].mean(axis=(0, 2, 3), keepdims=True)
        std = split[0].std(axis=(0, 2, 3), keepdims=True)
        return ((split[0] - mean) / std, split[1], (split[2] - mean) / std, split[3]), True
    print("cifar_ideas: no CIFAR-10 batches under --data-dir / $NEEDLE_DATA; running the "
          "three ideas on the MNIST split instead (first 8,000 train, last 2,000 test)")
    x_train, y_train, x_test, y_test = common.load_mnist(data_dir)
    if not quick:
        return (x_train, y_train, x_test, y_test), False
    print("cifar_ideas --quick: 2,000 MNIST images at 14x14 (2x2 averages), 500 test")
    return (_halve(x_train[:2000]), y_train[:2000], _halve(x_test[:500]), y_test[:500]), False


def _halve(images: np.ndarray) -> np.ndarray:
    """N x C x H x W images averaged over 2x2 blocks (a quarter of the convolution work)."""
    n, c, h, w = images.shape
    return images.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    (x_train, y_train, x_test, y_test), on_cifar = load(data_dir, quick)
    train = ndl.data.DataLoader(ndl.data.NDArrayDataset(x_train, y_train), 32, shuffle=True)
    test = ndl.data.DataLoader(ndl.data.NDArrayDataset(x_test, y_test), 100)
    epochs = 1 if quick else 10
    results: dict[str, float] = {"on_cifar10": float(on_cifar), "num_train": float(len(x_train)),
                                 "size": float(x_train.shape[2])}
    curves: dict[str, Sequence[float]] = {}
    for idea in (0, 1, 2):
        np.random.seed(seed)
        model = idea_model(idea, x_train.shape[1], x_train.shape[2])
        recorder = Recorder()
        Learner(model, train, nn.SoftmaxLoss(), optimizer(idea, model), test_loader=test,
                callbacks=[recorder]).fit(epochs)
        curves[f"idea {idea}"] = [e["test_acc"] for e in recorder.history]
        results[f"idea{idea}_val_acc"] = curves[f"idea {idea}"][-1]
    table = _table(results, on_cifar, epochs)
    print(table)
    with open(os.path.join(out, "cifar_ideas.md"), "w") as f:
        f.write(table + "\n")
    common.save_curves(curves, os.path.join(out, "cifar_ideas.png"), "epoch", "test accuracy",
                       title="CIFAR-10" if on_cifar else "MNIST split (no CIFAR-10 here)",
                       x=list(range(1, epochs + 1)))
    return results


def _table(results: dict[str, float], on_cifar: bool, epochs: int) -> str:
    data = "CIFAR-10" if on_cifar else "MNIST split (no CIFAR-10 here)"
    rows = ["| idea | model | optimiser | test accuracy |", "|---|---|---|---|",
            f"| 0 | conv32-relu-conv16-relu-fc | SGD | {results['idea0_val_acc']:.4f} |",
            f"| 1 | conv64-bn-relu-conv32-bn-relu-conv16-bn-relu-fc | SGD | "
            f"{results['idea1_val_acc']:.4f} |",
            f"| 2 | idea 1 with bn-prelu-dropout(0.2) blocks | Adam 1e-3 | "
            f"{results['idea2_val_acc']:.4f} |"]
    return f"{data}, {int(results['num_train'])} training images of {results['size']:.0f}x" \
        f"{results['size']:.0f}, {epochs} epoch(s)\n\n" + \
        "\n".join(rows)
