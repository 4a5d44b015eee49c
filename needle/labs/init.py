"""Why initialisation matters: products of random matrices explode or vanish; Kaiming keeps them.

fast.ai's notebook 02b on needle Tensors (float32, 512 x 512): multiplying a vector by
``randn`` matrices 100 times overflows to nan (``steps_to_nan``), scaling them by 0.01
vanishes (``std_after_100_small``), and scaling by 1/sqrt(512) keeps the scale
(``std_after_100_scaled``). Then the activations of a 10-layer ReLU network with Kaiming,
Xavier and PyTorch's default initialisation: each layer's mean and std (figure
``init_layer_stats.png``); Kaiming's gain sqrt(2) is the one that holds up through ReLUs.

Results: the three numbers above and ``{kaiming,xavier,torch_default}_std_layer{1,5,10}``.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np

import needle as ndl

from . import common

SIZE, STEPS, LAYERS = 512, 100, 10


def repeated_products(scale: float) -> tuple[int, float]:
    """x <- a x with a fresh a = scale * randn(512, 512) each step: (the first step whose x
    has a nan std, or 0 when none does, and x's std after 100 steps)."""
    x = ndl.Tensor(np.random.randn(SIZE, 1).astype(np.float32), requires_grad=False)
    first_nan = 0
    for step in range(1, STEPS + 1):
        a = ndl.init.randn(SIZE, SIZE) * scale
        x = a @ x
        std = float(np.std(x.numpy().astype(np.float64)))  # nan once x holds inf or nan
        if math.isnan(std) and not first_nan:
            first_nan = step
    return first_nan, float(np.std(x.numpy().astype(np.float64)))


INITS: dict[str, Callable[[int, int], ndl.Tensor]] = {
    "kaiming": lambda fan_in, fan_out: ndl.init.kaiming_normal(fan_in, fan_out),
    "xavier": lambda fan_in, fan_out: ndl.init.xavier_normal(fan_in, fan_out),
    # PyTorch's nn.Linear: kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    "torch_default": lambda fan_in, fan_out: ndl.init.rand(
        fan_in, fan_out, low=-1 / math.sqrt(fan_in), high=1 / math.sqrt(fan_in)),
}


def layer_stats(make: Callable[[int, int], ndl.Tensor], x: ndl.Tensor) -> list[tuple[float, float]]:
    """(mean, std) of the activations after each Linear-ReLU layer of a 10-layer network."""
    stats = []
    with ndl.no_grad():
        for _ in range(LAYERS):
            x = ndl.relu(x @ make(SIZE, SIZE))
            values = x.numpy().astype(np.float64)
            stats.append((float(values.mean()), float(values.std())))
    return stats


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    results: dict[str, float] = {}
    with ndl.no_grad(), np.errstate(over="ignore", invalid="ignore"):
        results["steps_to_nan"] = float(repeated_products(1.0)[0])
        results["std_after_100_small"] = repeated_products(0.01)[1]
        results["std_after_100_scaled"] = repeated_products(1 / math.sqrt(SIZE))[1]
    print(f"randn: nan after {results['steps_to_nan']:.0f} products; x 0.01: std "
          f"{results['std_after_100_small']:.3g} after 100; / sqrt(512): std "
          f"{results['std_after_100_scaled']:.3g}")
    x = ndl.Tensor(np.random.randn(256 if quick else 1024, SIZE).astype(np.float32),
                   requires_grad=False)
    curves = {}
    for name, make in INITS.items():
        stats = layer_stats(make, x)
        curves[name] = stats
        for layer in (1, 5, 10):
            results[f"{name}_std_layer{layer}"] = stats[layer - 1][1]
        print(f"{name:<14} std by layer: " + " ".join(f"{s:.3g}" for _, s in stats))
    _plot(curves, os.path.join(out, "init_layer_stats.png"))
    return results


def _plot(curves: dict[str, list[tuple[float, float]]], path: str) -> None:
    plt = common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    layers = range(1, LAYERS + 1)
    for name, stats in curves.items():
        axes[0].plot(layers, [m for m, _ in stats], marker="o", label=name)
        axes[1].plot(layers, [s for _, s in stats], marker="o", label=name)
    for ax, what in zip(axes, ("mean", "std")):
        ax.set_xlabel("layer (Linear 512-512 + ReLU)")
        ax.set_ylabel(f"activation {what}")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
