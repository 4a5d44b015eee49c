"""Gradient utilities (PyTorch's ``torch.nn.utils``)."""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import fused


def clip_grad_norm_(parameters: Iterable[Tensor] | Tensor, max_norm: float,
                    norm_type: float = 2.0) -> float:
    """Scale the gradients of ``parameters`` by max_norm / (norm + 1e-6) when their global
    ``norm_type``-norm (over all gradients together) exceeds ``max_norm``, as PyTorch's
    ``clip_grad_norm_``; returns the norm before clipping."""
    if not isinstance(max_norm, (int, float)) or not max_norm >= 0:
        raise ValueError(f"max_norm must be a number >= 0, got {max_norm!r}")
    if not norm_type > 0:
        raise ValueError(f"norm_type must be > 0 (or inf), got {norm_type!r}")
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    grads = [p.grad.cached_data for p in params if p.grad is not None]
    if not grads:
        return 0.0
    if norm_type == 2:  # the usual case, on the device
        norm = math.sqrt(sum(fused.squared_norm(g) for g in grads))
    elif math.isinf(norm_type):
        norm = max(float(np.abs(g.numpy()).max(initial=0)) for g in grads)
    else:
        norm = sum(float((np.abs(g.numpy()) ** norm_type).sum()) for g in grads) ** (1 / norm_type)
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for p in params:
            if p.grad is not None:
                p.grad = Tensor.make_const(p.grad.cached_data * scale)
    return norm
