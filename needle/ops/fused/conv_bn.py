"""Convolution, BatchNorm in training mode and ReLU as one forward node: a speed primitive.

It replaces the composition that ``nn.Conv`` → ``nn.BatchNorm2d`` → ``nn.ReLU`` records,

    relu(normalize(conv(x, w) + b, axes=(N, H, W)) * gamma + beta)

(two layout permutes, the conv, the normalisation, the ReLU's comparison and product). Here
the forward is one node whose compute runs the conv (im2col or Winograd), the fused
normalisation and the affine map with the ReLU applied in place. Its gradient is composed of
the existing primitives — the ReLU mask, ``NormalizeAffineGrad`` and the conv's own gradient
ops — so second derivatives work as they do unfused. The conv bias cancels in the
normalisation (its gradient is exactly zero) and only shifts the batch mean that the
running statistics record. Images are NHWC, weights K×K×C_in×C_out, as in ``ops/conv.py``.
"""

from __future__ import annotations

from typing import Any

from ...autograd import NDArray, Op, Tensor, TensorOp
from ...backend_ndarray import fused
from .activation import ReLUGrad
from .conv import Conv, useful_kernel
from .normalization import NormalizeAffineGrad

AXES = (0, 1, 2)  # the statistics run over N, H and W of NHWC images


class Recorded(TensorOp):
    """``op``'s node for a value it already computed (and what it saved): compute returns
    them, gradient is ``op``'s. Makes an intermediate result of a fused forward a node."""

    saves = True

    def __init__(self, op: Op, value: NDArray, saved: Any):
        self.op = op
        self.value = value
        self.saved = saved

    def compute(self, *args: NDArray) -> tuple[NDArray, Any]:
        return self.value, self.saved

    def gradient(self, out_grad: Tensor, node: Tensor) -> Any:
        return self.op.gradient(out_grad, node)


class ConvBatchNorm(TensorOp):
    """f(x, w, b, gamma, beta) = relu?(normalize(conv(x, w) + b) gamma + beta) with batch
    statistics (training mode); df composed of NormalizeAffineGrad and conv's gradient ops.

    Saves on the output node the conv's own saved values, its output y, h, 1/std and the
    batch ``mean`` and ``var`` (C,) that ``conv_batch_norm`` returns."""

    saves = True

    def __init__(self, stride: int, padding: int, eps: float, relu: bool):
        self.conv = Conv(stride, padding)
        self.eps = eps
        self.relu = relu

    def compute(self, x: NDArray, w: NDArray, b: NDArray, gamma: NDArray,
                beta: NDArray) -> tuple[NDArray, tuple[Any, ...]]:
        y, conv_saved = self.conv.compute(x, w)
        out, h, mean, var, inv_std = fused.batch_norm_relu(y, AXES, self.eps, gamma, beta, 3,
                                                           self.relu)
        channels = w.shape[3]
        return out, (conv_saved, y, h, inv_std, mean.reshape((channels,)) + b,
                     var.reshape((channels,)))

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, ...]:
        x, w, b, gamma, _ = node.inputs
        conv_saved, y_value, h, inv_std = node.saved[:4]
        if self.relu:
            out_grad = ReLUGrad()(out_grad, node)  # relu's own adjoint: g [y > 0]
        y = Recorded(self.conv, y_value, conv_saved)(x, w)  # read by 2nd derivatives only
        grads = NormalizeAffineGrad(AXES, self.eps, 3)(
            out_grad, y, gamma, Tensor.make_const(h), Tensor.make_const(inv_std))
        grad_x, grad_w = self.conv.input_gradients(grads[0], x, w, conv_saved)
        zero_bias = Tensor.make_const(b.cached_data * 0)
        return grad_x, grad_w, zero_bias, grads[1], grads[2]


def conv_batch_norm(x: Tensor, w: Tensor, b: Tensor, gamma: Tensor, beta: Tensor,
                    stride: int = 1, padding: int = 0, eps: float = 1e-5, relu: bool = True
                    ) -> tuple[Tensor, NDArray, NDArray]:
    """relu?(batchnorm(conv(x, w) + b)) of x (N, H, W, C_in) in training mode:
    (output (N, H_out, W_out, C_out), the batch mean (C,), the batch variance (C,))."""
    w, padding = useful_kernel(x, w, stride, padding)
    out = ConvBatchNorm(stride, padding, eps, relu)(x, w, b, gamma, beta)
    return out, out.saved[4], out.saved[5]
