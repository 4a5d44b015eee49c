"""``gradcheck``: a Tensor function's ``backward()`` against central finite differences, the
check docs/custom_ops.md runs on a new op (PyTorch's ``torch.autograd.gradcheck``)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from .autograd import Tensor


def gradcheck(fn: Callable[..., Tensor], *arrays: np.ndarray, eps: float = 1e-6,
              atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0) -> bool:
    """True when the gradients of <fn(*arrays), P> (P a fixed random projection) from
    ``backward()`` equal central differences in float64; otherwise an AssertionError names
    the input, the worst index and both values."""
    inputs = [np.asarray(a, dtype=np.float64) for a in arrays]
    tensors = [Tensor(a, dtype="float64") for a in inputs]
    out = fn(*tensors)
    projection = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(projection, dtype="float64", requires_grad=False)).sum().backward()

    def objective() -> float:
        value = fn(*[Tensor(a, dtype="float64", requires_grad=False) for a in inputs])
        return float((value.numpy() * projection).sum())

    for i, (array, tensor) in enumerate(zip(inputs, tensors)):
        numeric = np.zeros_like(array)
        for j in np.ndindex(array.shape):
            saved = array[j]
            array[j] = saved + eps
            plus = objective()
            array[j] = saved - eps
            minus = objective()
            array[j] = saved
            numeric[j] = (plus - minus) / (2 * eps)
        analytic = np.zeros_like(array) if tensor.grad is None else tensor.grad.numpy()
        error = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        if np.any(error > 0):
            worst = np.unravel_index(np.argmax(error), array.shape)
            raise AssertionError(f"gradcheck: input {i} at index {worst}: backward() gives "
                                 f"{analytic[worst]:.8g}, finite differences "
                                 f"{numeric[worst]:.8g}")
    return True
