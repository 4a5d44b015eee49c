"""Convolution and pooling on NHWC images, composed from slicing, padding and matmul.

Layouts: images are N×H×W×C (NHWC), conv weights K_h×K_w×C_in×C_out. Kernel tap (i, j)
meets the strided view ``x[:, i::s, j::s, :]`` of the padded image, so a convolution is the
sum over taps of that view times the (C_in, C_out) matrix w[i, j]; its adjoints scatter the
same views back (``index_add``). Gradients come from the ops used, second ones too.
``ops/fused/conv.py`` replaces these with one im2col copy and one BLAS product each.
"""

from __future__ import annotations

import numpy as np

from .. import backend_ndarray as nd
from ..autograd import Tensor, sum_node_list
from .indexing import index_add
from .promotion import check_one_dtype
from .reduce import amax
from .shape import pad, stack

Pair = tuple[int, int]


def out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """The output length along one axis: (size + 2 padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def tap(i: int, j: int, out_hw: Pair, stride: int) -> tuple[slice, ...]:
    """The index of the (N, H_out, W_out, C) view that kernel tap (i, j) meets."""
    rows = slice(i, i + stride * (out_hw[0] - 1) + 1, stride)
    columns = slice(j, j + stride * (out_hw[1] - 1) + 1, stride)
    return (slice(None), rows, columns, slice(None))


def pad_hw(a: Tensor, padding: int) -> Tensor:
    """a (N, H, W, C) with ``padding`` zeros on each side of H and W."""
    return pad(a, ((0, 0), (padding, padding), (padding, padding), (0, 0))) if padding else a


def conv(a: Tensor, b: Tensor, stride: int = 1, padding: int = 1,
         bias: Tensor | None = None) -> Tensor:
    """out[n, y, x, o] = sum_{i,j,c} pad(a)[n, s·y+i, s·x+j, c] b[i, j, c, o] (+ bias[o]) for
    a (N, H, W, C_in), b (K_h, K_w, C_in, C_out): (N, H_out, W_out, C_out)."""
    check_conv(a, b, stride, padding)
    padded = pad_hw(a, padding)
    k_h, k_w = b.shape[0], b.shape[1]
    out_hw = (out_size(a.shape[1], k_h, stride, padding),
              out_size(a.shape[2], k_w, stride, padding))
    out = sum_node_list([padded[tap(i, j, out_hw, stride)] @ b[i, j]
                     for i in range(k_h) for j in range(k_w)])
    if bias is None:
        return out
    check_bias(bias, b)
    return out + bias.broadcast_to(out.shape)


def conv_transpose(a: Tensor, b: Tensor, stride: int = 1, padding: int = 0,
                   output_padding: int | Pair = 0) -> Tensor:
    """The adjoint of conv in its input: each g[n, y, x] times w[i, j]^T added back at
    (s·y+i, s·x+j), then the padding cropped; a (N, H, W, C_out), b (K, K, C_in, C_out) ->
    (N, H', W', C_in), H' = (H-1)·stride - 2·padding + K + output_padding."""
    extra = (output_padding, output_padding) if isinstance(output_padding, int) \
        else (output_padding[0], output_padding[1])
    check_conv_transpose(a, b, stride, padding, extra)
    n, h, w = a.shape[:3]
    k_h, k_w, c_in = b.shape[0], b.shape[1], b.shape[2]
    size = ((h - 1) * stride + k_h + extra[0], (w - 1) * stride + k_w + extra[1])
    shape = (n, size[0], size[1], c_in)
    image = sum_node_list([index_add(a @ b[i, j].transpose(), tap(i, j, (h, w), stride), shape)
                       for i in range(k_h) for j in range(k_w)])
    return image[:, padding:size[0] - padding, padding:size[1] - padding, :]


def conv_weight(a: Tensor, out_grad: Tensor, kernel_size: int | Pair, stride: int = 1,
                padding: int = 0) -> Tensor:
    """The gradient of sum(conv(a, w) * out_grad) in w: for each tap (i, j), the view it
    meets (as rows of C_in) transposed times out_grad (as rows of C_out) -> (K, K, C_in, C_out)."""
    k_h, k_w = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    padded = pad_hw(a, padding)
    out_hw = (out_grad.shape[1], out_grad.shape[2])
    rows_g = out_grad.reshape((-1, out_grad.shape[3]))
    taps = [[padded[tap(i, j, out_hw, stride)].reshape((-1, a.shape[3])).transpose() @ rows_g
             for j in range(k_w)] for i in range(k_h)]
    return stack([stack(row, 0) for row in taps], 0)


def windows(a: Tensor, kernel_size: int, stride: int, padding: int,
            fill: float = 0.0) -> Tensor:
    """Every K×K window of a (N, H, W, C) padded with ``fill``: (N, H_out, W_out, C, K·K)."""
    padded = pad_hw(a, padding)
    if padding and fill:  # a constant that is ``fill`` on the border and 0 inside
        border = np.full(padded.shape, fill, dtype=a.dtype)
        border[:, padding:-padding, padding:-padding, :] = 0
        padded = padded + Tensor.make_const(nd.array(border, device=a.device, dtype=a.dtype))
    out_hw = (out_size(a.shape[1], kernel_size, stride, padding),
              out_size(a.shape[2], kernel_size, stride, padding))
    return stack([padded[tap(i, j, out_hw, stride)] for i in range(kernel_size)
                  for j in range(kernel_size)], 4)


