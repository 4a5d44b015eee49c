"""SyncBatchNorm: BatchNorm over the global batch of a data-parallel job.

Each rank holds its share of the batch; the statistics of a channel are taken over every
rank's samples by all-reducing per-channel sums (count and sum, then the centred sum of
squares: the two passes of single-process BatchNorm), and the backward all-reduces the two
per-channel sums it needs. At world size 1 it computes exactly what BatchNorm does.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from ..autograd import Tensor, TensorOp, TensorTuple, TensorTupleOp
from ..backend_ndarray import NDArray, fused
from ..backend_ndarray.ndarray import _wrap, array_sum
from ..distributed import comm
from .basic import BatchNorm1d
from .conv import BatchNorm2d
from .conv_bn import ConvBatchNorm2d
from .module import Module

Axes = tuple[int, ...]


def _global_sums(xp: Any, *sums: Any) -> list[Any]:
    """The per-channel sums added up over the ranks: one all-reduce for all of them."""
    packed = xp.concatenate([s.reshape(-1) for s in sums])
    comm.all_reduce(packed)
    ends = np.cumsum([s.size for s in sums]).tolist()
    return [packed[end - s.size:end].reshape(s.shape) for s, end in zip(sums, ends)]


class SyncStatistics(NamedTuple):
    """What SyncNormalize's forward pass hands to its gradient and to the running
    statistics: h (the input normalised), r = 1 / sqrt(var + eps) (kept dims), the global
    mean and var (C,) and the global number of values per channel."""

    normalized: NDArray
    inv_std: Any
    mean: NDArray
    var: NDArray
    group_size: float


class SyncNormalize(TensorOp):
    """f(x, w, b) = h w + b, h = (x - mean) r, r = 1 / sqrt(var + eps), the statistics
    (biased variance) over ``axes`` of every rank's x; w, b (C,) along axis 1.
    df/dx g = r w (g - mean g - h mean(g h)), means over the global batch; df/dw g =
    sum(g h), df/db g = sum(g) over this rank's batch (SyncNormalizeGrad): summed over the
    ranks they are the gradients of the global loss.

    Saves ``SyncStatistics`` on the output node (``node.saved``): h, r, the global mean
    and var (C,) for the running statistics and the global number of values per channel,
    so one instance can be called again before the first call's backward."""

    saves = True

    def __init__(self, axes: Axes, eps: float):
        self.axes = axes
        self.eps = eps

    def compute(self, x: NDArray, weight: NDArray,
                bias: NDArray) -> tuple[NDArray, SyncStatistics]:
        xp, a = x.device.module(), x._array
        local_count = xp.full((1,), math.prod(a.shape[i] for i in self.axes), dtype=a.dtype)
        total, count = _global_sums(xp, array_sum(xp, a, self.axes, keepdims=True),
                                    local_count)
        mean = total / count
        centered = a - mean
        (squares,) = _global_sums(xp, array_sum(xp, centered * centered, self.axes,
                                                keepdims=True))
        var = squares / count
        inv_std = 1 / xp.sqrt(var + self.eps)
        device = x.device
        stats = SyncStatistics(_wrap(centered * inv_std, device), inv_std,
                               _wrap(mean.reshape(-1), device), _wrap(var.reshape(-1), device),
                               float(count[0]))
        return fused.affine(stats.normalized, weight, bias, channel_axis=1), stats

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, ...]:
        x, weight, _ = node.inputs
        grads = SyncNormalizeGrad(self.axes, node.saved)(out_grad, x, weight)
        return grads[0], grads[1], grads[2]


class SyncNormalizeGrad(TensorTupleOp):
    """f(g, x, w) = (dx, dw, db) of SyncNormalize: db = sum g and dw = sum g h over this
    rank's batch; dx = r w (g - sum(db) / n - h sum(dw) / n), the sums all-reduced and n
    the global count. No second derivative (it would need collectives of its own)."""

    def __init__(self, axes: Axes, stats: SyncStatistics):
        self.axes = axes
        self.stats = stats  # the forward call's, given to this one call's gradient op

    def compute(self, g: NDArray, x: NDArray, weight: NDArray) -> tuple[NDArray, ...]:
        stats, xp, ga = self.stats, g.device.module(), g._array
        h = stats.normalized._array
        grad_bias = array_sum(xp, ga, self.axes, keepdims=True)
        grad_weight = array_sum(xp, ga * h, self.axes, keepdims=True)
        total_bias, total_weight = _global_sums(xp, grad_bias, grad_weight)
        out = ga - total_bias / stats.group_size
        out -= h * (total_weight / stats.group_size)
        out *= stats.inv_std * weight._array.reshape(total_bias.shape)
        device = g.device
        return (_wrap(out, device), _wrap(grad_weight.reshape(-1), device),
                _wrap(grad_bias.reshape(-1), device))

    def gradient(self, out_grad: TensorTuple, node: TensorTuple) -> tuple[Tensor, ...]:
        raise NotImplementedError("SyncBatchNorm has no second derivative")


class SyncBatchNorm(BatchNorm1d):
    """BatchNorm1d/BatchNorm2d over the global batch: x (N, C, ...) with C = ``dim``;
    training uses the mean and biased variance of every rank's samples of a channel (and
    updates the running statistics with them, the same on every rank); eval uses the
    running statistics, as BatchNorm does. ``convert_sync_batchnorm(model)`` swaps it in."""

    def check_input(self, x: Tensor) -> None:
        if x.ndim < 2 or x.shape[1] != self.dim:
            raise ValueError(f"SyncBatchNorm({self.dim}) expects input (N, {self.dim}, ...), "
                             f"got {x.shape}")

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        self.check_input(x)
        out = SyncNormalize((0,) + tuple(range(2, x.ndim)), self.eps)(x, self.weight, self.bias)
        self._update_running_stats(out.saved.mean, out.saved.var)
        return out

    @classmethod
    def convert_sync_batchnorm(cls, module: Module) -> Module:
        """``module`` with every BatchNorm1d/BatchNorm2d inside replaced by a SyncBatchNorm
        that shares its parameters and running statistics (``module`` itself if it is one)."""
        if isinstance(module, (BatchNorm1d, BatchNorm2d)) and not isinstance(module, cls):
            return cls._from_batchnorm(module)
        for name, value in vars(module).items():
            setattr(module, name, _convert(value))
        if isinstance(module, ConvBatchNorm2d):  # its fused node takes local statistics
            module.fused = False
        return module

    @classmethod
    def _from_batchnorm(cls, bn: BatchNorm1d) -> SyncBatchNorm:
        sync = cls(bn.dim, bn.eps, bn.momentum, device=bn.weight.device,
                   dtype=str(bn.weight.dtype))
        sync.weight, sync.bias = bn.weight, bn.bias
        sync.running_mean, sync.running_var = bn.running_mean, bn.running_var
        sync.training = bn.training
        return sync


def _convert(value: Any) -> Any:
    """A module attribute with the BatchNorms inside it (through containers) converted."""
    if isinstance(value, Module):
        return SyncBatchNorm.convert_sync_batchnorm(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_convert(v) for v in value)
    if isinstance(value, dict):
        return {k: _convert(v) for k, v in value.items()}
    return value
