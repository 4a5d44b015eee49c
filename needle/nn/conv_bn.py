"""Conv → BatchNorm2d (→ ReLU) as one layer whose training forward is one fused op."""

from __future__ import annotations

from typing import Any, cast

from .. import init, ops
from ..autograd import Tensor
from ..reference import is_reference_mode
from .basic import ReLU, Sequential, layer_norm_relu
from .module import Module
from .conv import NCHW_TO_NHWC, NHWC_TO_NCHW, BatchNorm2d, Conv, Conv2d


class ConvBatchNorm2d(Sequential):
    """Sequential(conv, norm, ReLU()) on x (N, C_in, H, W) -> (N, C_out, H_out, W_out) (the
    ReLU only with ``relu``). Same children, parameters and state_dict keys as the plain
    Sequential; in training mode (with ``fused``, the default) the forward is one
    ``ops.conv_batch_norm`` node; in eval mode (and reference mode) the three layers run."""

    def __init__(self, conv: Conv2d, norm: BatchNorm2d, relu: bool = True, fused: bool = True):
        if conv.out_channels != norm.dim:
            raise ValueError(f"ConvBatchNorm2d: the conv gives {conv.out_channels} channels "
                             f"but the BatchNorm2d normalises {norm.dim}")
        super().__init__(*((conv, norm, ReLU()) if relu else (conv, norm)))
        self.relu = relu
        self.fused = fused

    def forward(self, x: Any) -> Tensor:
        conv, norm = cast(Conv2d, self[0]), cast(BatchNorm2d, self[1])
        if x.ndim != 4 or x.shape[1] != conv.in_channels:
            raise ValueError(f"ConvBatchNorm2d expects input (N, {conv.in_channels}, H, W), "
                             f"got shape {x.shape}")
        if not (self.training and self.fused and fusable(conv, norm)):
            # eval, reference mode, fused=False, pair or "same" arguments: the layers one by
            # one (not super().forward, whose Sequential fusions would ignore fused=False)
            for module in self.modules:
                x = module(x)
            return x
        return conv_batch_norm(conv, norm, self.relu, x)


def fusable(conv: Conv2d, norm: BatchNorm2d) -> bool:
    """Whether the fused op computes what conv then norm compute: norm in training mode
    (batch statistics), int stride and padding, and not reference mode."""
    return norm.training and isinstance(conv.stride, int) and \
        isinstance(conv.padding, int) and not is_reference_mode()


def conv_batch_norm(conv: Conv2d, norm: BatchNorm2d, relu: bool, x: Tensor) -> Tensor:
    """relu?(norm(conv(x))) on x (N, C_in, H, W) as one ``ops.conv_batch_norm`` node; the
    running statistics of ``norm`` move as its own forward moves them."""
    bias = conv.bias if conv.bias is not None else \
        init.zeros(conv.out_channels, device=x.device, dtype=x.dtype)
    out, mean, var = ops.conv_batch_norm(
        ops.permute(x, NCHW_TO_NHWC), conv.weight, bias, norm.weight, norm.bias,
        cast(int, conv.stride), cast(int, conv.padding), norm.eps, relu)
    norm._update_running_stats(mean, var)
    return ops.permute(out, NHWC_TO_NCHW)


CONVS = (Conv2d, Conv)  # the conv classes a fused block starts with


def fuse_conv_batch_norm(modules: tuple[Module, ...], i: int, x: Any
                         ) -> tuple[Tensor, int] | None:
    """A Sequential's ``Conv2d`` (or ``Conv``), ``BatchNorm2d`` (and ``ReLU``) children
    from i as one fused node (a ``Sequential.fusions`` entry), as a PyTorch user writes the
    block. Only those exact classes (a subclass, e.g. SyncBatchNorm, may compute
    otherwise), none with hooks or a wrapped forward (the fused node would skip them:
    ``layer_norm_relu``), on an input the conv accepts."""
    found = layer_norm_relu(modules, i, CONVS, BatchNorm2d)
    if found is None:
        return None
    conv, norm, relu = cast(tuple[Conv2d, BatchNorm2d, bool], found)
    if not fusable(conv, norm) or not isinstance(x, Tensor) or x.ndim != 4 \
            or x.shape[1] != conv.in_channels or conv.out_channels != norm.dim:
        return None
    return conv_batch_norm(conv, norm, relu, x), 2 + relu


for first in CONVS:
    Sequential.fusions.setdefault(first, []).append(fuse_conv_batch_norm)
