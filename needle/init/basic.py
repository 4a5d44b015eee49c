"""Constant and random tensors. Randomness comes from numpy's global RNG (``np.random``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..backend_ndarray import Device, NDArray, default_device


def _from_host(array: np.ndarray, device: Device | None, dtype: Any,
               requires_grad: bool) -> Tensor:
    """A Tensor of ``dtype`` on ``device`` holding ``array`` (computed on the host)."""
    return Tensor(array, device=device or default_device(), dtype=dtype,
                  requires_grad=requires_grad)


# The random initialisers compute in float64 on the host, exactly as the contract writes
# them, and round once to ``dtype``: the same seed gives the same numbers as the reference.
def rand(*shape: int, low: float = 0.0, high: float = 1.0, device: Device | None = None,
         dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    """Uniform on [low, high): ``low + (high - low) * np.random.rand(*shape)``."""
    return _from_host(low + (high - low) * np.random.rand(*shape), device, dtype, requires_grad)


def uniform(*shape: int, bound: float = 1.0, device: Device | None = None,
            dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    """Uniform on [-bound, bound): ``rand(*shape, low=-bound, high=bound)`` (the default
    initialisation of PyTorch's recurrent and convolution layers)."""
    return rand(*shape, low=-bound, high=bound, device=device, dtype=dtype,
                requires_grad=requires_grad)


def randn(*shape: int, mean: float = 0.0, std: float = 1.0, device: Device | None = None,
          dtype: Any = "float32", requires_grad: bool = False) -> Tensor:
    """Normal: ``std * np.random.randn(*shape) + mean``."""
    return _from_host(std * np.random.randn(*shape) + mean, device, dtype, requires_grad)


def randb(*shape: int, p: float = 0.5, device: Device | None = None, dtype: Any = "bool",
          requires_grad: bool = False) -> Tensor:
    """Bernoulli(p) booleans: ``np.random.rand(*shape) <= p``."""
    return _from_host(_bernoulli(shape, p), device, dtype, requires_grad)


def bernoulli_mask(shape: tuple[int, ...], p: float, device: Device) -> NDArray:
    """``randb``'s booleans (the same draws) as an NDArray on ``device``, without the
    Tensor around them: Dropout's mask, made every training step."""
    return NDArray(_bernoulli(shape, p), device=device, dtype=bool)


def _bernoulli(shape: tuple[int, ...], p: float) -> np.ndarray:
    if not 0 <= p <= 1:
        raise ValueError(f"randb: p must be a probability in [0, 1], got {p}")
    return np.random.rand(*shape) <= p


def constant(*shape: int, c: float = 1.0, device: Device | None = None, dtype: Any = "float32",
             requires_grad: bool = False) -> Tensor:
    """A tensor of ``shape`` filled with ``c``."""
    array = (device or default_device()).full(shape, c, dtype=dtype)
    return Tensor(array, device=device, dtype=dtype, requires_grad=requires_grad)


def ones(*shape: int, device: Device | None = None, dtype: Any = "float32",
         requires_grad: bool = False) -> Tensor:
    return constant(*shape, c=1.0, device=device, dtype=dtype, requires_grad=requires_grad)


def zeros(*shape: int, device: Device | None = None, dtype: Any = "float32",
          requires_grad: bool = False) -> Tensor:
    return constant(*shape, c=0.0, device=device, dtype=dtype, requires_grad=requires_grad)


def one_hot(n: int, i: Any, device: Device | None = None, dtype: Any = "float32",
            requires_grad: bool = False) -> Tensor:
    """Rows ``i`` of the n×n identity (``i``: ints, an array or a Tensor of class ids)."""
    index = i.numpy() if isinstance(i, Tensor) else np.asarray(i)
    array = (device or default_device()).one_hot(n, index.astype(np.int64), dtype=dtype)
    return Tensor(array, device=device, dtype=dtype, requires_grad=requires_grad)


def zeros_like(array: Tensor, *, device: Device | None = None,
               requires_grad: bool = False) -> Tensor:
    return zeros(*array.shape, dtype=array.dtype, device=device or array.device,
                 requires_grad=requires_grad)


def ones_like(array: Tensor, *, device: Device | None = None,
              requires_grad: bool = False) -> Tensor:
    return ones(*array.shape, dtype=array.dtype, device=device or array.device,
                requires_grad=requires_grad)
