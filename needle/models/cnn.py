"""A cs231n-style CNN for small digit images: [conv-bn-relu] x N - pool, repeated, - linear."""

from __future__ import annotations

from typing import Sequence

from .. import nn, ops
from ..autograd import Tensor
from ..backend_ndarray import Device
from ..nn.conv import NHWC_TO_NCHW


class CNN(nn.Module):
    """[Conv(3x3)-BatchNorm2d-ReLU] x ``convs_per_stage`` - MaxPool2d(2) for each width in
    ``channels``, then Flatten - Linear to ``num_classes``.

    x (N, in_channels, S, S) -> logits (N, num_classes), S = ``image_size`` (28 for MNIST,
    8 for scikit-learn's digits); with ``channels_last`` x is (N, S, S, in_channels), as
    needle's MNIST and digits datasets give it. Each pool halves S (rounding down)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28,
                 channels: Sequence[int] = (16, 32, 64), convs_per_stage: int = 1,
                 channels_last: bool = False, device: Device | None = None,
                 dtype: str = "float32"):
        super().__init__()
        self.in_channels = in_channels
        self.channels_last = channels_last
        layers: list[nn.Module] = []
        size, width = image_size, in_channels
        for out in channels:
            for _ in range(convs_per_stage):
                layers += [nn.Conv(width, out, 3, device=device, dtype=dtype),
                           nn.BatchNorm2d(out, device=device, dtype=dtype), nn.ReLU()]
                width = out
            layers.append(nn.MaxPool2d(2))
            size //= 2
        if size < 1:
            raise ValueError(f"CNN: {len(channels)} poolings need images of at least "
                             f"{2 ** len(channels)} pixels, got image_size={image_size}")
        layers += [nn.Flatten(), nn.Linear(width * size * size, num_classes, device=device,
                                           dtype=dtype)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.channels_last:
            if x.ndim != 4 or x.shape[3] != self.in_channels:
                raise ValueError(f"CNN(channels_last=True) expects images (N, H, W, "
                                 f"{self.in_channels}), got shape {x.shape}")
            x = ops.permute(x, NHWC_TO_NCHW)
        return self.model(x)
