"""``nn.init``, as in PyTorch: needle's initialisers and LSUV, which initialises a whole model.

LSUV (Mishkin and Matas 2016, "All you need is a good init"; fast.ai lesson 07a): with a
forward hook on each layer (or on the activation after it), run a batch through the model
and rescale the layer's weight by 1 / std and shift its bias by -mean of what the hook saw,
layer by layer from the input, until |mean| < tol and |std - 1| < tol.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autograd import Tensor, no_grad
from ..init import (constant, kaiming_normal, kaiming_uniform, ones, rand, randn, xavier_normal,
                    xavier_uniform, zeros)
from .basic import Linear
from .conv import Conv2d
from .module import Module

__all__ = ["constant", "kaiming_normal", "kaiming_uniform", "lsuv", "ones", "rand", "randn",
           "xavier_normal", "xavier_uniform", "zeros"]

Stats = dict[str, tuple[float, float]]


def _pairs(model: Module, layers: Sequence[Any] | None) -> list[tuple[Module, Module]]:
    """(layer to rescale, module whose output is measured) for each entry of ``layers``: a
    module (measured itself) or a pair; by default every Linear and Conv2d of ``model``."""
    if layers is None:
        layers = [m for m in model.submodules() if isinstance(m, (Linear, Conv2d))]
    pairs = [(e[0], e[1]) if isinstance(e, (tuple, list)) else (e, e) for e in layers]
    for layer, _ in pairs:
        if not isinstance(getattr(layer, "weight", None), Tensor):
            raise ValueError(f"lsuv: {type(layer).__name__} has no weight to rescale")
    return pairs


def lsuv(model: Module, batch: Tensor, layers: Sequence[Any] | None = None, *,
         tol: float = 1e-3, max_iter: int = 100) -> Stats:
    """Layer-sequential unit-variance initialisation of ``model`` on ``batch`` (in eval mode,
    under no_grad). Returns each measured module's final (mean, std), keyed by
    ``"index:ClassName"``; a RuntimeError names a layer that did not converge."""
    training = model.training
    model.eval()
    stats: Stats = {}
    try:
        for index, (layer, measured) in enumerate(_pairs(model, layers)):
            stats[f"{index}:{type(measured).__name__}"] = _fit_layer(model, batch, layer,
                                                                    measured, tol, max_iter)
    finally:
        model.train(training)
    return stats


def _fit_layer(model: Module, batch: Tensor, layer: Module, measured: Module, tol: float,
               max_iter: int) -> tuple[float, float]:
    seen: dict[str, float] = {}

    def hook(module: Module, args: Any, output: Tensor) -> None:
        values = output.numpy().astype(np.float64)
        seen.update(mean=float(values.mean()), std=float(values.std()))

    def measure() -> tuple[float, float]:
        model(batch)
        return seen["mean"], seen["std"]

    bias = getattr(layer, "bias", None)
    with measured.register_forward_hook(hook), no_grad():
        for _ in range(max_iter):
            mean, std = measure()
            if abs(mean) < tol and abs(std - 1) < tol or (bias is None and abs(std - 1) < tol):
                return mean, std
            weight = getattr(layer, "weight")
            weight.data = weight.data / std
            if bias is not None:
                bias.data = bias.data - measure()[0]
    raise RuntimeError(f"lsuv: {type(measured).__name__} did not reach |mean| < {tol} and "
                       f"|std - 1| < {tol} in {max_iter} iterations (mean {mean:.4g}, std "
                       f"{std:.4g})")
