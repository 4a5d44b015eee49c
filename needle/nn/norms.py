"""BatchNorm's variants and the activations of fast.ai's notebooks: a general LayerNorm,
GroupNorm, InstanceNorm, PReLU and GeneralRelu (PyTorch's shapes and defaults).

All normalise with ``ops.normalize`` over the right axes (biased variance, ``eps`` inside
the square root) and need no running statistics: they behave the same in training and
evaluation and at any batch size. Images are (N, C, *spatial).
"""

from __future__ import annotations

import math
from typing import Sequence

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from .module import Module, Parameter


def _per_channel(vector: Tensor, ndim: int) -> Tensor:
    """A (C,) tensor shaped (1, C, 1, ...) to broadcast over (N, C, *spatial)."""
    return ops.reshape(vector, (1, vector.shape[0]) + (1,) * (ndim - 2))


def _check_channels(module: Module, x: Tensor, channels: int) -> None:
    if x.ndim < 2 or x.shape[1] != channels:
        raise ValueError(f"{type(module).__name__} expects input (N, {channels}, ...), got "
                         f"shape {x.shape}")


class LayerNorm(Module):
    """PyTorch's LayerNorm: normalises the last ``len(normalized_shape)`` axes of x
    (..., *normalized_shape); weight ones and bias zeros of ``normalized_shape`` when
    ``elementwise_affine`` (bias only when ``bias``)."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Parameter(init.ones(*shape, device=device, dtype=dtype)) \
            if elementwise_affine else None
        self.bias = Parameter(init.zeros(*shape, device=device, dtype=dtype)) \
            if elementwise_affine and bias else None

    def forward(self, x: Tensor) -> Tensor:
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            raise ValueError(f"LayerNorm({self.normalized_shape}) expects input (..., "
                             f"{', '.join(map(str, self.normalized_shape))}), got shape "
                             f"{x.shape}")
        axes = tuple(range(x.ndim - k, x.ndim))
        if k == 1 and self.weight is not None and self.bias is not None:
            return ops.normalize(x, axes, self.eps, self.weight, self.bias)  # fused affine
        out = ops.normalize(x, axes, self.eps)
        if self.weight is not None:
            out = out * self.weight
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, " \
               f"elementwise_affine={self.weight is not None}"


class GroupNorm(Module):
    """Normalises x (N, C, *) over each of ``num_groups`` groups of C / num_groups channels
    (and all spatial positions); then a per-channel affine map, weight ones, bias zeros (C,).
    num_groups = 1 is a LayerNorm over (C, *), num_groups = C an InstanceNorm."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.weight = Parameter(init.ones(num_channels, device=device, dtype=dtype)) \
            if affine else None
        self.bias = Parameter(init.zeros(num_channels, device=device, dtype=dtype)) \
            if affine else None

    def forward(self, x: Tensor) -> Tensor:
        _check_channels(self, x, self.num_channels)
        n = x.shape[0]
        grouped = ops.reshape(x, (n, self.num_groups, math.prod(x.shape[1:]) // self.num_groups))
        out = ops.reshape(ops.normalize(grouped, 2, self.eps), x.shape)
        if self.weight is None or self.bias is None:
            return out
        return out * _per_channel(self.weight, x.ndim) + _per_channel(self.bias, x.ndim)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, " \
               f"affine={self.weight is not None}"


class InstanceNorm(GroupNorm):
    """Normalises each channel of each sample of x (N, C, *spatial) over its positions;
    PyTorch's default ``affine=False`` (no running statistics)."""

    spatial_dims: int | None = None

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = False,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__(num_features, num_features, eps, affine, device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        if self.spatial_dims is not None and x.ndim != self.spatial_dims + 2:
            raise ValueError(f"{type(self).__name__} expects {self.spatial_dims + 2}-D input "
                             f"(N, C, ...), got shape {x.shape}")
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}, affine={self.weight is not None}"


class InstanceNorm1d(InstanceNorm):
    """InstanceNorm of x (N, C, L)."""

    spatial_dims = 1


class InstanceNorm2d(InstanceNorm):
    """InstanceNorm of x (N, C, H, W)."""

    spatial_dims = 2


class PReLU(Module):
    """max(0, x) + a min(0, x) with a learnt slope a: one for all channels
    (``num_parameters=1``) or one per channel (axis 1 of x), initialised to ``init``."""

    def __init__(self, num_parameters: int = 1, init: float = 0.25,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.num_parameters = num_parameters
        self.weight = Parameter(_full(num_parameters, init, device, dtype))

    def forward(self, x: Tensor) -> Tensor:
        if self.num_parameters == 1:
            slope = ops.reshape(self.weight, (1,) * max(x.ndim, 1))
        else:
            _check_channels(self, x, self.num_parameters)
            slope = _per_channel(self.weight, x.ndim)
        return ops.where(x > 0, x, x * slope)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


def _full(n: int, value: float, device: Device | None, dtype: str) -> Tensor:
    return init.constant(n, c=value, device=device, dtype=dtype)


class GeneralRelu(Module):
    """fast.ai's GeneralRelu: leaky_relu(x, leak) (relu when ``leak`` is None), minus
    ``sub``, clamped at most ``maxv`` — e.g. GeneralRelu(0.1, 0.4) keeps the mean near 0."""

    def __init__(self, leak: float | None = None, sub: float | None = None,
                 maxv: float | None = None):
        super().__init__()
        self.leak, self.sub, self.maxv = leak, sub, maxv

    def forward(self, x: Tensor) -> Tensor:
        out = ops.where(x > 0, x, x * self.leak) if self.leak else ops.relu(x)
        if self.sub is not None:
            out = out - self.sub
        if self.maxv is not None:
            out = ops.where(out > self.maxv, self.maxv, out)
        return out

    def extra_repr(self) -> str:
        return f"leak={self.leak}, sub={self.sub}, maxv={self.maxv}"
