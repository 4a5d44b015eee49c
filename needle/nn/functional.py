"""PyTorch's ``torch.nn.functional`` forms of needle's layers (``import needle.nn.functional
as F``). Images are N×C×H×W as in the layers; weights keep needle's layouts: linear (in, out),
conv2d (K_h, K_w, C_in, C_out), conv_transpose2d (K_h, K_w, C_out, C_in)."""

from __future__ import annotations

import math
from typing import Any

from .. import init, ops
from ..autograd import Tensor
from .basic import dropout_mask
from .conv import (NCHW_TO_NHWC, NHWC_TO_NCHW, AvgPool2d, IntPair, MaxPool2d, Padding,
                   conv2d_nhwc, conv_transpose2d_nhwc)
from .loss import _check_reduction, _reduce, cross_entropy
from .sequence import token_ids

__all__ = ["avg_pool2d", "binary_cross_entropy_with_logits", "conv2d", "conv_transpose2d",
           "cross_entropy", "dropout", "embedding", "gelu", "leaky_relu", "linear",
           "log_softmax", "max_pool2d", "mse_loss", "nll_loss", "relu", "sigmoid", "softmax",
           "tanh"]


def relu(x: Tensor) -> Tensor:
    return ops.relu(x)


def sigmoid(x: Tensor) -> Tensor:
    return ops.sigmoid(x)


def tanh(x: Tensor) -> Tensor:
    return ops.tanh(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return ops.where(x > 0, x, x * negative_slope)


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (see ``nn.GELU``)."""
    if approximate == "tanh":
        inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
        return x * (ops.tanh(inner) + 1) * 0.5
    return x * (ops.erf(x * math.sqrt(0.5)) + 1) * 0.5


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return ops.softmax(x, dim)


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return ops.logsoftmax(x, dim)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in) @ weight (in, out) + bias (out,) or (1, out)."""
    out = x @ weight
    return out if bias is None else out + bias.reshape((weight.shape[1],))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """x * randb(p=1-p) / (1-p) when ``training`` (as ``nn.Dropout``), else x."""
    if not training or p == 0:
        return x
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    return x * dropout_mask(x, p)


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: Padding = 0) -> Tensor:
    """x (N, C_in, H, W) with weight (K_h, K_w, C_in, C_out) -> (N, C_out, H_out, W_out)."""
    out = conv2d_nhwc(ops.permute(x, NCHW_TO_NHWC), weight, bias, stride, padding)
    return ops.permute(out, NHWC_TO_NCHW)


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntPair = 1, padding: IntPair = 0,
                     output_padding: IntPair = 0) -> Tensor:
    """x (N, C_in, H, W) with weight (K_h, K_w, C_out, C_in) -> (N, C_out, H', W')."""
    out = conv_transpose2d_nhwc(ops.permute(x, NCHW_TO_NHWC), weight, stride, padding,
                                output_padding)
    out = out if bias is None else out + bias
    return ops.permute(out, NHWC_TO_NCHW)


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    return MaxPool2d(kernel_size, stride, padding)(x)


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None,
               padding: IntPair = 0) -> Tensor:
    return AvgPool2d(kernel_size, stride, padding)(x)


def embedding(ids: Any, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) at ``ids``."""
    return weight[token_ids(ids, weight.shape[0])]


def nll_loss(log_probs: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """-log_probs[i, target_i], reduced; log_probs (N, C), target (N,) class ids."""
    _check_reduction(reduction)
    ids = token_ids(target, log_probs.shape[1])
    picked = log_probs[list(range(len(ids))), ids]
    return _reduce(-picked, reduction)


def mse_loss(prediction: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    diff = prediction - target
    return _reduce(diff * diff, _check_reduction(reduction))


def binary_cross_entropy_with_logits(logits: Tensor, target: Tensor,
                                     reduction: str = "mean") -> Tensor:
    zeros = init.zeros_like(logits)
    softplus = ops.logsumexp(ops.stack([zeros, logits], axis=0), axes=0)
    return _reduce(softplus - logits * target, _check_reduction(reduction))


cross_entropy = cross_entropy
