"""Fused kernels: several array operations in one call on the device's own arrays.

Written with the device's array module directly (in place where it saves a pass), they
spare the per-call checks of NDArray's elementwise methods on small hot-path arrays; the
ops that call them (``ops.Normalize``) still have gradients written in Tensor ops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import blas, parallel, vml
from .device import Shape
from .ndarray import NDArray, _blas_ready, _wrap, array_sum

Axes = Shape  # reduced axes, always a tuple here


#: The longest rows ``per_channel`` lays channels-last memory out in (elements).
WIDE_ROW_MAX = 1 << 16


def per_channel(xp: Any, ufunc: Any, a: Any, v: Any, out: Any = None) -> Any:
    """``ufunc(a, v, out=out)`` for a per-channel ``v`` (1, ..., 1, C) broadcast over a
    C-contiguous ``a`` (..., C): as rows of the longest product of a's trailing axes up to
    ``WIDE_ROW_MAX`` elements, against v tiled to that length. Any other a or v: as is.

    Why: numpy runs such a broadcast one C-long inner loop at a time, which is slow for few
    channels. BatchNorm2d(16) on (64, 28, 28, 16), one thread: a * v 0.34-0.48 ms, a * a
    0.09 ms; as rows of 28 * 28 * 16 against v tiled 784 times, 0.11-0.14 ms (rows of
    W * C: 0.16-0.19 ms; C=32 on (64, 14, 14, 32): 0.14 -> 0.06 ms). BatchNorm's forward
    and backward take seven such passes, so the small MNIST CNN's step went 24.7 -> 22.3 ms
    (medians of 8 alternating blocks in one process), ResNet9's 20.4 -> 18.6 ms."""
    if a.ndim < 3 or v.shape != (1,) * (a.ndim - 1) + a.shape[-1:] or \
            not a.flags.c_contiguous or (out is not None and not out.flags.c_contiguous):
        return ufunc(a, v, out=out)
    row = channels = a.shape[-1]
    for size in reversed(a.shape[:-1]):
        if row * size > WIDE_ROW_MAX:
            break
        row *= size
    if row == channels or row == a.size:  # nothing to gain / the tile would be a whole pass
        return ufunc(a, v, out=out)
    tiled = xp.tile(v.reshape(-1), row // channels)
    rows = ufunc(a.reshape(-1, row), tiled, out=None if out is None else out.reshape(-1, row))
    return rows.reshape(a.shape)


def normalize(x: NDArray, axes: Axes, eps: float) -> tuple[NDArray, NDArray, NDArray,
                                                            NDArray]:
    """(h, mean, var, inv_std): h = (x - mean) inv_std over ``axes``, inv_std =
    1 / sqrt(var + eps) with the biased variance; the statistics keep their axes (size 1)."""
    xp, a = x.device.module(), x._array
    n = math.prod(a.shape[i] for i in axes)
    mean = array_sum(xp, a, axes, keepdims=True)
    mean *= 1 / n
    centered = per_channel(xp, xp.subtract, a, mean)
    var = array_sum(xp, xp.multiply(centered, centered), axes, keepdims=True)
    var *= 1 / n
    inv_std = var + eps
    xp.sqrt(inv_std, out=inv_std)
    xp.divide(1, inv_std, out=inv_std)
    per_channel(xp, xp.multiply, centered, inv_std, out=centered)
    device = x.device
    return (_wrap(centered, device), _wrap(mean, device), _wrap(var, device),
            _wrap(inv_std, device))


def channel_shape(ndim: int, channel_axis: int, channels: int) -> tuple[int, ...]:
    """The shape that lays a (C,) vector along ``channel_axis`` of an ``ndim``-dim array."""
    shape = [1] * ndim
    shape[channel_axis] = channels
    return tuple(shape)


def _along(vector: NDArray, ndim: int, channel_axis: int) -> object:
    """A (C,) vector's array reshaped to broadcast along ``channel_axis``."""
    return vector._array.reshape(channel_shape(ndim, channel_axis, vector.shape[0]))


def affine(h: NDArray, weight: NDArray, bias: NDArray, channel_axis: int) -> NDArray:
    """h weight + bias, with (C,) weight and bias laid along ``channel_axis``."""
    xp = h.device.module()
    out = per_channel(xp, xp.multiply, h._array, _along(weight, h.ndim, channel_axis))
    per_channel(xp, xp.add, out, _along(bias, h.ndim, channel_axis), out=out)
    return _wrap(out, h.device)


def batch_norm_relu(y: NDArray, axes: Axes, eps: float, weight: NDArray, bias: NDArray,
                    channel_axis: int, relu: bool) -> tuple[NDArray, ...]:
    """(out, h, mean, var, inv_std): ``normalize`` of y, its affine map and, with ``relu``,
    max(., 0) in place: the forward of a layer's fused BatchNorm (+ ReLU) block."""
    h, mean, var, inv_std = normalize(y, axes, eps)
    out = affine(h, weight, bias, channel_axis)
    if relu:
        out.device.module().maximum(out._array, 0, out=out._array)
    return out, h, mean, var, inv_std


def normalize_grad(g: NDArray, h: NDArray, inv_std: NDArray, axes: Axes) -> NDArray:
    """(g - mean g - h mean(g h)) inv_std, means over ``axes``: the adjoint of
    ``normalize`` at the point whose normalised values are h."""
    return _wrap(_normalize_grad(g.device.module(), g._array, h._array, inv_std._array, axes),
                 g.device)


def _normalize_grad(xp: Any, g: Any, h: Any, inv_std: Any, axes: Axes) -> Any:
    n = math.prod(g.shape[i] for i in axes)
    g_mean = array_sum(xp, g, axes, keepdims=True)
    g_mean *= 1 / n
    gh_mean = array_sum(xp, xp.multiply(g, h), axes, keepdims=True)
    gh_mean *= 1 / n
    out = h * gh_mean
    xp.subtract(g, out, out=out)
    out -= g_mean
    out *= inv_std
    return out


def normalize_affine_grad(g: NDArray, h: NDArray, inv_std: NDArray, axes: Axes,
                          weight: NDArray, channel_axis: int) -> tuple[NDArray, NDArray,
                                                                        NDArray]:
    """The adjoints (dx, dweight, dbias) of h weight + bias, h = normalize(x): dbias =
    sum g and dweight = sum g h over the axes other than ``channel_axis``, dx =
    normalize_grad(g weight). When the statistics run over exactly those axes (BatchNorm),
    the means inside dx are dbias and dweight over n, so they are not summed twice."""
    xp, ga, ha = g.device.module(), g._array, h._array
    others = tuple(i for i in range(ga.ndim) if i != channel_axis % ga.ndim)
    grad_bias = array_sum(xp, ga, others)
    grad_weight = array_sum(xp, xp.multiply(ga, ha), others)
    w = _along(weight, ga.ndim, channel_axis)
    if others == tuple(sorted(a % ga.ndim for a in axes)):
        n = math.prod(ga.shape[i] for i in axes)
        shape = channel_shape(ga.ndim, channel_axis, weight.shape[0])
        out = per_channel(xp, xp.multiply, ha, grad_weight.reshape(shape) * (-1 / n))
        out += ga
        per_channel(xp, xp.subtract, out, grad_bias.reshape(shape) * (1 / n), out=out)
        per_channel(xp, xp.multiply, out, inv_std._array * w, out=out)
    else:
        out = _normalize_grad(xp, ga * w, ha, inv_std._array, axes)
    device = g.device
    return _wrap(out, device), _wrap(grad_weight, device), _wrap(grad_bias, device)


def moving_average(average: NDArray, value: NDArray, momentum: float) -> NDArray:
    """(1 - momentum) average + momentum value, value reshaped to average's shape, as a fresh
    array (BatchNorm's running statistics: one call instead of five NDArray operations)."""
    out = average._array * (1 - momentum)
    out += value._array.reshape(average.shape) * momentum
    return _wrap(out, average.device)


def scaled_mask(mask: NDArray, scale: float, dtype: Any) -> NDArray:
    """A boolean mask as numbers of ``dtype``: ``scale`` where True, 0 elsewhere; the cast
    inside the product, one pass (Dropout's kept elements, scaled by 1 / (1 - p))."""
    xp = mask.device.module()
    return _wrap(xp.multiply(mask._array, scale, dtype=dtype), mask.device)


def multiply_where_positive(g: NDArray, y: NDArray) -> NDArray:
    """g [y > 0] (same shapes): the mask cast inside the product, one pass and no float
    copy of the mask (relu's adjoint)."""
    return _wrap(g.device.module().multiply(g._array, y._array > 0, dtype=g.dtype), g.device)


def matmul_add(a: NDArray, b: NDArray, bias: NDArray) -> NDArray:
    """a @ b + bias for a (N, in) and b (in, out), the bias (broadcast over rows, e.g.
    (1, out) or (out,)) added in place to the fresh product: one allocation."""
    a._check_device(b)
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul: inner dimensions differ: {a.shape} @ {b.shape}")
    out = product(a.device.module(), a._array, b._array)
    out += bias._array
    return _wrap(out, a.device)


def product(xp: Any, a: Any, b: Any) -> Any:
    """a @ b of two arrays of module ``xp`` as ``NDArray.__matmul__`` computes it (the same
    BLAS call on the same operands), without its checks: for fused ops whose operands'
    shapes are known to fit. In a small layer the op's wrappers are a sixth of the time
    (MLP-ResNet's g W^T, (128, 50) x (50, 100): ``MatMul.compute`` 22.8 µs, this 19.2 µs,
    the bare ``np.matmul`` 18.8 µs)."""
    return blas.matmul(xp, _blas_ready(a, xp), _blas_ready(b, xp))


def linear_adjoints(g: NDArray, x: NDArray, w: NDArray, needs: tuple[bool, bool, bool],
                    bias_keepdims: bool) -> tuple[NDArray | None, ...]:
    """(g W^T, x^T g, the sum of g over rows) for g (N, out) the adjoint of x W + b, x (N,
    in), W (in, out), each only where ``needs`` says: the values of Linear's gradient ops
    (``MatMul`` with a transposed operand, ``Summation`` over axis 0), by the same calls,
    for a backward pass that records nothing."""
    xp, ga, device = g.device.module(), g._array, g.device
    grads = (product(xp, ga, w._array.T) if needs[0] else None,
             product(xp, x._array.T, ga) if needs[1] else None,
             array_sum(xp, ga, (0,), keepdims=bias_keepdims) if needs[2] else None)
    return tuple(None if a is None else _wrap(a, device) for a in grads)


#: Elements per block of rows in ``row_blocks``: 512 KiB of float32, within the L2 cache.
BLOCK_ELEMENTS = 1 << 17


def row_blocks(lo: int, hi: int, width: int, xp: Any) -> list[tuple[int, int]]:
    """[start, stop) blocks of rows lo..hi of an array ``width`` wide. On the CPU a block
    holds about ``BLOCK_ELEMENTS``, so that several passes over it run in cache instead of
    memory (the softmax cross-entropy of 1120 x 10,000 logits: 32 -> 28.5 ms); on a
    GPU, where each pass is a kernel launch, one block."""
    step = max(1, BLOCK_ELEMENTS // max(width, 1)) if xp is np else hi - lo
    return [(start, min(start + step, hi)) for start in range(lo, hi, max(step, 1))]


def squared_norm(a: NDArray) -> float:
    """sum(a²) as a Python float (a gradient norm's square). On the CPU a contiguous array
    goes in ``BLOCK_ELEMENTS`` spans, each squared into one cache-sized scratch array and
    summed there: one pass over memory instead of three (write a², read it back), and the
    same pairwise sums within a span (the LSTM LM's 4.8 M gradients: 4.6-5.0 -> 3.3-3.9 ms)."""
    xp, values = a.device.module(), a._array
    if xp is not np or not values.flags.c_contiguous or values.size <= BLOCK_ELEMENTS:
        return float((values * values).sum())
    flat = values.reshape(-1)
    scratch = np.empty(BLOCK_ELEMENTS, dtype=values.dtype)
    total = 0.0
    for start in range(0, flat.size, BLOCK_ELEMENTS):
        span = flat[start:start + BLOCK_ELEMENTS]
        square = np.multiply(span, span, out=scratch[:span.size])
        total += float(square.sum())
    return total


#: Rows whose sum of e^z lies in [2^-40, 2^40] take their softmax without the max shift:
#: nothing overflows or underflows there, and log(sum) - z_y loses at most about 2e-6 to
#: rounding (|log sum| <= 28 in float32). Other rows are taken again, shifted.
UNSHIFTED_SUMS = (2.0 ** -40, 2.0 ** 40)



def softmax_cross_entropy(logits: NDArray, labels: Any, reduction: str
                          ) -> tuple[NDArray, NDArray, NDArray]:
    """(loss, exps, inv_sums): logsumexp(z_i) - z_i[y_i] per row of logits (N, C), its mean
    or sum or the (N,) values for reduction "none"; and the softmax of the rows as exps
    (N, C) times inv_sums (N, 1), for the gradient (which scales them anyway, so the
    division is not a pass of its own).

    exps = e^z, unshifted, in the rows where that is safe (``UNSHIFTED_SUMS``), e^(z - max z)
    in the others: two passes a row (exp, sum) instead of five (max, subtract, exp, sum,
    divide). Rows are independent: on the CPU they go in blocks whose passes stay in cache
    (``row_blocks``), and a large batch's two halves can run on two cores (``parallel.py``)."""
    xp, z = logits.device.module(), logits._array
    labels = xp.asarray(labels)
    exps, sums = xp.empty_like(z), xp.empty(z.shape[0], dtype=z.dtype)

    def rows(lo: int, hi: int) -> None:
        with np.errstate(over="ignore"):  # a row whose e^z overflows is redone below
            for start, stop in row_blocks(lo, hi, z.shape[1], xp):
                vml.exp(xp, z[start:stop], exps[start:stop])  # MKL's e^x where it is there
                exps[start:stop].sum(axis=1, out=sums[start:stop])

    parallel.over_rows(rows, z.shape[0], z.size, xp)
    with np.errstate(divide="ignore"):  # log 0 of a row that underflowed, redone below
        losses = xp.log(sums)
    losses -= z[xp.arange(z.shape[0]), labels]
    low, high = UNSHIFTED_SUMS
    if not (float(sums.min()) >= low and float(sums.max()) <= high):  # NaN too
        _shifted_rows(xp, z, labels, exps, sums, losses, ~((sums >= low) & (sums <= high)))
    if reduction != "none":
        losses = xp.asarray(losses.sum() / (z.shape[0] if reduction == "mean" else 1),
                            dtype=z.dtype)
    inv_sums = xp.divide(1, sums, out=sums).reshape(-1, 1)
    device = logits.device
    return _wrap(losses, device), _wrap(exps, device), _wrap(inv_sums, device)


def _shifted_rows(xp: Any, z: Any, labels: Any, exps: Any, sums: Any, losses: Any,
                  where: Any) -> None:
    """The rows ``where`` of exps, sums and losses again from e^(z - max z): exact where
    the row's values are large (or all very negative)."""
    picked = xp.nonzero(where)[0]
    rows = z[picked]
    shift = rows.max(axis=1, keepdims=True)
    shifted = xp.exp(rows - shift)
    total = shifted.sum(axis=1)
    exps[picked], sums[picked] = shifted, total
    # log sum e^(z - max) - (z_y - max): exact even where |z| is large
    losses[picked] = xp.log(total) - (rows[xp.arange(len(picked)), labels[picked]] - shift[:, 0])


def softmax_cross_entropy_grad(exps: NDArray, inv_sums: NDArray, labels: Any,
                               scale: NDArray, in_place: bool = False) -> NDArray:
    """(softmax - onehot(labels)) scale, softmax = exps inv_sums (``softmax_cross_entropy``)
    and scale () or (N, 1) broadcast over rows: one pass over the (N, C) values, then the
    labels' entries (two cores for a large batch); written over exps with ``in_place``."""
    xp, c, e = exps.device.module(), scale._array, exps._array
    labels, out = xp.asarray(labels), e if in_place else xp.empty_like(e)
    row_scale = inv_sums._array * c

    def rows(lo: int, hi: int) -> None:
        xp.multiply(e[lo:hi], row_scale[lo:hi], out=out[lo:hi])
        out[xp.arange(lo, hi), labels[lo:hi]] -= c[lo:hi].reshape(-1) if c.ndim else c

    parallel.over_rows(rows, e.shape[0], e.size, xp)
    return _wrap(out, exps.device)
