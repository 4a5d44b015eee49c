"""The MLP-ResNet of needle's homework 2: residual blocks of Linear, norm, ReLU, Dropout."""

from __future__ import annotations

from typing import Callable

from .. import nn

Norm = Callable[[int], nn.Module]


def ResidualBlock(dim: int, hidden_dim: int, norm: Norm = nn.BatchNorm1d,
                  drop_prob: float = 0.1) -> nn.Module:
    """ReLU(x + norm(Linear(Dropout(ReLU(norm(Linear(x))))))): (N, dim) -> (N, dim),
    through a hidden width ``hidden_dim``."""
    main = nn.Sequential(
        nn.Linear(dim, hidden_dim), norm(hidden_dim), nn.ReLU(), nn.Dropout(drop_prob),
        nn.Linear(hidden_dim, dim), norm(dim))
    return nn.Sequential(nn.Residual(main), nn.ReLU())


def MLPResNet(dim: int, hidden_dim: int = 100, num_blocks: int = 3, num_classes: int = 10,
              norm: Norm = nn.BatchNorm1d, drop_prob: float = 0.1) -> nn.Module:
    """Flatten -> Linear(dim, hidden_dim) -> ReLU -> ``num_blocks`` ResidualBlocks of width
    hidden_dim (inner width hidden_dim // 2) -> Linear(hidden_dim, num_classes).

    Input (N, ...) with prod(...) = dim; output logits (N, num_classes)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(dim, hidden_dim), nn.ReLU(),
        *[ResidualBlock(hidden_dim, hidden_dim // 2, norm, drop_prob) for _ in range(num_blocks)],
        nn.Linear(hidden_dim, num_classes))
