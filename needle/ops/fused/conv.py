"""Convolution and pooling on NHWC images: im2col by strided views, then one BLAS matmul.

Layouts: images are N×H×W×C (NHWC), conv weights K_h×K_w×C_in×C_out. A "window view" is the
N×H_out×W_out×K_h×K_w×C array of every kernel-sized window, built with ``as_strided`` and no
copy; ``compact()`` on it is the im2col matrix. Three primitives close under
differentiation, so second derivatives work:

    conv(a, w)              da = conv_transpose(g, w)    dw = conv_weight(a, g)
    conv_transpose(g, w)    dg = conv(z, w)              dw = conv_weight(z, g)
    conv_weight(a, g)       da = conv_transpose(g, z)    dg = conv(a, z)

Pooling is a composition: ``im2col`` (a window-view op whose adjoint is the scatter-add
``col2im``) followed by a max or a sum over the window axes.

These are speed primitives: each public function replaces its composition of slices,
products and ``index_add`` in ``ops/convolution.py``, which reference mode runs instead.
"""

from __future__ import annotations

import math

from ... import backend_ndarray as nd
from ...autograd import NDArray, Tensor, TensorOp
from ...backend_ndarray import blas
from ...backend_ndarray.ndarray import _wrap
from ...reference import replaces
from .. import convolution
from ..convolution import (check_bias, check_conv, check_conv_transpose, check_pool,
                           check_window, out_size)
from ..reduce import amax, summation
from . import winograd
from .pool import MaxPool

Pair = tuple[int, int]


# ---------------------------------------------------------------------- array helpers
def _pad_hw(a: NDArray, padding: Pair, fill: float = 0.0) -> NDArray:
    """a (N, H, W, C) with padding[0] rows and padding[1] columns of ``fill`` on each side;
    a negative padding crops instead."""
    crop_h, crop_w = max(-padding[0], 0), max(-padding[1], 0)
    a = a[:, crop_h:a.shape[1] - crop_h, crop_w:a.shape[2] - crop_w, :]
    pad_h, pad_w = max(padding[0], 0), max(padding[1], 0)
    if pad_h == pad_w == 0:
        return a
    n, h, w, c = a.shape
    out = nd.full((n, h + 2 * pad_h, w + 2 * pad_w, c), fill, str(a.dtype), a.device)
    out[:, pad_h:pad_h + h, pad_w:pad_w + w, :] = a
    return out


def _windows(a: NDArray, kernel: Pair, stride: int) -> NDArray:
    """The (N, H_out, W_out, K_h, K_w, C) view of every window of a (N, H, W, C); no copy."""
    n, h, w, c = a.shape
    sn, sh, sw, sc = a.strides
    out_h, out_w = (h - kernel[0]) // stride + 1, (w - kernel[1]) // stride + 1
    return a.as_strided((n, out_h, out_w, kernel[0], kernel[1], c),
                        (sn, sh * stride, sw * stride, sh, sw, sc))


def _im2col(a: NDArray, kernel: Pair, stride: int, padding: int) -> NDArray:
    """The im2col matrix (N·H_out·W_out, K_h·K_w·C): one copy of the padded window view."""
    windows = _windows(_pad_hw(a, (padding, padding)), kernel, stride)
    return windows.compact().reshape((-1, kernel[0] * kernel[1] * a.shape[3]))


def _col2im(cols: NDArray, shape: tuple[int, ...], stride: int, padding: int) -> NDArray:
    """Windows (N, H_out, W_out, K_h, K_w, C) summed back into an image of ``shape``
    (N, H, W, C), the padding cropped: K_h·K_w strided adds, each over every window."""
    n, out_h, out_w, k_h, k_w, c = cols.shape
    h, w, p = shape[1], shape[2], padding
    image = nd.full((n, h + 2 * p, w + 2 * p, c), 0, str(cols.dtype), cols.device)
    for i in range(k_h):
        for j in range(k_w):
            rows = slice(i, i + stride * (out_h - 1) + 1, stride)
            columns = slice(j, j + stride * (out_w - 1) + 1, stride)
            window = image[:, rows, columns, :]
            window += cols[:, :, :, i, j, :]  # in place: the view writes into image
    return image[:, p:p + h, p:p + w, :]


def _matrix(w: NDArray) -> NDArray:
    """A K_h×K_w×C_in×C_out weight as the (K_h·K_w·C_in, C_out) matrix im2col multiplies."""
    return w.compact().reshape((-1, w.shape[3]))


