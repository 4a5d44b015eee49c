"""A custom op ported from ``torch.autograd.Function``: softplus(x) = log(1 + e^x), its
gradient written in needle ops (so it has a second derivative), checked with
``ndl.gradcheck`` and ``ndl.gradgradcheck`` as in docs/custom_ops.md, and a Hessian-vector
product of f(x) = sum(w * softplus(x)^2).

    PYTHONPATH=. python examples/from_pytorch/custom_op.py

What changed in the port: ``forward``/``backward`` became ``compute`` (on NDArrays; a numpy
result is wrapped) and ``gradient`` (in Tensor ops); ``ctx.save_for_backward`` is not needed
(``node.inputs`` holds the inputs); ``torch.autograd.grad(..., create_graph=True)`` became
``backward(create_graph=True)`` and reading ``.grad``.

PyTorch twin::

    import torch


    class Softplus(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.log1p(torch.exp(-x.abs())) + x.clamp(min=0)

        @staticmethod
        def backward(ctx, out_grad):
            (x,) = ctx.saved_tensors
            return out_grad * torch.sigmoid(x)  # torch ops: differentiable again


    def hessian_vector_product(x, w, v):
        x = x.clone().requires_grad_()
        f = (w * Softplus.apply(x) ** 2).sum()
        (grad,) = torch.autograd.grad(f, x, create_graph=True)
        (hv,) = torch.autograd.grad((grad * v).sum(), x)
        return f.detach(), grad.detach(), hv
"""

from __future__ import annotations

import numpy as np

import needle as ndl
from needle.autograd import NDArray, Tensor, TensorOp


class Softplus(TensorOp):
    """f(x) = log(1 + e^x), computed stably as log1p(e^-|x|) + max(x, 0); f' = sigmoid(x)."""

    def compute(self, x: NDArray) -> np.ndarray:
        a = x.numpy()
        return np.log1p(np.exp(-np.abs(a))) + np.maximum(a, 0)  # numpy: needle wraps it

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        return out_grad * ndl.sigmoid(node.inputs[0])


def softplus(x: Tensor) -> Tensor:
    return Softplus()(x)


def hessian_vector_product(x: np.ndarray, w: np.ndarray, v: np.ndarray
                           ) -> tuple[float, np.ndarray, np.ndarray]:
    """(f, grad f, H v) at x for f(x) = sum(w * softplus(x)^2), in float64."""
    xt = Tensor(x, dtype="float64")
    f = (Tensor(w, dtype="float64", requires_grad=False) * softplus(xt) ** 2).sum()
    f.backward(create_graph=True)
    grad = xt.grad
    (grad * Tensor(v, dtype="float64", requires_grad=False)).sum().backward()
    return f.item(), grad.numpy(), xt.grad.numpy()


def main() -> None:
    rng = np.random.default_rng(0)
    x, w, v = (rng.standard_normal(5) for _ in range(3))
    print("gradcheck:", ndl.gradcheck(softplus, x * 10))
    print("gradgradcheck:", ndl.gradgradcheck(softplus, x))
    f, grad, hv = hessian_vector_product(x, w, v)
    print(f"f = {f:.6f}\ngrad = {np.round(grad, 6)}\nHv = {np.round(hv, 6)}")


if __name__ == "__main__":
    main()
