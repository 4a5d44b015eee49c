# mypy: disable-error-code="arg-type"
# (the methods hand ``self``, a Tensor at run time, to ops typed for Tensor)
"""What makes a Tensor feel like an array: its shape and dtype, conversions, Python's
operators and the numpy-style methods. Each operator and method is one function of
``needle.ops`` (bound by ``autograd`` once the ops, which build on Tensor, exist)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .backend_ndarray import Axes, Device, Shape

if TYPE_CHECKING:
    from . import ops
    from .autograd import Tensor


class TensorMethods:
    """Array behaviour shared by every Tensor (a mixin over ``cached_data``)."""

    __slots__ = ()
    cached_data: Any
    requires_grad: bool

    @property
    def shape(self) -> Shape:
        return self.cached_data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.cached_data.dtype

    @property
    def device(self) -> Device:
        return self.cached_data.device

    @property
    def ndim(self) -> int:
        return self.cached_data.ndim

    @property
    def size(self) -> int:
        return self.cached_data.size

    def numpy(self) -> np.ndarray:
        return self.cached_data.numpy()

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.numpy().item()

    def __dlpack__(self, **kwargs: Any) -> Any:
        """DLPack export of the values (shared memory): ``torch.from_dlpack(tensor)``."""
        return self.cached_data.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self.cached_data.__dlpack_device__()

    def __len__(self) -> int:
        return self.shape[0]

    def __bool__(self) -> bool:
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"needle.Tensor({self.numpy()!r}{grad})"

    def __str__(self) -> str:
        return str(self.numpy())

    # ------------------------------------------------------------------ operators
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.multiply(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Tensor:
        return ops.divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.divide(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.power(other, self)

    def __neg__(self) -> Tensor:
        return ops.negate(self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.equal(self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        return ops.not_equal(self, other)

    def __lt__(self, other: Any) -> Tensor:
        return ops.less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return ops.less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return ops.greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return ops.greater_equal(self, other)

    def __invert__(self) -> Tensor:
        return ops.logical_not(self)

    # ------------------------------------------------------------------ methods
    def sum(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.summation(self, axes, keepdims=keepdims)

    def mean(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axes, keepdims=keepdims)

    def max(self, axes: Axes = None, keepdims: bool = False) -> Tensor:
        return ops.amax(self, axes, keepdims=keepdims)

    def logsumexp(self, axes: Axes = None) -> Tensor:
        return ops.logsumexp(self, axes)

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                           else shape)

    def broadcast_to(self, shape: Shape) -> Tensor:
        return ops.broadcast_to(self, shape)

    def transpose(self, axes: tuple[int, int] | None = None) -> Tensor:
        return ops.transpose(self, axes)

    def permute(self, *axes: Any) -> Tensor:
        return ops.permute(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int)
                           else axes)

    @property
    def T(self) -> Tensor:
        """All axes reversed (numpy's and PyTorch's ``.T``)."""
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    def matmul(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def flip(self, axes: Axes) -> Tensor:
        return ops.flip(self, axes)
