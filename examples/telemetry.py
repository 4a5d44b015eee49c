"""Telemetry with forward hooks (fast.ai's ``Hooks``): each layer's activation mean and std at
every training step of a CNN on scikit-learn's digits, plotted to a PNG.

    python examples/telemetry.py --epochs 2 --out runs/telemetry

The plot has one line per hooked layer (Conv, ReLU, Linear): means on the left, standard
deviations on the right, over training steps — healthy training keeps the stds away from
zero (no dying activations) and bounded (no explosion).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

import needle as ndl
from needle import nn


def append_stats(hook: nn.Hook, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
    """fast.ai's hook function: keep the output's mean and std on the hook, per step."""
    if not hasattr(hook, "stats"):
        hook.stats = ([], [])
    if module.training:  # evaluation passes are not training telemetry
        values = output.numpy()
        hook.stats[0].append(float(values.mean()))
        hook.stats[1].append(float(values.std()))


def hooked_layers(model: ndl.models.CNN) -> list[tuple[str, nn.Module]]:
    """The layers to watch: every Conv, ReLU and Linear of the CNN, with a short name."""
    counts: dict[str, int] = {}
    found = []
    for layer in model.model.children():
        kind = type(layer).__name__
        if kind in ("Conv", "ReLU", "Linear"):
            counts[kind] = counts.get(kind, 0) + 1
            found.append((f"{kind.lower()}{counts[kind]}", layer))
    return found


def train(epochs: int, batch_size: int, lr: float, seed: int = 0
          ) -> tuple[list[str], list[nn.Hook], float]:
    """Train the digits CNN with hooks on; (layer names, hooks with .stats, test accuracy)."""
    ndl.manual_seed(seed)
    train_set, test_set = ndl.data.Digits(train=True), ndl.data.Digits(train=False)
    model = ndl.models.CNN(1, 10, image_size=8, channels=(16, 32), channels_last=True)
    opt = ndl.optim.Adam(model.parameters(), lr=lr)
    names, layers = zip(*hooked_layers(model))
    loader = ndl.data.DataLoader(train_set, batch_size, shuffle=True)
    with nn.Hooks(list(layers), append_stats) as hooks:
        for _ in range(epochs):
            ndl.train.epoch(loader, model, opt=opt)
        error, _ = ndl.train.epoch(ndl.data.DataLoader(test_set, batch_size), model)
    return list(names), list(hooks), 1.0 - error


def plot(names: list[str], hooks: list[nn.Hook], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name, hook in zip(names, hooks):
        means, stds = hook.stats
        left.plot(means, label=name)
        right.plot(stds, label=name)
    left.set_title("activation mean")
    right.set_title("activation std")
    for ax in (left, right):
        ax.set_xlabel("training step")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--out", default="runs/telemetry")
    args = parser.parse_args()
    names, hooks, accuracy = train(args.epochs, args.batch_size, args.lr)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "telemetry.png")
    plot(names, hooks, path)
    for name, hook in zip(names, hooks):
        means, stds = np.array(hook.stats[0]), np.array(hook.stats[1])
        print(f"{name:8s} steps {len(means):4d}  mean {means[0]:+.3f} -> {means[-1]:+.3f}  "
              f"std {stds[0]:.3f} -> {stds[-1]:.3f}")
    print(f"test accuracy {accuracy:.4f}; wrote {path}")


if __name__ == "__main__":
    main()
