"""Checks at an op's boundaries, so a custom op fails early and by name: each adjoint its
``gradient`` returns has its input's shape and dtype (``check_adjoints``, run by the engine
for every node), ``compute`` may return numpy arrays (wrapped) and is given Tensors only.
``Tensor``, ``Value`` and ``DeferredAdjoint`` are bound by ``autograd`` once defined."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .backend_ndarray import NDArray

if TYPE_CHECKING:
    from .autograd import DeferredAdjoint, Op, Tensor, Value
else:
    Op = Any


def check_adjoints(op: Op, grads: tuple[Any, ...], inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """Each adjoint has its input's shape, or an error naming the op (a custom op's wrong
    ``gradient`` would otherwise surface much later, in the optimiser). A floating adjoint of
    another floating dtype (a mixed-precision graph) is cast to the input's dtype, so a
    gradient always has its tensor's dtype, as in PyTorch; any other dtype is an error."""
    if len(grads) != len(inputs):
        raise ValueError(f"{type(op).__name__}.gradient returned {len(grads)} adjoint(s) for "
                         f"{len(inputs)} input(s); return one per input (None where there is "
                         f"none)")
    for grad, x in zip(grads, inputs):  # the usual case, on the hot path: nothing to fix
        if isinstance(grad, Tensor):
            g_data, x_data = grad.cached_data, x.cached_data
            if g_data.shape != x_data.shape or g_data.dtype != x_data.dtype:
                break
        elif not (grad is None or isinstance(grad, (Value, DeferredAdjoint))):
            break  # not an adjoint at all: the error below
    else:
        return grads
    return tuple(_checked_adjoint(op, i, grad, x) for i, (grad, x) in enumerate(zip(grads,
                                                                                     inputs)))


def _checked_adjoint(op: Op, i: int, grad: Any, x: Any) -> Any:
    if isinstance(grad, DeferredAdjoint):
        return grad  # combined by its kind in backward; checked once it is a Tensor
    if grad is not None and not isinstance(grad, Value):
        raise TypeError(f"{type(op).__name__}.gradient returned a {type(grad).__name__} for "
                        f"input {i}; adjoints are Tensors built from needle ops (or None)")
    if not isinstance(grad, Tensor) or (grad.shape == x.shape and grad.dtype == x.dtype):
        return grad
    both_floating = np.issubdtype(grad.dtype, np.floating) and \
        np.issubdtype(x.dtype, np.floating)
    if grad.shape != x.shape or not both_floating:
        raise ValueError(f"{type(op).__name__}.gradient returned an adjoint of shape "
                         f"{grad.shape} and dtype {grad.dtype} for input {i}, which has "
                         f"shape {x.shape} and dtype {x.dtype}; they must match")
    return grad.astype(x.dtype)


def _compute_result(op: Op, data: Any, inputs: Sequence[Value]) -> Any:
    """What ``op.compute`` returned, as an NDArray: numpy arrays and numbers are wrapped on the
    inputs' device; anything else is a clear error naming the op."""
    if isinstance(data, tuple):
        return tuple(_compute_result(op, d, inputs) for d in data)
    if isinstance(data, NDArray):
        return data
    if isinstance(data, (np.ndarray, np.generic, int, float, bool)):
        device = next((x.cached_data.device for x in inputs if isinstance(x, Tensor)), None)
        array = np.asarray(data)
        return NDArray(array, device=device, dtype=array.dtype)
    raise TypeError(f"{type(op).__name__}.compute returned a {type(data).__name__}; compute "
                    f"must return an NDArray (numpy arrays are wrapped)")


def _input_arrays(op: Op, inputs: Sequence[Any]) -> list[Any]:
    """The inputs' arrays, or a clear error when an input is not a Tensor (a number meant
    for the op's constructor, an array meant to be wrapped)."""
    bad = next((i for i, x in enumerate(inputs) if not isinstance(x, Value)), None)
    if bad is not None:
        raise TypeError(f"{type(op).__name__} got a {type(inputs[bad]).__name__} as input {bad}; "
                        f"ops take Tensors: pass numbers to the op's __init__ (as "
                        f"AddScalar(2.0) does) or wrap arrays in ndl.Tensor(...)")
    return [x.cached_data for x in inputs]
