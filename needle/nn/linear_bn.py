"""Linear → BatchNorm1d (→ ReLU) children of a Sequential run as one fused node in training
(``ops.linear_batch_norm``), as MLP-ResNet's blocks and a PyTorch user's MLPs are written."""

from __future__ import annotations

from typing import Any, cast

from .. import ops
from ..autograd import Tensor
from ..reference import is_reference_mode
from .basic import BatchNorm1d, Linear, Sequential, layer_norm_relu
from .module import Module


def fuse_linear_batch_norm(modules: tuple[Module, ...], i: int, x: Any
                           ) -> tuple[Tensor, int] | None:
    """A Sequential's ``Linear``, ``BatchNorm1d`` (and ``ReLU``) children from i as one
    fused node (a ``Sequential.fusions`` entry): the norm in training mode, the Linear with
    a bias, on a 2-D input it accepts; only those exact classes, none with hooks or a
    wrapped forward (the fused node would skip them: ``layer_norm_relu``), not in
    reference mode."""
    found = layer_norm_relu(modules, i, (Linear,), BatchNorm1d)
    if found is None:
        return None
    linear, norm, relu = cast(tuple[Linear, BatchNorm1d, bool], found)
    if not norm.training or linear.bias is None or is_reference_mode() or \
            not isinstance(x, Tensor) or x.ndim != 2 or \
            x.shape[1] != linear.in_features or linear.out_features != norm.dim:
        return None
    out, mean, var = ops.linear_batch_norm(x, linear.weight, linear.bias, norm.weight,
                                           norm.bias, norm.eps, relu)
    norm._update_running_stats(mean, var)
    return out, 2 + relu


Sequential.fusions.setdefault(Linear, []).append(fuse_linear_batch_norm)
