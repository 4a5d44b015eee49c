"""The three independent oracles every needle test uses: PyTorch, finite differences, numpy.

- ``check_torch(ndl_fn, torch_fn, *arrays)`` runs both frameworks on the same inputs and
  compares the outputs and the gradients of ``sum(out * projection)`` for a random
  projection, so one call checks forward and backward.
- ``check_finite_differences(fn, *arrays)`` runs ``ndl.gradcheck``: needle's backward()
  against central differences in float64, element by element.
- numpy is the third oracle, used directly in tests (``np.testing.assert_allclose``).

A failing check says which op, which input, the worst index and both values there.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

import needle as ndl
from needle.gradcheck import GradcheckError

Array = np.ndarray


def _as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, (tuple, list, ndl.TensorTuple)) else [out]


def _projections(shapes: Sequence[tuple[int, ...]], seed: int) -> list[Array]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape) for shape in shapes]


def _report(what: str, name: str, got: Array, want: Array) -> str:
    """Where ``got`` and ``want`` differ most, as a readable message."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return f"{name}: {what} shape {got.shape} != expected {want.shape}"
    if got.size == 0:
        return f"{name}: {what} (empty)"
    diff = np.abs(got - want)
    diff = np.where(np.isnan(diff), np.inf, diff)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    return (f"{name}: {what} differs most at index {index}: needle {got[index]!r}, "
            f"expected {want[index]!r} (max abs diff {diff[index]:.3g})")


def assert_close(got: Any, want: Any, *, rtol: float, atol: float, what: str,
                 name: str) -> None:
    got_np = got.numpy() if isinstance(got, ndl.Tensor) else np.asarray(got)
    want_np = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    if got_np.shape != want_np.shape or not np.allclose(got_np, want_np, rtol=rtol, atol=atol,
                                                          equal_nan=True):
        raise AssertionError(_report(what, name, got_np, want_np))


def check_torch(ndl_fn: Callable[..., Any], torch_fn: Callable[..., Any], *arrays: Array,
                grad: bool | Sequence[bool] = True, rtol: float = 1e-5, atol: float = 1e-6,
                name: str = "op", seed: int = 0) -> None:
    """Forward and gradients of ``ndl_fn`` equal those of ``torch_fn`` on ``arrays``.

    Arrays keep their dtype on both sides; integer arrays are passed without gradients.
    ``grad`` says which inputs to differentiate (all floating inputs by default)."""
    wants = [grad] * len(arrays) if isinstance(grad, bool) else list(grad)
    wants = [w and np.issubdtype(np.asarray(a).dtype, np.floating) for w, a in zip(wants, arrays)]
    ndl_in = [ndl.Tensor(a, dtype=np.asarray(a).dtype, requires_grad=w)
              for a, w in zip(arrays, wants)]
    torch_in = [torch.tensor(np.asarray(a), requires_grad=w) for a, w in zip(arrays, wants)]
    ndl_out, torch_out = _as_list(ndl_fn(*ndl_in)), _as_list(torch_fn(*torch_in))
    if len(ndl_out) != len(torch_out):
        raise AssertionError(f"{name}: {len(ndl_out)} outputs, expected {len(torch_out)}")
    for i, (a, b) in enumerate(zip(ndl_out, torch_out)):
        assert_close(a, b, rtol=rtol, atol=atol, what=f"output {i}", name=name)
    if not any(wants):
        return
    projections = _projections([o.shape for o in ndl_out], seed)
    ndl_loss = sum((o * ndl.Tensor(p, dtype=o.dtype, requires_grad=False)).sum()
                   for o, p in zip(ndl_out, projections))
    torch_loss = sum((o * torch.tensor(p, dtype=o.dtype)).sum()
                     for o, p in zip(torch_out, projections))
    ndl_loss.backward()
    torch_loss.backward()
    for i, (x, t, w) in enumerate(zip(ndl_in, torch_in, wants)):
        if not w:
            continue
        want = t.grad if t.grad is not None else torch.zeros_like(t)
        if x.grad is None:
            raise AssertionError(f"{name}: input {i} got no gradient")
        assert_close(x.grad, want, rtol=rtol, atol=atol, what=f"gradient of input {i}",
                     name=name)


def check_finite_differences(fn: Callable[..., Any], *arrays: Array, eps: float = 1e-6,
                             atol: float = 1e-5, rtol: float = 1e-3,
                             wrt: Sequence[bool] | None = None, name: str = "op",
                             seed: int = 1) -> None:
    """needle's backward() equals central differences in float64: ``ndl.gradcheck`` (the
    checker needle's users get) on ``arrays`` as float64 Tensors, differentiating the inputs
    in ``wrt`` (all by default); a failure names the op, the input, the element and both
    values."""
    wants = list(wrt) if wrt is not None else [True] * len(arrays)
    inputs = [ndl.Tensor(np.asarray(a, dtype=np.float64), dtype="float64", requires_grad=w)
              for a, w in zip(arrays, wants)]
    try:
        ndl.gradcheck(fn, *inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
    except GradcheckError as error:
        raise AssertionError(f"{name}: {error}") from None