def _remainder(shape: tuple[int, ...], kernel: Pair, stride: int, padding: int) -> Pair:
    """Input rows/columns past the last window: the output_padding that restores shape."""
    return ((shape[1] + 2 * padding - kernel[0]) % stride,
            (shape[2] + 2 * padding - kernel[1]) % stride)


# ---------------------------------------------------------------------- conv
class Conv(TensorOp):
    """f(a, w[, b])[n,y,x,o] = sum_{i,j,c} pad(a)[n, s·y+i, s·x+j, c] w[i,j,c,o] (+ b[o]) for
    a (N,H,W,C_in), w (K_h,K_w,C_in,C_out), b (C_out,);
    df = (conv_transpose(g, w), conv_weight(a, g), sum of g over N, H, W).

    Replaces ``convolution.conv`` (K_h·K_w strided views, products and sums): one im2col
    copy and one BLAS matmul, or Winograd's F(4×4, 3×3) (``fused/winograd.py``, 4× fewer
    multiplications) where ``winograd.applies``. The im2col matrix (or Winograd's
    transformed input) is saved on the output node for the weight gradient, which would
    otherwise rebuild it; the optional bias is added to the product's output instead of
    through two more graph nodes."""

    saves = True

    def __init__(self, stride: int = 1, padding: int = 0):
        self.stride = stride
        self.padding = padding

    def compute(self, a: NDArray, w: NDArray, *bias: NDArray
                ) -> tuple[NDArray, tuple[NDArray, bool]]:
        kernel = (w.shape[0], w.shape[1])
        out_h = out_size(a.shape[1], kernel[0], self.stride, self.padding)
        out_w = out_size(a.shape[2], kernel[1], self.stride, self.padding)
        out_shape = (a.shape[0], out_h, out_w, w.shape[3])
        transformed = winograd.applies(a.shape, w.shape, self.stride, self.padding, a.dtype)
        if transformed:
            cols = winograd.transform_input(a, self.padding)
            out = winograd.conv2d(cols, w, out_shape)
        else:
            cols = _im2col(a, kernel, self.stride, self.padding)
            out = (cols @ _matrix(w)).reshape(out_shape)
        if bias:  # in place: ``out`` is the product's fresh array (one pass, no copy)
            out._array += bias[0]._array
        return out, (cols, transformed)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        a, w, *bias = node.inputs
        grad_bias = tuple(summation(out_grad, (0, 1, 2)) for _ in bias)
        return self.input_gradients(out_grad, a, w, node.saved) + grad_bias

    def input_gradients(self, out_grad: Tensor, a: Tensor, w: Tensor,
                        saved: tuple[NDArray, bool]) -> tuple[Tensor | None, Tensor | None]:
        """The adjoints of a and w given the output adjoint and the forward's ``saved``
        (the im2col matrix or Winograd's transformed input, and which of the two)."""
        kernel = (w.shape[0], w.shape[1])
        extra = _remainder(a.shape, kernel, self.stride, self.padding)
        grad_a = ConvTranspose(self.stride, self.padding, extra)(out_grad, w) \
            if a.requires_grad else None
        cols, transformed = Tensor.make_const(saved[0]), saved[1]
        grad_w = ConvWeight(kernel, self.stride, self.padding, transformed)(
            a, out_grad, cols) if w.requires_grad else None
        return grad_a, grad_w


@replaces(convolution.conv)
def conv(a: Tensor, b: Tensor, stride: int = 1, padding: int = 1,
         bias: Tensor | None = None) -> Tensor:
    """2-D convolution (cross-correlation, as in PyTorch) of a (N, H, W, C_in) with
    b (K, K, C_in, C_out), zero ``padding`` on H and W, plus an optional ``bias`` (C_out,);
    returns (N, H_out, W_out, C_out)."""
    b, padding = useful_kernel(a, b, stride, padding)
    if bias is None:
        return Conv(stride, padding)(a, b)
    check_bias(bias, b)
    return Conv(stride, padding)(a, b, bias)


def useful_kernel(a: Tensor, b: Tensor, stride: int, padding: int) -> tuple[Tensor, int]:
    """(kernel, padding) for conv(a, b): the arguments checked, and the kernel cropped to
    the taps that ever meet the input (``_useful_taps``) when that keeps the padding even."""
    check_conv(a, b, stride, padding)
    first_h, size_h, padding_h = _useful_taps(a.shape[1], b.shape[0], stride, padding)
    first_w, size_w, padding_w = _useful_taps(a.shape[2], b.shape[1], stride, padding)
    if padding_h == padding_w and (size_h, size_w) != b.shape[:2]:
        return b[first_h:first_h + size_h, first_w:first_w + size_w], padding_h
    return b, padding


