"""Image layers on N×C×H×W tensors: convolutions, 2-D batch norm, pooling, channel dropout.

The ops underneath work in NHWC; each layer permutes in and out with views, so data made by
one layer reaches the next without a copy (numpy keeps the NHWC memory order through
elementwise ops). Weights use needle's layout K×K×C_in×C_out, not PyTorch's C_out×C_in×K×K.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from .basic import BatchNorm1d, Dropout
from .module import Module, Parameter

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)

IntPair = int | tuple[int, int]
Padding = IntPair | str  # an int, (pad_h, pad_w), "same" or "valid"
Sides = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


def _pair(value: IntPair, name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair, or a clear error."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair[0], pair[1]


def _sides(padding: Padding, kernel: tuple[int, int], stride: tuple[int, int]) -> Sides:
    """Zero padding on each side of H and W; "same" pads k - 1 in all, the extra row/column
    after (PyTorch's rule, stride 1 only), "valid" pads nothing."""
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        if stride != (1, 1):
            raise ValueError(f"padding='same' needs stride 1 (as in PyTorch), got {stride}")
        return ((kernel[0] - 1) // 2, kernel[0] // 2), ((kernel[1] - 1) // 2, kernel[1] // 2)
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    pad_h, pad_w = _pair(padding, "padding")
    return (pad_h, pad_h), (pad_w, pad_w)


def _pad_sides(x: Tensor, sides: Sides) -> Tensor:
    """x (N, H, W, C) zero-padded by ``sides``."""
    if sides == ((0, 0), (0, 0)):
        return x
    return ops.pad(x, ((0, 0), sides[0], sides[1], (0, 0)))


def _strided(x: Tensor, stride: tuple[int, int], step: int) -> Tensor:
    """Every (stride / step)-th row and column of x (N, H, W, C), computed at stride
    ``step``: how unequal strides reuse the ops' single stride."""
    rows, columns = stride[0] // step, stride[1] // step
    return x if rows == columns == 1 else x[:, ::rows, ::columns, :]


def conv2d_nhwc(x: Tensor, weight: Tensor, bias: Tensor | None, stride: IntPair = 1,
                padding: Padding = 0) -> Tensor:
    """x (N, H, W, C_in) convolved with weight (K_h, K_w, C_in, C_out) (+ bias (C_out,)),
    with int or pair ``stride`` and ``padding`` (or "same"/"valid"). Equal strides and
    symmetric equal padding go straight to ``ops.conv``; otherwise the input is padded
    explicitly and an unequal stride is taken at their gcd and subsampled."""
    strides = _pair(stride, "stride")
    (top, bottom), (left, right) = sides = _sides(padding, (weight.shape[0], weight.shape[1]),
                                                 strides)
    if strides[0] == strides[1] and top == bottom == left == right:
        return ops.conv(x, weight, strides[0], top, bias)
    step = math.gcd(*strides)
    return _strided(ops.conv(_pad_sides(x, sides), weight, step, 0, bias), strides, step)


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
    H_out = (H + 2 padding - K) // stride + 1. ``kernel_size``, ``stride`` and ``padding`` are
    ints or (h, w) pairs; ``padding`` may also be "same" (stride 1) or "valid". Weight
    (K_h, K_w, C_in, C_out) and bias (C_out,) are U(-1/sqrt(C_in K_h K_w), 1/sqrt(...)),
    PyTorch's default initialisation."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Padding = 0, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        sizes = {"in_channels": in_channels, "out_channels": out_channels,
                 "kernel_size": kernel_size, "stride": stride}
        for name, value in sizes.items():
            parts = value if isinstance(value, tuple) and name in ("kernel_size", "stride") \
                else (value,)
            if not all(isinstance(v, int) and v >= 1 for v in parts):
                pair = " (or a pair of them)" if isinstance(value, tuple) else ""
                raise ValueError(f"{type(self).__name__}: {name} must be a positive int{pair}, "
                                 f"got {value!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.kernel = _pair(kernel_size, "kernel_size")
        self.stride = stride
        self.padding = padding
        _sides(padding, self.kernel, _pair(stride, "stride"))  # a bad value fails here
        self.weight, self.bias = self._initial_parameters(bias, device, dtype)

    def _initial_parameters(self, bias: bool, device: Device | None,
                            dtype: str) -> tuple[Parameter, Parameter | None]:
        """(weight, bias) drawn in that order."""
        (k_h, k_w), c_in, c_out = self.kernel, self.in_channels, self.out_channels
        weight = _uniform((k_h, k_w, c_in, c_out), c_in * k_h * k_w, device, dtype)
        return weight, _uniform((c_out,), c_in * k_h * k_w, device, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x, self.in_channels)
        return channels_last(self._convolve, x)

    def _convolve(self, x: Tensor) -> Tensor:
        """The layer on x (N, H, W, C_in) -> (N, H_out, W_out, C_out)."""
        return conv2d_nhwc(x, self.weight, self.bias, self.stride, self.padding)

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
        k, c_in, c_out = self.kernel[0], self.in_channels, self.out_channels
        weight = init.kaiming_uniform(c_in * k * k, c_out * k * k, shape=(k, k, c_in, c_out),
                                      device=device, dtype=dtype)
        return Parameter(weight), _uniform((c_out,), c_in * k * k, device, dtype) if bias \
            else None


class ConvTranspose2d(Conv2d):
    """PyTorch's ConvTranspose2d: x (N, C_in, H, W) -> (N, C_out, H', W'), H' = (H - 1) stride
    - 2 padding + K + output_padding; the gradient of a Conv2d(C_out, C_in) in its input.
    ``kernel_size``, ``stride``, ``padding``, ``output_padding`` are ints or (h, w) pairs.
    Weight (K_h, K_w, C_out, C_in) and bias (C_out,) are U(-1/sqrt(C_out K_h K_w), ...)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                 bias: bool = True, device: Device | None = None, dtype: str = "float32"):
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d takes int or pair padding, got {padding!r} "
                             "(as in PyTorch)")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, bias, device,
                         dtype)
        self.output_padding = output_padding

    def _initial_parameters(self, bias: bool, device: Device | None,
                            dtype: str) -> tuple[Parameter, Parameter | None]:
        (k_h, k_w), c_in, c_out = self.kernel, self.in_channels, self.out_channels
        weight = _uniform((k_h, k_w, c_out, c_in), c_out * k_h * k_w, device, dtype)
        return weight, _uniform((c_out,), c_out * k_h * k_w, device, dtype) if bias else None

    def _convolve(self, x: Tensor) -> Tensor:
        padding = self.padding
        assert not isinstance(padding, str)  # refused in __init__
        out = conv_transpose2d_nhwc(x, self.weight, self.stride, padding, self.output_padding)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
               f"stride={self.stride}, padding={self.padding}, " \
               f"output_padding={self.output_padding}"


def conv_transpose2d_nhwc(x: Tensor, weight: Tensor, stride: IntPair = 1, padding: IntPair = 0,
                          output_padding: IntPair = 0) -> Tensor:
    """x (N, H, W, C_out) through the transposed convolution of weight (K_h, K_w, C_in,
    C_out) with int or pair arguments. Equal pairs go straight to ``ops.conv_transpose``;
    otherwise the input is spread by the strides (zeros between rows/columns), transposed
    at stride 1, and the padding cropped from the result."""
    strides, pads = _pair(stride, "stride"), _pair(padding, "padding")
    extra = _pair(output_padding, "output_padding")
    if strides[0] == strides[1] and pads[0] == pads[1]:
        return ops.conv_transpose(x, weight, strides[0], pads[0], extra)
    if not all(0 <= e < s for e, s in zip(extra, strides)):
        raise ValueError(f"output_padding must be smaller than the stride, got {extra} for "
                         f"stride {strides}")
    spread = _spread(x, strides, extra)
    out = ops.conv_transpose(spread, weight, 1, 0)
    return out[:, pads[0]:out.shape[1] - pads[0], pads[1]:out.shape[2] - pads[1], :]


def _spread(x: Tensor, strides: tuple[int, int], extra: tuple[int, int]) -> Tensor:
    """x (N, H, W, C) with stride - 1 zeros between rows (columns), and ``extra`` zero rows
    (columns) at the end: what a strided transposed convolution sees at stride 1."""
    for axis, (step, more) in enumerate(zip(strides, extra), start=1):
        if step > 1:
            size = (x.shape[axis] - 1) * step + 1
            x = ops.dilate(x, (axis,), step - 1)
            x = x[(slice(None),) * axis + (slice(0, size),)]
        if more:
            pads = [(0, 0)] * 4
            pads[axis] = (0, more)
            x = ops.pad(x, pads)
    return x


class BatchNorm2d(BatchNorm1d):
    """BatchNorm1d per channel of x (N, C, H, W): the N·H·W values of a channel are its batch.
    weight ones, bias zeros, running_mean zeros, running_var ones, all (C,)."""

    def check_input(self, x: Tensor) -> None:
        _check_image(self, x, self.dim, "dim")


class MaxPool2d(Module):
    """The max of each K_h×K_w window of x (N, C, H, W), ``stride`` (default the kernel)
    apart, with implicit -inf ``padding``; each an int or an (h, w) pair."""

    fill = float("-inf")

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        kernel, pads = _pair(kernel_size, "kernel_size"), _pair(padding, "padding")
        if any(p > k // 2 for p, k in zip(pads, kernel)):
            raise ValueError(f"{type(self).__name__}: padding {pads} must be at most half the "
                             f"kernel size {kernel}")

    def forward(self, x: Tensor) -> Tensor:
        _check_image(self, x)
        return channels_last(self._pool, x)

    def _pool(self, x: Tensor) -> Tensor:
        """x (N, H, W, C) -> (N, H_out, W_out, C)."""
        if isinstance(self.kernel_size, int) and isinstance(self.stride, int) and \
                isinstance(self.padding, int):
            return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)
        return self._reduce(_windows(x, self.kernel_size, self.stride, self.padding, self.fill))

    def _reduce(self, windows: Tensor) -> Tensor:
        return ops.amax(windows, (3, 4))

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


def _windows(x: Tensor, kernel_size: IntPair, stride: IntPair, padding: IntPair,
             fill: float) -> Tensor:
    """The (N, H_out, W_out, K_h, K_w, C) windows of x (N, H, W, C) for pair arguments:
    padded with ``fill`` on H and W, taken at the strides' gcd and subsampled."""
    kernel, strides = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    pad_h, pad_w = _pair(padding, "padding")
    if pad_h or pad_w:
        padded = ops.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w), (0, 0)))
        if fill:
            inside = np.zeros(padded.shape[1:3], dtype=bool)
            inside[pad_h:pad_h + x.shape[1], pad_w:pad_w + x.shape[2]] = True
            border = np.where(inside, 0.0, fill).astype(x.dtype)[None, :, :, None]
            padded = padded + Tensor(border, device=x.device, requires_grad=False)
        x = padded
    step = math.gcd(*strides)
    windows = ops.Im2Col(kernel, step, 0)(x)
    rows, columns = strides[0] // step, strides[1] // step
    return windows if rows == columns == 1 else windows[:, ::rows, ::columns]


class AvgPool2d(MaxPool2d):
    """The mean of each K_h×K_w window of x (N, C, H, W), ``stride`` (default the kernel)
    apart; zero ``padding`` counts in the mean (PyTorch's default)."""

    fill = 0.0

    def _pool(self, x: Tensor) -> Tensor:
        if isinstance(self.kernel_size, int) and isinstance(self.stride, int) and \
                isinstance(self.padding, int):
            return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
        return self._reduce(_windows(x, self.kernel_size, self.stride, self.padding, self.fill))

    def _reduce(self, windows: Tensor) -> Tensor:
        return ops.mean(windows, (3, 4))


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
