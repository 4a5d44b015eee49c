"""Special functions that no composition of the other ops computes: erf."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd import NDArray, Tensor, TensorOp
from .elementwise import exp


def _erf_host(values: np.ndarray) -> np.ndarray:
    """erf elementwise on a numpy array: scipy's when installed, else math.erf per element."""
    try:
        from scipy.special import erf
    except ImportError:
        erf = np.frompyfunc(math.erf, 1, 1)
    return np.asarray(erf(values), dtype=values.dtype)


class Erf(TensorOp):
    """f(a) = erf a = 2/sqrt(pi) int_0^a e^(-t^2) dt; df = g 2/sqrt(pi) e^(-a^2).

    A primitive because erf has no closed form in the other ops (GELU needs it)."""

    def compute(self, a: NDArray) -> NDArray:
        values = _erf_host(a.numpy())
        return NDArray(values, device=a.device, dtype=str(values.dtype))

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        a = node.inputs[0]
        return out_grad * exp(-(a * a)) * (2 / math.sqrt(math.pi))


def erf(a: Any) -> Tensor:
    return Erf()(a)
