"""Elementwise ops. Binary ops broadcast their operands first (see ``broadcast.py``)."""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from ..autograd import NDArray, Tensor, TensorOp
from .broadcast import binary_operands, is_scalar


class EWiseAdd(TensorOp):
    """f(a, b) = a + b; df = (g, g)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a + b

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        return out_grad, out_grad


class AddScalar(TensorOp):
    """f(a) = a + c; df = g."""

    def __init__(self, scalar: float):
        self.scalar = scalar

    def compute(self, a: NDArray) -> NDArray:
        return a + self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad


def with_scalar(a: Tensor, scalar: Any, true_division: bool = False) -> Tensor:
    """``a`` as float32 where PyTorch's promotion makes it so: a bool or integer tensor
    meeting a float (or, in true division, any number). Otherwise ``a`` itself."""
    if (true_division or isinstance(scalar, (float, np.floating))) and a.dtype.kind in "biu":
        return astype(a, "float32")
    return a


def add(lhs: Any, rhs: Any) -> Tensor:
    """lhs + rhs, broadcasting; either may be a number."""
    if is_scalar(rhs):
        return AddScalar(rhs)(with_scalar(lhs, rhs))
    if is_scalar(lhs):
        return AddScalar(lhs)(with_scalar(rhs, lhs))
    return EWiseAdd()(*binary_operands(lhs, rhs))


def add_scalar(a: Tensor, scalar: float) -> Tensor:
    return AddScalar(scalar)(with_scalar(a, scalar))


class EWiseMul(TensorOp):
    """f(a, b) = a * b; df = (g * b, g * a)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a * b

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        lhs, rhs = node.inputs  # skip the product for a constant factor (a dropout mask)
        return (out_grad * rhs if lhs.requires_grad else None,
                out_grad * lhs if rhs.requires_grad else None)


class MulScalar(TensorOp):
    """f(a) = c a; df = c g."""

    def __init__(self, scalar: float):
        self.scalar = scalar

    def compute(self, a: NDArray) -> NDArray:
        return a * self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * self.scalar


def multiply(lhs: Any, rhs: Any) -> Tensor:
    """lhs * rhs, broadcasting; either may be a number."""
    if is_scalar(rhs):
        return MulScalar(rhs)(with_scalar(lhs, rhs))
    if is_scalar(lhs):
        return MulScalar(lhs)(with_scalar(rhs, lhs))
    return EWiseMul()(*binary_operands(lhs, rhs))


def mul_scalar(a: Tensor, scalar: float) -> Tensor:
    return MulScalar(scalar)(with_scalar(a, scalar))


class EWiseDiv(TensorOp):
    """f(a, b) = a / b; df = (g / b, -g a / b^2)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a / b

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        rhs = node.inputs[1]
        return out_grad / rhs, -(out_grad * node / rhs)


class DivScalar(TensorOp):
    """f(a) = a / c; df = g / c."""

    def __init__(self, scalar: float):
        self.scalar = scalar

    def compute(self, a: NDArray) -> NDArray:
        return a / self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad / self.scalar


def divide(lhs: Any, rhs: Any) -> Tensor:
    """lhs / rhs, broadcasting; either may be a number."""
    if is_scalar(rhs):
        return DivScalar(rhs)(with_scalar(lhs, rhs, true_division=True))
    if is_scalar(lhs):
        return MulScalar(lhs)(PowerScalar(-1)(with_scalar(rhs, lhs, true_division=True)))
    lhs, rhs = binary_operands(lhs, rhs)
    if lhs.dtype.kind in "biu":  # true division of integers gives float32 (PyTorch)
        lhs, rhs = astype(lhs, "float32"), astype(rhs, "float32")
    return EWiseDiv()(lhs, rhs)


def divide_scalar(a: Tensor, scalar: float) -> Tensor:
    return DivScalar(scalar)(with_scalar(a, scalar, true_division=True))


class EWisePow(TensorOp):
    """f(a, b) = a^b; df = (g b a^(b-1), g a^b log a)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a ** b

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor | None, Tensor | None]:
        lhs, rhs = node.inputs
        grad_lhs = out_grad * rhs * lhs ** (rhs - 1) if lhs.requires_grad else None
        grad_rhs = out_grad * node * log(lhs) if rhs.requires_grad else None
        return grad_lhs, grad_rhs


class PowerScalar(TensorOp):
    """f(a) = a^c for a number c; df = g c a^(c-1) (zero for c = 0, as in PyTorch)."""

    def __init__(self, scalar: float):
        self.scalar = scalar

    def compute(self, a: NDArray) -> NDArray:
        return a ** self.scalar

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        if self.scalar == 0:  # c a^(c-1) would be 0 * inf = nan at a = 0
            return out_grad * 0
        a = node.inputs[0]
        return out_grad * (a ** (self.scalar - 1) * self.scalar)


