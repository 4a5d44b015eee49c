"""Forward and backward by hand: a 2-layer net on MNIST, the chain rule checked against autograd.

fast.ai's "from the foundations" (notebook 02): the digit as a regression target, a
Linear(784, 50) - ReLU - Linear(50, 1) model with Kaiming-scaled weights and an MSE loss. The
gradients come from ``mse_grad``, ``relu_grad`` and ``lin_grad`` written by hand (each
layer's ``.g`` from the next one's), then from needle's ``backward()`` and from PyTorch's
autograd, all in float64.

Results: ``loss``, ``max_grad_diff`` (hand vs needle autograd, over w1, b1, w2, b2 and the
input), ``max_grad_diff_torch`` (needle autograd vs PyTorch) and ``num_images``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import needle as ndl

from . import common

Grads = dict[str, np.ndarray]


def lin(x: ndl.Tensor, w: ndl.Tensor, b: ndl.Tensor) -> ndl.Tensor:
    return x @ w + ndl.broadcast_to(b, (x.shape[0], w.shape[1]))


def mse(output: ndl.Tensor, target: ndl.Tensor) -> ndl.Tensor:
    diff = output.reshape((-1,)) - target
    return (diff * diff).sum() / target.shape[0]


def forward(x: ndl.Tensor, params: dict[str, ndl.Tensor], y: ndl.Tensor) -> dict[str, Any]:
    """Every intermediate value of the forward pass (the hand-written backward needs them)."""
    l1 = lin(x, params["w1"], params["b1"])
    l2 = ndl.relu(l1)
    out = lin(l2, params["w2"], params["b2"])
    return {"x": x, "l1": l1, "l2": l2, "out": out, "loss": mse(out, y)}


def mse_grad(out: ndl.Tensor, target: ndl.Tensor) -> ndl.Tensor:
    """d loss / d out = 2 (out - target) / N, shaped like out (N, 1)."""
    return (out.reshape((-1,)) - target).reshape((-1, 1)) * (2.0 / target.shape[0])


def relu_grad(inp: ndl.Tensor, out_g: ndl.Tensor) -> ndl.Tensor:
    """d relu(inp) = [inp > 0] times the gradient of the output."""
    return ndl.astype(inp > 0, inp.dtype) * out_g


def lin_grad(inp: ndl.Tensor, out_g: ndl.Tensor,
             w: ndl.Tensor) -> tuple[ndl.Tensor, ndl.Tensor, ndl.Tensor]:
    """For out = inp @ w + b: (d inp, d w, d b) = (out_g w^T, sum_n inp_n^T out_g_n, sum out_g)."""
    return out_g @ w.transpose(), ndl.einsum("ni,nj->ij", inp, out_g), out_g.sum(0)


def backward_by_hand(values: dict[str, Any], params: dict[str, ndl.Tensor],
                     y: ndl.Tensor) -> Grads:
    out_g = mse_grad(values["out"], y)
    l2_g, w2_g, b2_g = lin_grad(values["l2"], out_g, params["w2"])
    l1_g = relu_grad(values["l1"], l2_g)
    x_g, w1_g, b1_g = lin_grad(values["x"], l1_g, params["w1"])
    return {k: v.numpy() for k, v in dict(x=x_g, w1=w1_g, b1=b1_g, w2=w2_g, b2=b2_g).items()}


def backward_by_autograd(x: np.ndarray, arrays: dict[str, np.ndarray],
                         y: np.ndarray) -> tuple[float, Grads]:
    inputs = {k: ndl.Tensor(v, dtype="float64") for k, v in arrays.items()}
    xt = ndl.Tensor(x, dtype="float64")
    values = forward(xt, inputs, ndl.Tensor(y, dtype="float64", requires_grad=False))
    values["loss"].backward()
    grads = {k: _grad(v) for k, v in inputs.items()}
    grads["x"] = _grad(xt)
    return float(values["loss"].numpy()), grads


def _grad(x: ndl.Tensor) -> np.ndarray:
    assert x.grad is not None
    return x.grad.numpy()


def backward_by_torch(x: np.ndarray, arrays: dict[str, np.ndarray], y: np.ndarray) -> Grads:
    import torch

    ts = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    xt = torch.tensor(x, requires_grad=True)
    out = torch.relu(xt @ ts["w1"] + ts["b1"]) @ ts["w2"] + ts["b2"]
    loss = ((out.squeeze(-1) - torch.tensor(y)) ** 2).mean()
    grads = torch.autograd.grad(loss, [*ts.values(), xt])
    return {k: g.numpy() for k, g in zip([*ts, "x"], grads)}


def max_diff(a: Grads, b: Grads) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def run(quick: bool, out: str, seed: int, data_dir: str | None) -> dict[str, float]:
    x_train, y_train, _, _ = common.load_mnist(data_dir)
    n = 1000 if quick else len(x_train)
    x = x_train[:n].reshape(n, -1).astype(np.float64)
    x = (x - x.mean()) / x.std()  # the notebook normalises with the training mean and std
    y = y_train[:n].astype(np.float64)
    hidden = 50
    arrays = {"w1": np.random.randn(784, hidden) * np.sqrt(2 / 784), "b1": np.zeros(hidden),
              "w2": np.random.randn(hidden, 1) / np.sqrt(hidden), "b2": np.zeros(1)}
    params = {k: ndl.Tensor(v, dtype="float64", requires_grad=False) for k, v in arrays.items()}
    with ndl.no_grad():
        values = forward(ndl.Tensor(x, dtype="float64", requires_grad=False), params,
                         ndl.Tensor(y, dtype="float64", requires_grad=False))
        by_hand = backward_by_hand(values, params, ndl.Tensor(y, dtype="float64"))
    loss, by_autograd = backward_by_autograd(x, arrays, y)
    results = {"loss": loss, "max_grad_diff": max_diff(by_hand, by_autograd),
               "max_grad_diff_torch": max_diff(by_autograd, backward_by_torch(x, arrays, y)),
               "num_images": float(n)}
    for name in ("w1", "b1", "w2", "b2", "x"):
        print(f"  d loss / d {name:<3} {str(by_hand[name].shape):<10} max |hand - autograd| "
              f"{np.abs(by_hand[name] - by_autograd[name]).max():.3g}")
    return results
