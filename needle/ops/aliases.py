"""PyTorch's names for needle's ops and its ``dim=``/``keepdim=`` keywords, plus the index
reductions ``argmax``/``argmin`` (constants: indices carry no gradient)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, Sequence, TypeVar

import numpy as np

from ..autograd import Tensor, TensorTuple
from .shape import concatenate

F = TypeVar("F", bound=Callable[..., Any])


def torch_keywords(fn: F) -> F:
    """``fn`` also accepting ``dim=`` for its ``axes``/``axis`` and ``keepdim=`` for its
    ``keepdims`` argument, as PyTorch spells them."""
    params = inspect.signature(fn).parameters
    axis_name = next((n for n in ("axes", "axis") if n in params), None)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "dim" in kwargs and axis_name is not None:
            if axis_name in kwargs:
                raise TypeError(f"{fn.__name__}: got both {axis_name}= and dim=: they name "
                                f"one argument")
            kwargs[axis_name] = kwargs.pop("dim")
        if "keepdim" in kwargs and "keepdims" in params:
            kwargs["keepdims"] = kwargs.pop("keepdim")
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def cat(tensors: Sequence[Tensor] | TensorTuple, dim: int = 0) -> Tensor:
    """``torch.cat``: ``concatenate`` along ``dim``."""
    return concatenate(tensors, axis=dim)


def _arg_reduce(a: Tensor, dim: int | None, keepdim: bool, name: str) -> Tensor:
    values = a.numpy()
    index = getattr(values, name)(axis=dim, keepdims=keepdim)
    return Tensor(np.asarray(index, dtype=np.int64), device=a.device, requires_grad=False)


def argmax(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices (int64) of the maxima along ``dim`` (of the flattened tensor when None)."""
    return _arg_reduce(a, dim, keepdim, "argmax")


def argmin(a: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Indices (int64) of the minima along ``dim`` (of the flattened tensor when None)."""
    return _arg_reduce(a, dim, keepdim, "argmin")


def clamp(a: Tensor, min: Any = None, max: Any = None) -> Tensor:  # noqa: A002 (torch's names)
    """``a`` limited to [min, max] (see ``Tensor.clamp``)."""
    return a.clamp(min, max)