def max_pool2d(a: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> Tensor:
    """The max of each K×K window of a (N, H, W, C), ``stride`` (default K) apart, padded
    with the dtype's lowest finite value (as good as -inf: padding ≤ K/2 leaves every window
    a real element, and no infinity ever enters the graph); the gradient is shared evenly
    among tied maxima."""
    stride = kernel_size if stride is None else stride
    check_pool(a, kernel_size, stride, padding, "max_pool2d")
    lowest = float(np.finfo(a.dtype).min)
    return amax(windows(a, kernel_size, stride, padding, lowest), 4)


def avg_pool2d(a: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> Tensor:
    """The mean of each K×K window of a (N, H, W, C), ``stride`` (default K) apart; zero
    padding counts in the mean (PyTorch's count_include_pad=True)."""
    stride = kernel_size if stride is None else stride
    check_pool(a, kernel_size, stride, padding, "avg_pool2d")
    return windows(a, kernel_size, stride, padding).sum(4) / (kernel_size * kernel_size)


def check_bias(bias: Tensor, b: Tensor) -> None:
    if bias.shape != (b.shape[3],):
        raise ValueError(f"conv: bias must have shape ({b.shape[3]},) to match the weight "
                         f"{b.shape}, got {bias.shape}")
    check_one_dtype("conv", b, bias)


# ---------------------------------------------------------------------- argument checks
def check_hyper(stride: int, padding: int, name: str) -> None:
    if not isinstance(stride, int) or stride < 1:
        raise ValueError(f"{name}: stride must be a positive int, got {stride!r}")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"{name}: padding must be a non-negative int, got {padding!r}")


def check_window(a: Tensor, kernel: int | Pair, stride: int, padding: int, name: str) -> None:
    """a is N×H×W×C and a K_h×K_w window fits in it once padded."""
    check_hyper(stride, padding, name)
    if a.ndim != 4:
        raise ValueError(f"{name} expects a 4-D input (N, H, W, C), got shape {a.shape}")
    k_h, k_w = (kernel, kernel) if isinstance(kernel, int) else kernel
    if k_h < 1 or k_w < 1:
        raise ValueError(f"{name}: kernel size must be positive, got {k_h}x{k_w}")
    padded = (a.shape[1] + 2 * padding, a.shape[2] + 2 * padding)
    if k_h > padded[0] or k_w > padded[1]:
        raise ValueError(f"{name}: kernel {k_h}x{k_w} is larger than the padded input "
                         f"{padded[0]}x{padded[1]} (input {a.shape[1]}x{a.shape[2]}, "
                         f"padding {padding})")


def check_conv(a: Tensor, b: Tensor, stride: int, padding: int) -> None:
    if b.ndim != 4:
        raise ValueError(f"conv expects a 4-D weight (K, K, C_in, C_out), got shape {b.shape}")
    check_window(a, (b.shape[0], b.shape[1]), stride, padding, "conv")
    if a.shape[3] != b.shape[2]:
        raise ValueError(f"conv: the input has {a.shape[3]} channels (shape {a.shape}) but "
                         f"the weight expects C_in={b.shape[2]} (shape {b.shape})")
    check_one_dtype("conv", a, b)


def check_conv_transpose(a: Tensor, b: Tensor, stride: int, padding: int,
                          output_padding: tuple[int, ...]) -> None:
    check_hyper(stride, padding, "conv_transpose")
    if a.ndim != 4 or b.ndim != 4:
        raise ValueError(f"conv_transpose expects a 4-D input (N, H, W, C) and weight "
                         f"(K, K, C_in, C_out), got shapes {a.shape} and {b.shape}")
    if a.shape[3] != b.shape[3]:
        raise ValueError(f"conv_transpose: the input has {a.shape[3]} channels (shape "
                         f"{a.shape}) but the weight expects C_out={b.shape[3]} "
                         f"(shape {b.shape})")
    check_one_dtype("conv_transpose", a, b)
    if len(output_padding) != 2 or not all(0 <= e < max(stride, 1) for e in output_padding):
        raise ValueError(f"conv_transpose: output_padding must be in [0, stride={stride}), "
                         f"got {output_padding}")
    for axis in (1, 2):
        size = (a.shape[axis] - 1) * stride - 2 * padding + b.shape[axis - 1] \
            + output_padding[axis - 1]
        if size < 1:
            raise ValueError(f"conv_transpose: input {a.shape} with kernel {b.shape[:2]}, "
                             f"stride {stride} and padding {padding} gives an empty output")


def check_pool(a: Tensor, kernel_size: int, stride: int, padding: int, name: str) -> None:
    check_window(a, kernel_size, stride, padding, name)
    if padding > kernel_size // 2:
        raise ValueError(f"{name}: padding ({padding}) must be at most half the kernel size "
                         f"({kernel_size})")
