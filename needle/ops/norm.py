"""Normalisation to zero mean and unit variance over some axes, with an optional
per-channel affine map: the core of BatchNorm and LayerNorm, composed from sums, products
and powers. ``fused.normalize`` and ``fused.batch_norm`` replace these functions.
"""

from __future__ import annotations

from ..autograd import Tensor
from ..backend_ndarray import Shape
from ..backend_ndarray.fused import channel_shape
from .axes import Axes, keepdims_shape, normalize_axes


def along(vector: Tensor, shape: Shape, channel_axis: int) -> Tensor:
    """A (C,) tensor laid along ``channel_axis`` and broadcast to ``shape``."""
    laid = vector.reshape(channel_shape(len(shape), channel_axis, vector.shape[0]))
    return laid.broadcast_to(shape)


def check_affine(x: Tensor, weight: Tensor | None, bias: Tensor | None,
                 channel_axis: int) -> None:
    if weight is None or bias is None:
        return
    shape, w_shape = x.shape, weight.shape
    if w_shape != (shape[channel_axis],) or bias.shape != w_shape:
        raise ValueError(f"normalize: weight and bias must have shape ({shape[channel_axis]},) "
                         f"for input {shape} and channel_axis {channel_axis}, got "
                         f"{w_shape} and {bias.shape}")


def batch_norm(x: Tensor, axes: Axes = -1, eps: float = 1e-5, weight: Tensor | None = None,
               bias: Tensor | None = None,
               channel_axis: int = -1) -> tuple[Tensor, Tensor, Tensor]:
    """(y, mean, var): y = (x - mean) / sqrt(var + eps) over ``axes`` (the biased variance),
    times ``weight`` plus ``bias`` when given ((C,) tensors along ``channel_axis``); mean
    and var keep the reduced axes as size 1 and are detached (running statistics)."""
    check_affine(x, weight, bias, channel_axis)
    axes = normalize_axes(axes, x.ndim)
    kept = keepdims_shape(x.shape, axes)
    mean = x.mean(axes, keepdims=True)
    centered = x - mean.broadcast_to(x.shape)
    var = (centered * centered).mean(axes, keepdims=True)
    y = centered * ((var + eps) ** -0.5).broadcast_to(x.shape)
    if weight is not None and bias is not None:
        y = y * along(weight, x.shape, channel_axis) + along(bias, x.shape, channel_axis)
    return y, mean.reshape(kept).detach(), var.reshape(kept).detach()


def normalize(x: Tensor, axes: Axes = -1, eps: float = 1e-5, weight: Tensor | None = None,
              bias: Tensor | None = None, channel_axis: int = -1) -> Tensor:
    """(x - mean) / sqrt(var + eps) over ``axes`` (the last by default), then times
    ``weight`` plus ``bias`` when given: (C,) tensors along ``channel_axis``."""
    return batch_norm(x, axes, eps, weight, bias, channel_axis)[0]