def _useful_taps(size: int, kernel: int, stride: int, padding: int) -> tuple[int, int, int]:
    """(first, count, padding'): along one axis, the kernel taps that ever meet the input
    rather than only padding, and the padding that gives the same output with those taps
    alone. Small images in deep layers (ResNet9's 1x1 and 2x2 maps under 3x3 kernels) skip
    most of the product this way. The whole kernel when the crop would need uneven padding."""
    out = out_size(size, kernel, stride, padding)
    first = max(0, padding - stride * (out - 1))
    count = min(kernel - 1, padding + size - 1) - first + 1
    new_padding = padding - first
    uneven = stride * (out - 1) + count - size - new_padding != new_padding
    if uneven or out_size(size, count, stride, new_padding) != out:
        return 0, kernel, padding
    return first, count, new_padding


#: ConvTranspose's per-tap products pay over col2im at stride 1 up to this many output
#: channels of the conv (C_out): 2-3x on 64x28x28 images with C_in 3-16 and C_out 16-32;
#: even or worse from C_out 64 (measured, one thread).
TAPS_MAX_CHANNELS = 32


class ConvTranspose(TensorOp):
    """The adjoint of conv in its input: f(g, w) = d<conv(z, w), g>/dz for g (N,H_o,W_o,C_out),
    w (K_h,K_w,C_in,C_out); returns (N, H, W, C_in), H = (H_o-1)s - 2p + K_h + output_padding.
    df = (conv(z, w), conv_weight(z, g)) for the adjoint z.

    Replaces ``convolution.conv_transpose`` (K_h·K_w products scattered by index_add).
    Stride 1 with C_in ≥ C_out (or where Winograd applies): g padded in one copy, then
    convolved with the flipped, in/out-swapped kernel (one im2col, one matmul, no scatter).
    Otherwise one matmul g w^T and a col2im scatter: dilating g would multiply the work by
    stride², and with C_in < C_out the im2col copy (K²·C_out per pixel) outgrows the
    scatter (K²·C_in per pixel) — the input gradient of a first layer (C_in 1 or 3) would
    copy K²·C_out values per pixel. At stride 1 with few channels (C_out ≤
    ``TAPS_MAX_CHANNELS``) one product per tap, each added into its window, beats both."""

    def __init__(self, stride: int = 1, padding: int = 0, output_padding: Pair = (0, 0)):
        self.stride = stride
        self.padding = padding
        self.output_padding = output_padding

    def compute(self, g: NDArray, w: NDArray) -> NDArray:
        n, out_h, out_w = g.shape[:3]
        shape = (n, self._in_size(out_h, w.shape[0], 0), self._in_size(out_w, w.shape[1], 1),
                 w.shape[2])
        if self._takes_winograd(g, w):
            return self._by_winograd(g, w, shape)
        if self.stride == 1 and w.shape[2] >= w.shape[3]:
            return self._by_im2col(g, w, shape)
        if self.stride == 1 and w.shape[3] <= TAPS_MAX_CHANNELS:
            return self._by_taps(g, w, shape)
        return self._by_col2im(g, w, shape)

    def _takes_winograd(self, g: NDArray, w: NDArray) -> bool:
        """Whether this is a stride-1 convolution of g with the flipped kernel that
        Winograd computes."""
        k_h, k_w = w.shape[0], w.shape[1]
        swapped = (k_h, k_w, w.shape[3], w.shape[2])
        return self.stride == 1 and self.output_padding == (0, 0) and k_h == k_w and \
            winograd.applies(g.shape, swapped, 1, k_h - 1 - self.padding, g.dtype)

    def _by_winograd(self, g: NDArray, w: NDArray, shape: tuple[int, ...]) -> NDArray:
        """Stride 1: Winograd's convolution of g, padded by K-1-padding, with the flipped,
        in/out-swapped kernel."""
        flipped_w = w.flip((0, 1)).permute((0, 1, 3, 2))
        v = winograd.transform_input(g, w.shape[0] - 1 - self.padding)
        return winograd.conv2d(v, flipped_w, shape)

    def _by_im2col(self, g: NDArray, w: NDArray, shape: tuple[int, ...]) -> NDArray:
        """Stride 1: a convolution of g, padded by K-1-padding (cropped where that is
        negative), with the flipped, in/out-swapped kernel."""
        k_h, k_w = w.shape[0], w.shape[1]
        spread = _pad_hw(g, (k_h - 1 - self.padding, k_w - 1 - self.padding))
        cols = _windows(spread, (k_h, k_w), 1).compact().reshape((math.prod(shape[:3]), -1))
        # rows (c_in) by (i, j, c_out): C_out stays the contiguous axis of the copy
        flipped = w.flip((0, 1)).permute((2, 0, 1, 3)).compact().reshape((w.shape[2], -1))
        return (cols @ flipped.permute((1, 0))).reshape(shape)

    def _by_taps(self, g: NDArray, w: NDArray, shape: tuple[int, ...]) -> NDArray:
        """Stride 1, few channels: per tap (i, j) one product g w[i, j]^T (N·H_o·W_o, C_in),
        added into its shifted window of the padded image. col2im's matrix holds all K²
        taps at once and is summed back through views whose contiguous runs are C_in long,
        which costs more than the products when the channels are few."""
        xp, (n, out_h, out_w, c_out) = g.device.module(), g.shape
        k_h, k_w, c_in, p = w.shape[0], w.shape[1], w.shape[2], self.padding
        rows = g.compact()._array.reshape(-1, c_out)
        taps = xp.ascontiguousarray(w._array.transpose(0, 1, 3, 2))  # (K_h, K_w, C_out, C_in)
        image = xp.zeros((n, shape[1] + 2 * p, shape[2] + 2 * p, c_in), dtype=rows.dtype)
        product = xp.empty((rows.shape[0], c_in), dtype=rows.dtype)
        share = product.reshape(n, out_h, out_w, c_in)
        for i in range(k_h):
            for j in range(k_w):
                blas.matmul(xp, rows, taps[i, j], out=product)
                image[:, i:i + out_h, j:j + out_w] += share
        return _wrap(image[:, p:p + shape[1], p:p + shape[2]], g.device)

    def _by_col2im(self, g: NDArray, w: NDArray, shape: tuple[int, ...]) -> NDArray:
        """g w^T gives every window's share, summed back by col2im."""
        cols = g.compact().reshape((-1, g.shape[3])) @ _matrix(w).permute((1, 0))
        cols = cols.reshape(g.shape[:3] + w.shape[:3])
        return _col2im(cols, shape, self.stride, self.padding)

    def _in_size(self, out_size: int, kernel: int, axis: int) -> int:
        extra = self.output_padding[axis]
        return (out_size - 1) * self.stride - 2 * self.padding + kernel + extra

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        g, w = node.inputs
        kernel = (w.shape[0], w.shape[1])
        grad_g = Conv(self.stride, self.padding)(out_grad, w) if g.requires_grad else None
        grad_w = ConvWeight(kernel, self.stride, self.padding)(out_grad, g) \
            if w.requires_grad else None
        return grad_g, grad_w


