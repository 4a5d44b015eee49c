"""Image layers on N×C×H×W tensors: convolutions, 2-D batch norm, pooling, channel dropout.

The ops underneath work in NHWC; each layer permutes in and out with views, so data made by
one layer reaches the next without a copy (numpy keeps the NHWC memory order through
elementwise ops). Weights use needle's layout K×K×C_in×C_out, not PyTorch's C_out×C_in×K×K.
"""

from __future__ import annotations

import math
from typing import Callable

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from .basic import BatchNorm1d, Dropout
from .module import Module, Parameter

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def channels_last(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``fn`` (working on N×H×W×C images, needle's ops' layout) applied to x (N, C, H, W)."""
    return ops.permute(fn(ops.permute(x, NCHW_TO_NHWC)), NHWC_TO_NCHW)


def _check_image(layer: Module, x: Tensor, channels: int | None = None,
                 argument: str = "in_channels") -> None:
    """x is N×C×H×W with ``channels`` channels, or a clear error naming the layer."""
    if x.ndim != 4:
        raise ValueError(f"{type(layer).__name__} expects a 4-D input (N, C, H, W), got shape "
                         f"{x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{type(layer).__name__} expects {channels} input channels "
                         f"({argument}={channels}), got {x.shape[1]} (input shape {x.shape})")


class Conv2d(Module):
    """PyTorch's Conv2d on x (N, C_in, H, W) -> (N, C_out, H_out, W_out), with
    H_out = (H + 2 padding - K) // stride + 1. Weight (K, K, C_in, C_out) and bias (C_out,)
    are U(-1/sqrt(C_in K²), 1/sqrt(C_in K²)), PyTorch's default initialisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True, device: Device | None = None,
                 dtype: str = "float32"):
        super().__init__()
        sizes = {"in_channels": in_channels, "out_channels": out_channels,
                 "kernel_size": kernel_size, "stride": stride}
        for name, value in sizes.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int, got "
                                 f"{value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.weight, self.bias = self._initial_parameters(bias, device, dtype)

    def _initial_parameters(self, bias: bool, device: Device | None,
                            dtype: str) -> tuple[Parameter, Parameter | None]:
        """(weight, bias) drawn in that order."""
        k, c_in, c_out = self.kernel_size, self.in_channels, self.out_channels
        weight = _uniform((k, k, c_in, c_out), c_in * k * k, device, dtype)
        return weight, _uniform((c_out,), c_in * k * k, device, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x, self.in_channels)
        return channels_last(self._convolve, x)

    def _convolve(self, x: Tensor) -> Tensor:
        """The layer on x (N, H, W, C_in) -> (N, H_out, W_out, C_out)."""
        return ops.conv(x, self.weight, self.stride, self.padding, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}"


def _uniform(shape: tuple[int, ...], fan_in: int, device: Device | None,
             dtype: str) -> Parameter:
    """U(-1/sqrt(fan_in), 1/sqrt(fan_in)) of ``shape``: PyTorch's default for conv layers."""
    return Parameter(init.uniform(*shape, bound=1 / math.sqrt(fan_in), device=device,
                                  dtype=dtype))


class Conv(Conv2d):
    """needle's Conv: x (N, C_in, H, W) -> (N, C_out, ceil(H/stride), ceil(W/stride)), "same"
    padding K//2. Weight (K, K, C_in, C_out) from kaiming_uniform(C_in K², C_out K²); then
    bias (C_out,) from U(-1/sqrt(C_in K²), 1/sqrt(C_in K²))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 bias: bool = True, device: Device | None = None, dtype: str = "float32"):
        super().__init__(in_channels, out_channels, kernel_size, stride, kernel_size // 2,
                         bias, device, dtype)

    def _initial_parameters(self, bias: bool, device: Device | None,
                            dtype: str) -> tuple[Parameter, Parameter | None]:
        k, c_in, c_out = self.kernel_size, self.in_channels, self.out_channels
        weight = init.kaiming_uniform(c_in * k * k, c_out * k * k, shape=(k, k, c_in, c_out),
                                      device=device, dtype=dtype)
        return Parameter(weight), _uniform((c_out,), c_in * k * k, device, dtype) if bias \
            else None


class ConvTranspose2d(Conv2d):
    """PyTorch's ConvTranspose2d: x (N, C_in, H, W) -> (N, C_out, H', W'), H' = (H - 1) stride
    - 2 padding + K + output_padding; the gradient of a Conv2d(C_out, C_in) in its input.
    Weight (K, K, C_out, C_in) and bias (C_out,) are U(-1/sqrt(C_out K²), 1/sqrt(C_out K²))."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, output_padding: int = 0, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, device,
                         dtype)
        self.output_padding = output_padding

    def _initial_parameters(self, bias: bool, device: Device | None,
                            dtype: str) -> tuple[Parameter, Parameter | None]:
        k, c_in, c_out = self.kernel_size, self.in_channels, self.out_channels
        weight = _uniform((k, k, c_out, c_in), c_out * k * k, device, dtype)
        return weight, _uniform((c_out,), c_out * k * k, device, dtype) if bias else None

    def _convolve(self, x: Tensor) -> Tensor:
        out = ops.conv_transpose(x, self.weight, self.stride, self.padding, self.output_padding)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}, " \
               f"output_padding={self.output_padding}"


class BatchNorm2d(BatchNorm1d):
    """BatchNorm1d per channel of x (N, C, H, W): the N·H·W values of a channel are its batch.
    weight ones, bias zeros, running_mean zeros, running_var ones, all (C,)."""

    def check_input(self, x: Tensor) -> None:
        _check_image(self, x, self.dim, "dim")


class MaxPool2d(Module):
    """The max of each K×K window of x (N, C, H, W), ``stride`` (default K) apart, with
    implicit -inf ``padding``."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x)
        return channels_last(self.pool, x)

    def pool(self, x: Tensor) -> Tensor:
        """The pooling on x (N, H, W, C)."""
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    """The mean of each K×K window of x (N, C, H, W), ``stride`` (default K) apart; zero
    ``padding`` counts in the mean (PyTorch's default)."""

    def pool(self, x: Tensor) -> Tensor:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """Global average pooling: x (N, C, H, W) -> (N, C, 1, 1); only output_size=1."""

    def __init__(self, output_size: int | tuple[int, int] = 1):
        super().__init__()
        if output_size not in (1, (1, 1)):
            raise ValueError(f"AdaptiveAvgPool2d supports only output_size=1, got "
                             f"{output_size!r}")
        self.output_size = 1

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x)
        return ops.mean(x, (2, 3), keepdims=True)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class Dropout2d(Dropout):
    """In training, zeroes whole channels of x (N, C, H, W) with probability p and scales the
    rest by 1/(1-p): x * randb(N, C, 1, 1, p=1-p) / (1-p). The identity in eval mode."""

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x)
        if not self.training:
            return x
        keep = init.randb(x.shape[0], x.shape[1], 1, 1, p=1 - self.p, device=x.device)
        return x * ops.broadcast_to(ops.astype(keep, x.dtype) * (1 / (1 - self.p)), x.shape)
