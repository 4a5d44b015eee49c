"""ResNet9 for CIFAR-10 (the needle course's): strided Conv-BatchNorm-ReLU blocks with two
residual pairs, then a two-layer classifier."""

from __future__ import annotations

from .. import nn
from ..autograd import Tensor
from ..backend_ndarray import Device


def ConvBN(in_channels: int, out_channels: int, kernel_size: int, stride: int,
           device: Device | None = None, dtype: str = "float32") -> nn.Module:
    """Conv (same padding) -> BatchNorm2d -> ReLU on (N, C_in, H, W), fused in training
    (``nn.ConvBatchNorm2d``: the same three children as a plain Sequential)."""
    return nn.ConvBatchNorm2d(
        nn.Conv(in_channels, out_channels, kernel_size, stride=stride, device=device,
                dtype=dtype),
        nn.BatchNorm2d(out_channels, device=device, dtype=dtype))


class ResNet9(nn.Module):
    """x (N, 3, 32, 32) -> logits (N, 10):
    ConvBN(3,16,7,4), ConvBN(16,32,3,2), Residual(ConvBN(32,32,3,1), ConvBN(32,32,3,1)),
    ConvBN(32,64,3,2), ConvBN(64,128,3,2), Residual(ConvBN(128,128,3,1) x 2), Flatten,
    Linear(128,128), ReLU, Linear(128,10). Spatial size 32 -> 8 -> 4 -> 2 -> 1."""

    def __init__(self, device: Device | None = None, dtype: str = "float32"):
        super().__init__()

        def block(c_in: int, c_out: int, k: int, stride: int) -> nn.Module:
            return ConvBN(c_in, c_out, k, stride, device=device, dtype=dtype)

        self.model = nn.Sequential(
            block(3, 16, 7, 4), block(16, 32, 3, 2),
            nn.Residual(nn.Sequential(block(32, 32, 3, 1), block(32, 32, 3, 1))),
            block(32, 64, 3, 2), block(64, 128, 3, 2),
            nn.Residual(nn.Sequential(block(128, 128, 3, 1), block(128, 128, 3, 1))),
            nn.Flatten(), nn.Linear(128, 128, device=device, dtype=dtype), nn.ReLU(),
            nn.Linear(128, 10, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