@replaces(convolution.conv_transpose)
def conv_transpose(a: Tensor, b: Tensor, stride: int = 1, padding: int = 0,
                   output_padding: int | Pair = 0) -> Tensor:
    """Transposed convolution (the gradient of conv in its input) of a (N, H, W, C_out) with
    the conv weight b (K, K, C_in, C_out); returns (N, H', W', C_in) with
    H' = (H-1)·stride - 2·padding + K + output_padding, as PyTorch's conv_transpose2d."""
    extra = (output_padding, output_padding) if isinstance(output_padding, int) \
        else tuple(output_padding)
    check_conv_transpose(a, b, stride, padding, extra)
    return ConvTranspose(stride, padding, (extra[0], extra[1]))(a, b)


class ConvWeight(TensorOp):
    """The adjoint of conv in its weight: f(a, g)[i,j,c,o] = sum_{n,y,x} pad(a)[n, s·y+i,
    s·x+j, c] g[n,y,x,o], i.e. im2col(a)^T g; df = (conv_transpose(g, z), conv(a, z)).

    Replaces ``convolution.conv_weight``: one matmul on the im2col matrix, the forward
    conv's when it comes as the third input (a constant) ``cols`` — or Winograd's products
    on the transformed input (``transformed`` says which ``cols`` holds)."""

    def __init__(self, kernel: Pair, stride: int = 1, padding: int = 0,
                 transformed: bool = False):
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.transformed = transformed

    def compute(self, a: NDArray, g: NDArray, *cols: NDArray) -> NDArray:
        if cols and self.transformed:
            return winograd.conv2d_weight(cols[0], g)
        weight_shape = self.kernel + (a.shape[3], g.shape[3])
        if not cols and winograd.applies(a.shape, weight_shape, self.stride, self.padding,
                                         a.dtype):
            return winograd.conv2d_weight(winograd.transform_input(a, self.padding), g)
        matrix = cols[0] if cols else _im2col(a, self.kernel, self.stride, self.padding)
        grad = matrix.permute((1, 0)) @ g.compact().reshape((-1, g.shape[3]))
        return grad.reshape(self.kernel + (a.shape[3], g.shape[3]))

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        a, g = node.inputs[:2]
        extra = _remainder(a.shape, self.kernel, self.stride, self.padding)
        grad_a = ConvTranspose(self.stride, self.padding, extra)(g, out_grad) \
            if a.requires_grad else None
        grad_g = Conv(self.stride, self.padding)(a, out_grad) if g.requires_grad else None
        return (grad_a, grad_g) + (None,) * (len(node.inputs) - 2)


