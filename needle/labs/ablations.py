"""Ablations: BatchNorm vs init scale, dropout's gap, four update rules, BN vs LayerNorm.

The experiments of cs231n's assignment 2 (and the seeds' "many observations"), each a
figure and numbers, with ``needle.Solver`` and ``FullyConnectedNet`` on MNIST subsets:

1. **BatchNorm vs weight scale** (``ablation_bn_init.png``): a six-layer net trained with
   and without batch norm from weights ~ N(0, scale²) over a log range of scales. The
   "worst" scale is the one where the plain net does worst; BN should rescue it.
2. **Dropout** (``ablation_dropout.png``): a wide two-layer net on few images with keep
   ratios 1, 0.5, 0.25 (cs231n's ``dropout_keep_ratio``: the probability of keeping).
   The gap is train - val accuracy, averaged over the last five epochs.
3. **Update rules** (``ablation_update_rules.png``): sgd, sgd_momentum, rmsprop and adam on a
   five-layer net; the final loss is the mean over the last epoch's iterations.
4. **Batch size** (``ablation_batch_size.png``): BN and LayerNorm nets trained with small and
   large batches; BN's statistics get noisy at small batches, LayerNorm's do not.

Results: ``worst_init_scale``, ``bn_val_acc`` / ``no_bn_val_acc`` (at that scale),
``dropout_gap`` (keep 0.25) / ``no_dropout_gap`` (keep 1), ``{rule}_final_loss``,
``{bn,ln}_val_acc_batch{B}``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..models import FullyConnectedNet
from ..solver import Solver
from . import common

Data = dict[str, np.ndarray]


def subset(split: common.Split, num_train: int, num_val: int) -> Data:
    X_train, y_train, X_val, y_val = split
    return {"X_train": X_train[:num_train], "y_train": y_train[:num_train],
            "X_val": X_val[:num_val], "y_val": y_val[:num_val]}


def train(data: Data, hidden: list[int], epochs: int, **options: Any) -> Solver:
    """A FullyConnectedNet (``options`` split between the net and the Solver), trained."""
    net_keys = ("normalization", "dropout_keep_ratio", "weight_scale", "reg")
    net = {k: options.pop(k) for k in net_keys if k in options}
    model = FullyConnectedNet(hidden, input_dim=784, **net)
    solver = Solver(model, data, num_epochs=epochs, verbose=False, **options)
    solver.train()
    return solver


def bn_vs_init_scale(data: Data, quick: bool, out: str) -> dict[str, float]:
    scales = np.logspace(-3, 0, 4 if quick else 10)
    accs: dict[str, list[float]] = {"baseline": [], "batchnorm": []}
    for scale in scales:
        for name, norm in (("baseline", None), ("batchnorm", "batchnorm")):
            solver = train(data, [50] * 5, 4 if quick else 10, normalization=norm,
                           weight_scale=float(scale), update_rule="adam",
                           optim_config={"learning_rate": 1e-3}, batch_size=100)
            accs[name].append(solver.best_val_acc)
    common.save_curves(accs, os.path.join(out, "ablation_bn_init.png"), "weight init scale",
                       "best val accuracy", "six-layer net: BatchNorm vs none", logx=True,
                       x=list(scales))
    worst = int(np.argmin(accs["baseline"]))
    return {"worst_init_scale": float(scales[worst]), "bn_val_acc": accs["batchnorm"][worst],
            "no_bn_val_acc": accs["baseline"][worst]}


def dropout(data: Data, quick: bool, out: str) -> dict[str, float]:
    curves, gaps = {}, {}
    for keep in (1.0, 0.5, 0.25):
        np.random.seed(0)
        solver = train(data, [512], 20 if quick else 30, dropout_keep_ratio=keep,
                       weight_scale=5e-2, update_rule="adam",
                       optim_config={"learning_rate": 1e-3}, batch_size=100)
        train_acc, val_acc = np.array(solver.train_acc_history), np.array(solver.val_acc_history)
        gaps[keep] = float(np.mean((train_acc - val_acc)[-5:]))
        curves[f"train, keep {keep}"] = list(train_acc)
        curves[f"val, keep {keep}"] = list(val_acc)
    common.save_curves(curves, os.path.join(out, "ablation_dropout.png"), "epoch", "accuracy",
                       f"dropout on {len(data['y_train'])} images (keep ratio)")
    return {"no_dropout_gap": gaps[1.0], "dropout_gap": gaps[0.25],
            "dropout_gap_keep0.5": gaps[0.5]}


RULES = {"sgd": 1e-2, "sgd_momentum": 1e-2, "rmsprop": 1e-4, "adam": 1e-3}


def update_rules(data: Data, quick: bool, out: str) -> dict[str, float]:
    curves, results = {}, {}
    for rule, lr in RULES.items():
        np.random.seed(0)  # the same initial weights and batches for every rule
        solver = train(data, [100] * 5, 2 if quick else 5, weight_scale=1e-1,
                       update_rule=rule, optim_config={"learning_rate": lr}, batch_size=100)
        per_epoch = len(data["y_train"]) // 100
        results[f"{rule}_final_loss"] = float(np.mean(solver.loss_history[-per_epoch:]))
        results[f"{rule}_val_acc"] = solver.best_val_acc
        curves[rule] = np.convolve(solver.loss_history, np.ones(5) / 5, "valid").tolist()
    common.save_curves(curves, os.path.join(out, "ablation_update_rules.png"), "iteration",
                       "training loss (5-step mean)", "five-layer net: update rules")
    return results


def batch_size(data: Data, quick: bool, out: str) -> dict[str, float]:
    sizes = (5, 50) if quick else (5, 10, 50, 200)
    accs: dict[str, list[float]] = {"batchnorm": [], "layernorm": []}
    results = {}
    for size in sizes:
        for name, short in (("batchnorm", "bn"), ("layernorm", "ln")):
            np.random.seed(0)
            solver = train(data, [100] * 4, 2 if quick else 8, normalization=name,
                           weight_scale=5e-2, update_rule="adam",
                           optim_config={"learning_rate": 1e-3}, batch_size=size)
            accs[name].append(solver.best_val_acc)
            results[f"{short}_val_acc_batch{size}"] = solver.best_val_acc
    common.save_curves(accs, os.path.join(out, "ablation_batch_size.png"), "batch size",
                       "best val accuracy", "BatchNorm vs LayerNorm", logx=True, x=list(sizes))
    return results


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    split = common.load_mnist(data_dir)
    results = bn_vs_init_scale(subset(split, 1000, 500), quick, out)
    results.update(dropout(subset(split, 300 if quick else 500, 500), quick, out))
    results.update(update_rules(subset(split, 2000 if quick else 4000, 500), quick, out))
    results.update(batch_size(subset(split, 500 if quick else 1000, 500), quick, out))
    return results
