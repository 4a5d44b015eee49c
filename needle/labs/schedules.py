"""One-cycle against a constant learning rate on MNIST, with the LR finder choosing the rate.

fast.ai's annealing notebook (05) on the Learner: ``learner.lr_find()`` sweeps the learning
rate exponentially (figure ``lr_find.png``) and suggests one (a tenth of the rate of the
lowest smoothed loss); then the same MLP trains with half the rate of the lowest loss held
constant, and with ``OneCycleLR`` peaking at it (warm-up then cosine
annealing, stepped per batch, momentum cycled inversely; figure ``schedules.png`` with the
learning rates and the per-batch losses). The MNIST split is the command line's: the first
8,000 of the 10,000 real MNIST images train, the last 2,000 test.

Results: ``lr_find_suggestion``, ``lr`` (the rate both runs use), ``constant_val_acc``,
``onecycle_val_acc`` and the two final training losses.
"""

from __future__ import annotations

import os

import numpy as np

import needle as ndl
from needle import nn
from needle.callbacks import Recorder, SchedulerStep
from needle.learner import Learner
from needle.schedules import OneCycleLR

from . import common

HIDDEN, BATCH = 200, 64


def mlp(seed: int) -> nn.Module:
    np.random.seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 10))


def loaders(data_dir: str | None, quick: bool) -> tuple[ndl.data.DataLoader, ...]:
    x_train, y_train, x_test, y_test = common.load_mnist(data_dir)
    n = 4000 if quick else len(x_train)
    train = ndl.data.NDArrayDataset(x_train[:n], y_train[:n])
    test = ndl.data.NDArrayDataset(x_test, y_test)
    return ndl.data.DataLoader(train, BATCH, shuffle=True), ndl.data.DataLoader(test, 500)


def train(seed: int, train_loader: ndl.data.DataLoader, test_loader: ndl.data.DataLoader,
          lr: float, epochs: int, onecycle: bool) -> Recorder:
    model = mlp(seed)
    opt = ndl.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    recorder = Recorder()
    callbacks: list[object] = [recorder]
    if onecycle:
        callbacks.append(SchedulerStep(OneCycleLR(opt, max_lr=lr, epochs=epochs,
                                                  steps_per_epoch=len(train_loader)),
                                       every="batch"))
    np.random.seed(seed + 1)  # both runs see the same batches
    Learner(model, train_loader, nn.SoftmaxLoss(), opt, test_loader=test_loader,
            callbacks=callbacks).fit(epochs)
    return recorder


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    train_loader, test_loader = loaders(data_dir, quick)
    model = mlp(seed)
    learner = Learner(model, train_loader, nn.SoftmaxLoss(),
                      ndl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    finder = learner.lr_find(1e-5, 10.0, 100)
    finder.plot(os.path.join(out, "lr_find.png"))
    lr = finder.suggestion * 5  # half the lr of the lowest loss: where one-cycle shines
    print(f"lr_find: suggestion {finder.suggestion:.3g} (lowest smoothed loss at "
          f"{finder.suggestion * 10:.3g}); both runs use {lr:.3g}")
    epochs = 3 if quick else 5
    runs = {name: train(seed, train_loader, test_loader, lr, epochs, name == "onecycle")
            for name in ("constant", "onecycle")}
    results = {"lr_find_suggestion": finder.suggestion, "lr": lr}
    for name, recorder in runs.items():
        results[f"{name}_val_acc"] = recorder.history[-1]["test_acc"]
        results[f"{name}_final_train_loss"] = recorder.history[-1]["train_loss"]
        print(f"{name:<9} test accuracy by epoch: "
              + " ".join(f"{e['test_acc']:.4f}" for e in recorder.history))
    _plot(runs, os.path.join(out, "schedules.png"))
    return results


def _plot(runs: dict[str, Recorder], path: str) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for name, recorder in runs.items():
        axes[0].plot(recorder.lrs, label=name)
        losses = np.convolve(recorder.losses, np.ones(20) / 20, mode="valid")
        axes[1].plot(losses, label=name)
    axes[0].set_ylabel("learning rate")
    axes[1].set_ylabel("training loss (20-batch mean)")
    for ax in axes:
        ax.set_xlabel("batch")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