def power(lhs: Any, rhs: Any) -> Tensor:
    """lhs ** rhs elementwise, broadcasting; either may be a number."""
    if is_scalar(rhs):
        return PowerScalar(rhs)(with_scalar(lhs, rhs))
    return EWisePow()(*binary_operands(lhs, rhs))


def power_scalar(a: Tensor, scalar: float) -> Tensor:
    return PowerScalar(scalar)(with_scalar(a, scalar))


class Negate(TensorOp):
    """f(a) = -a; df = -g."""

    def compute(self, a: NDArray) -> NDArray:
        return -a

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return -out_grad


def negate(a: Tensor) -> Tensor:
    return Negate()(a)


class Log(TensorOp):
    """f(a) = log a; df = g / a."""

    def compute(self, a: NDArray) -> NDArray:
        return a.log()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad / node.inputs[0]


def log(a: Tensor) -> Tensor:
    return Log()(a)


class Exp(TensorOp):
    """f(a) = e^a; df = g e^a (the output itself)."""

    def compute(self, a: NDArray) -> NDArray:
        return a.exp()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * node


def exp(a: Tensor) -> Tensor:
    return Exp()(a)


class ReLU(TensorOp):
    """f(a) = max(a, 0); df = g [a > 0]."""

    def compute(self, a: NDArray) -> NDArray:
        return a.maximum(0)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * astype(node > 0, out_grad.dtype)  # the mask as numbers


def relu(a: Tensor) -> Tensor:
    return ReLU()(a)


class Tanh(TensorOp):
    """f(a) = tanh a; df = g (1 - f(a)^2)."""

    def compute(self, a: NDArray) -> NDArray:
        return a.tanh()

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * (1 - node * node)


def tanh(a: Tensor) -> Tensor:
    return Tanh()(a)


class Maximum(TensorOp):
    """f(a, b) = max(a, b); df routes g to the larger input, half to each on ties (PyTorch)."""

    def compute(self, a: NDArray, b: NDArray) -> NDArray:
        return a.maximum(b)

    def gradient(self, out_grad: Tensor, node: Tensor) -> tuple[Tensor, Tensor]:
        lhs, rhs = node.inputs
        lhs_share = astype(lhs > rhs, out_grad.dtype) + astype(lhs == rhs, out_grad.dtype) * 0.5
        return out_grad * lhs_share, out_grad * (1 - lhs_share)


def maximum(lhs: Any, rhs: Any) -> Tensor:
    """Elementwise max(lhs, rhs), broadcasting; either may be a number."""
    return Maximum()(*binary_operands(lhs, rhs))


class AsType(TensorOp):
    """f(a) = a converted to ``dtype``; df = g converted back to a's dtype."""

    def __init__(self, dtype: Any):
        self.dtype = dtype

    def compute(self, a: NDArray) -> NDArray:
        return a.astype(self.dtype)

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return astype(out_grad, node.inputs[0].dtype)


def astype(a: Tensor, dtype: Any) -> Tensor:
    return a if a.dtype == dtype else AsType(dtype)(a)


class Compare(TensorOp):
    """f(a, b) = a <op> b as booleans; not differentiable (like PyTorch's comparisons)."""

    differentiable = False

    def __init__(self, fn: Callable[[Any, Any], Any], scalar: float | None = None):
        self.fn = fn
        self.scalar = scalar

    def compute(self, *args: NDArray) -> NDArray:
        return self.fn(args[0], args[1] if len(args) > 1 else self.scalar)


def _compare(fn: Callable[[Any, Any], Any], lhs: Any, rhs: Any) -> Tensor:
    if is_scalar(rhs):
        return Compare(fn, rhs)(lhs)
    return Compare(fn)(*binary_operands(lhs, rhs))


def equal(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.eq, lhs, rhs)


def not_equal(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.ne, lhs, rhs)


def less(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.lt, lhs, rhs)


def less_equal(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.le, lhs, rhs)


def greater(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.gt, lhs, rhs)


def greater_equal(lhs: Any, rhs: Any) -> Tensor:
    return _compare(operator.ge, lhs, rhs)


class LogicalNot(TensorOp):
    """f(a) = not a, for boolean tensors; not differentiable."""

    differentiable = False

    def compute(self, a: NDArray) -> NDArray:
        return a.logical_not()


def logical_not(a: Tensor) -> Tensor:
    return LogicalNot()(a)
