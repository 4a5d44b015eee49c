"""Conv → BatchNorm2d (→ ReLU) as one layer whose training forward is one fused op."""

from __future__ import annotations

from typing import Any, cast

from .. import init, ops
from ..autograd import Tensor
from ..reference import is_reference_mode
from .basic import ReLU, Sequential
from .conv import NCHW_TO_NHWC, NHWC_TO_NCHW, BatchNorm2d, Conv2d


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
        stride, padding = conv.stride, conv.padding
        if x.ndim != 4 or x.shape[1] != conv.in_channels:
            raise ValueError(f"ConvBatchNorm2d expects input (N, {conv.in_channels}, H, W), "
                             f"got shape {x.shape}")
        if is_reference_mode() or not (self.training and self.fused and isinstance(stride, int)
                and isinstance(padding, int)):  # pair or "same" arguments: the plain layers
            return super().forward(x)
        bias = conv.bias if conv.bias is not None else \
            init.zeros(conv.out_channels, device=x.device, dtype=x.dtype)
        out, mean, var = ops.conv_batch_norm(
            ops.permute(x, NCHW_TO_NHWC), conv.weight, bias, norm.weight, norm.bias,
            stride, padding, norm.eps, self.relu)
        norm._update_running_stats(mean, var)
        return ops.permute(out, NHWC_TO_NCHW)