@replaces(convolution.conv_weight)
def conv_weight(a: Tensor, out_grad: Tensor, kernel_size: int | Pair, stride: int = 1,
                padding: int = 0) -> Tensor:
    """The gradient of sum(conv(a, w) * out_grad) in w: a (N, H, W, C_in), out_grad
    (N, H_out, W_out, C_out) -> (K, K, C_in, C_out), like torch.nn.grad.conv2d_weight."""
    kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    return ConvWeight((kernel[0], kernel[1]), stride, padding)(a, out_grad)


# ---------------------------------------------------------------------- pooling
class Im2Col(TensorOp):
    """f(a) = the (N, H_out, W_out, K, K, C) windows of a (N, H, W, C) padded with ``fill``,
    ``stride`` apart (a strided view: no copy without padding); f' = col2im.

    A primitive for speed: pooling reduces over this view instead of stacking K² slices
    (``convolution.windows``)."""

    def __init__(self, kernel: Pair, stride: int, padding: int, fill: float = 0.0):
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.fill = fill
        self.may_produce_inf = math.isinf(fill)  # max pooling pads with -inf (detect_anomaly)

    def compute(self, a: NDArray) -> NDArray:
        padding = (self.padding, self.padding)
        return _windows(_pad_hw(a, padding, self.fill), self.kernel, self.stride)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return Col2Im(node.inputs[0].shape, self.stride, self.padding)(out_grad)


def im2col(a: Tensor, kernel_size: int, stride: int = 1, padding: int = 0,
           fill: float = 0.0) -> Tensor:
    """Every K×K window of a (N, H, W, C), padded with ``fill``: (N, H_out, W_out, K, K, C)."""
    check_window(a, kernel_size, stride, padding, "im2col")
    return Im2Col((kernel_size, kernel_size), stride, padding, fill)(a)


class Col2Im(TensorOp):
    """f(cols) = the sum of each window of cols (N, H_out, W_out, K, K, C) placed back where
    im2col took it from, an image of ``shape`` (N, H, W, C); f' = im2col (zero fill)."""

    def __init__(self, shape: tuple[int, ...], stride: int, padding: int):
        self.shape = tuple(shape)
        self.stride = stride
        self.padding = padding

    def compute(self, cols: NDArray) -> NDArray:
        return _col2im(cols, self.shape, self.stride, self.padding)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        kernel = node.inputs[0].shape[3:5]
        return Im2Col((kernel[0], kernel[1]), self.stride, self.padding)(out_grad)


def col2im(cols: Tensor, shape: tuple[int, ...], stride: int = 1, padding: int = 0) -> Tensor:
    """The adjoint of im2col: windows (N, H_out, W_out, K, K, C) summed into (N, H, W, C)."""
    return Col2Im(shape, stride, padding)(cols)


@replaces(convolution.max_pool2d)
def max_pool2d(a: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> Tensor:
    """The max of each K×K window of a (N, H, W, C), ``stride`` (default K) apart, with
    -inf padding; the gradient is shared evenly among tied maxima. Non-overlapping windows
    (stride K, no padding) run as the ``MaxPool`` primitive (``fused/pool.py``)."""
    stride = kernel_size if stride is None else stride
    check_pool(a, kernel_size, stride, padding, "max_pool2d")
    if stride == kernel_size and padding == 0:
        return MaxPool(kernel_size)(a)
    windows = Im2Col((kernel_size, kernel_size), stride, padding, float("-inf"))(a)
    return amax(windows, (3, 4))


@replaces(convolution.avg_pool2d)
def avg_pool2d(a: Tensor, kernel_size: int, stride: int | None = None,
               padding: int = 0) -> Tensor:
    """The mean of each K×K window of a (N, H, W, C), ``stride`` (default K) apart; zero
    padding counts in the mean (PyTorch's count_include_pad=True)."""
    stride = kernel_size if stride is None else stride
    check_pool(a, kernel_size, stride, padding, "avg_pool2d")
    windows = Im2Col((kernel_size, kernel_size), stride, padding)(a)
    return summation(windows, (3, 4)) / (kernel_size * kernel_size)


