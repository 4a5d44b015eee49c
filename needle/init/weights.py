"""Weight initialisers of Glorot (Xavier) and He (Kaiming): random, scaled by fan-in/out."""

from __future__ import annotations

import math
from typing import Any

from ..autograd import Tensor
from ..backend_ndarray import Shape
from .basic import rand, randn

_GAINS = {"relu": math.sqrt(2), "linear": 1.0, "sigmoid": 1.0, "tanh": 5 / 3,
          "leaky_relu": math.sqrt(2 / (1 + 0.01 ** 2))}


def _gain(nonlinearity: str) -> float:
    """PyTorch's ``calculate_gain``: sqrt(2) for relu (the contract's default)."""
    if nonlinearity not in _GAINS:
        raise ValueError(f"nonlinearity must be one of {sorted(_GAINS)}, got {nonlinearity!r}")
    return _GAINS[nonlinearity]


def xavier_uniform(fan_in: int, fan_out: int, gain: float = 1.0, **kwargs: Any) -> Tensor:
    """U(-b, b) of shape (fan_in, fan_out), b = gain sqrt(6 / (fan_in + fan_out))."""
    bound = gain * math.sqrt(6 / (fan_in + fan_out))
    return rand(fan_in, fan_out, low=-bound, high=bound, **kwargs)


def xavier_normal(fan_in: int, fan_out: int, gain: float = 1.0, **kwargs: Any) -> Tensor:
    """N(0, std²) of shape (fan_in, fan_out), std = gain sqrt(2 / (fan_in + fan_out))."""
    std = gain * math.sqrt(2 / (fan_in + fan_out))
    return randn(fan_in, fan_out, mean=0.0, std=std, **kwargs)


def kaiming_uniform(fan_in: int, fan_out: int, shape: Shape | None = None,
                    nonlinearity: str = "relu", **kwargs: Any) -> Tensor:
    """U(-b, b), b = gain sqrt(3 / fan_in), gain sqrt(2) for relu; ``shape`` defaults to
    (fan_in, fan_out)."""
    bound = _gain(nonlinearity) * math.sqrt(3 / fan_in)
    return rand(*(shape or (fan_in, fan_out)), low=-bound, high=bound, **kwargs)


def kaiming_normal(fan_in: int, fan_out: int, shape: Shape | None = None,
                   nonlinearity: str = "relu", **kwargs: Any) -> Tensor:
    """N(0, std²), std = gain / sqrt(fan_in), gain sqrt(2) for relu; ``shape`` defaults to
    (fan_in, fan_out)."""
    std = _gain(nonlinearity) / math.sqrt(fan_in)
    return randn(*(shape or (fan_in, fan_out)), mean=0.0, std=std, **kwargs)
