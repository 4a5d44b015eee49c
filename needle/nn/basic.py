"""Basic layers: Linear, activations, containers, normalisation, dropout and the softmax loss.

Shapes: N is the batch, D (or in/out features) the feature axis; ``Linear`` keeps needle's
weight layout (in_features, out_features), the transpose of PyTorch's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from .module import Module, Parameter


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x W + b for x (N, ..., in_features) -> (N, ..., out_features).

    W (in, out) from kaiming_uniform(in, out); then b (1, out) from kaiming_uniform(out, 1)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, device=device,
                                                     dtype=dtype))
        self.bias = Parameter(init.kaiming_uniform(out_features, 1, device=device, dtype=dtype)
                              .reshape((1, out_features))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects inputs with {self.in_features} features on the "
                             f"last axis, got shape {x.shape}")
        out = x @ self.weight
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Flatten(Module):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape((x.shape[0], -1))


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Sequential(Module):
    """Applies ``modules`` in order."""

    def __init__(self, *modules: Module):
        super().__init__()
        self.layers = modules

    def forward(self, x: Any) -> Any:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, index: int) -> Module:
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)


class Residual(Module):
    """fn(x) + x."""

    def __init__(self, fn: Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x


class SoftmaxLoss(Module):
    """Mean over the batch of logsumexp(logits_i) - logits_i[y_i]; logits (N, C), y (N,)."""

    def forward(self, logits: Tensor, y: Tensor) -> Tensor:
        labels = _class_ids(y, logits)
        log_probs = ops.logsoftmax(logits)
        picked = log_probs[np.arange(logits.shape[0]), labels]
        return -picked.sum() / logits.shape[0]


def _class_ids(y: Tensor | np.ndarray, logits: Tensor) -> np.ndarray:
    """Labels as an int array of shape (N,), checked against the logits (N, C)."""
    labels = y.numpy() if isinstance(y, Tensor) else np.asarray(y)
    if labels.shape != logits.shape[:1] or logits.ndim != 2:
        raise ValueError(f"expected logits (N, C) and labels (N,), got {logits.shape} and "
                         f"{labels.shape}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def _normalize(x: Tensor, axes: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(x - mean) / sqrt(var + eps) over ``axes`` (biased variance), with mean and var."""
    count = x.shape[axes]
    mean = x.sum(axes, keepdims=True) / count
    centered = x - mean.broadcast_to(x.shape)
    var = (centered * centered).sum(axes, keepdims=True) / count
    return centered / ((var + eps) ** 0.5).broadcast_to(x.shape), mean, var


class BatchNorm1d(Module):
    """Per-feature normalisation of x (N, D) by batch statistics (training) or running ones
    (eval): y = weight * (x - mean) / sqrt(var + eps) + bias. weight ones, bias zeros.

    Running statistics update as (1 - momentum) old + momentum batch, with the biased batch
    variance (needle's convention; PyTorch keeps the unbiased one)."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))
        self.running_mean = init.zeros(dim, device=device, dtype=dtype)
        self.running_var = init.ones(dim, device=device, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"BatchNorm1d({self.dim}) expects input (N, {self.dim}), "
                             f"got {x.shape}")
        if self.training:
            normed, mean, var = _normalize(x, 0, self.eps)
            m = self.momentum
            self.running_mean = (self.running_mean * (1 - m) + mean.reshape(-1).detach() * m)
            self.running_var = (self.running_var * (1 - m) + var.reshape(-1).detach() * m)
        else:
            std = (self.running_var + self.eps) ** 0.5
            normed = (x - self.running_mean) / std
        return normed * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm1d(Module):
    """Normalises the last axis of x (..., D): y = weight * (x - mean) / sqrt(var + eps) +
    bias, with weight ones and bias zeros of shape (D,)."""

    def __init__(self, dim: int, eps: float = 1e-5, device: Device | None = None,
                 dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.dim:
            raise ValueError(f"LayerNorm1d({self.dim}) expects a last axis of {self.dim}, "
                             f"got shape {x.shape}")
        normed, _, _ = _normalize(x, x.ndim - 1, self.eps)
        return normed * self.weight + self.bias

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Dropout(Module):
    """In training, zeroes each element with probability p and scales the rest by
    1/(1-p): x * randb(*x.shape, p=1-p) / (1-p). The identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        mask = init.randb(*x.shape, p=1 - self.p, device=x.device, dtype=x.dtype)
        return x * mask / (1 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
