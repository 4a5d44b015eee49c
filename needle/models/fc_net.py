"""cs231n's fully connected networks (assignment 2), with needle's autograd as the backward.

The models keep cs231n's interface so that its ``Solver`` code drives them: ``params`` is a
dict of numpy arrays (``W1, b1, ..., gamma1, beta1, ...``) and ``loss(X, y=None)`` returns
the class scores (N, C) when ``y`` is None, else ``(loss, grads)`` with ``grads`` a dict of
numpy arrays shaped like ``params``. Inside ``loss`` the forward pass runs on needle Tensors
built from ``params`` and the gradients come from ``backward()``: there is no hand-written
backward pass. X is (N, d_1, ..., d_k) (e.g. N x C x H x W images), flattened per row.

cs231n's conventions, which differ from ``needle.nn``: ``dropout_keep_ratio`` is the
probability of KEEPING a unit (``nn.Dropout(p)`` takes the probability of dropping it), and
the batch/layer-norm ``momentum`` weighs the OLD running statistics,
``running = momentum * running + (1 - momentum) * batch`` with 0.9 by default (needle's and
PyTorch's 0.1 weighs the new batch). The regularisation is ``0.5 * reg * ΣW²`` over weights.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .. import ops
from ..autograd import Tensor

Grads = dict[str, np.ndarray]


def _tensor(array: Any, dtype: Any, requires_grad: bool = False) -> Tensor:
    return Tensor(np.asarray(array), dtype=np.dtype(dtype).name, requires_grad=requires_grad)


def affine(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    """x (N, D) @ w (D, M) + b (M,)."""
    return x @ w + b


def normalize(x: Tensor, axis: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(x - mean) / sqrt(var + eps) along ``axis`` of x (N, D), with the mean and biased var."""
    mean = x.mean(axes=axis, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axes=axis, keepdims=True)
    return centred / ops.sqrt(var + eps), mean, var


def batchnorm(x: Tensor, gamma: Tensor, beta: Tensor, bn_param: dict[str, Any]) -> Tensor:
    """cs231n's batchnorm_forward: batch statistics in "train" mode (updating the running
    ones with cs231n's momentum), running ones in "test" mode."""
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    dim = x.shape[1]
    running_mean = bn_param.setdefault("running_mean", np.zeros(dim, dtype=x.dtype))
    running_var = bn_param.setdefault("running_var", np.zeros(dim, dtype=x.dtype))
    if bn_param["mode"] == "train":
        x_hat, mean, var = normalize(x, 0, eps)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean.numpy()[0]
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var.numpy()[0]
    elif bn_param["mode"] == "test":
        shift = _tensor(running_mean, x.dtype)
        scale = _tensor(1 / np.sqrt(running_var + eps), x.dtype)
        x_hat = (x - shift) * scale
    else:
        raise ValueError(f"bn_param mode must be 'train' or 'test', got {bn_param['mode']!r}")
    return x_hat * gamma + beta


def layernorm(x: Tensor, gamma: Tensor, beta: Tensor, ln_param: dict[str, Any]) -> Tensor:
    """cs231n's layernorm_forward: each row normalised over its features, any mode."""
    return normalize(x, 1, ln_param.get("eps", 1e-5))[0] * gamma + beta


def dropout(x: Tensor, dropout_param: dict[str, Any]) -> Tensor:
    """cs231n's inverted dropout: in "train" mode keep each unit with probability
    ``dropout_param["p"]`` (the KEEP ratio) and divide by it; identity in "test" mode."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    if mode != "train":
        return x
    mask = (np.random.rand(*x.shape) < p) / p
    return x * _tensor(mask, x.dtype)


def softmax_loss(scores: Tensor, y: np.ndarray) -> Tensor:
    """Mean over the batch of -log softmax(scores)[y]: logsumexp(scores) - scores[y]."""
    n = scores.shape[0]
    correct = scores[np.arange(n), np.asarray(y, dtype=np.int64)]
    return (ops.logsumexp(scores, axes=1) - correct).sum() / n


class FullyConnectedNet:
    """{affine - [batch/layer norm] - relu - [dropout]} x (L - 1) - affine - softmax.

    ``hidden_dims`` the L - 1 hidden widths; weights ``W{i}`` ~ N(0, weight_scale²) and
    biases ``b{i}`` zero; with ``normalization`` "batchnorm" or "layernorm", ``gamma{i}``
    ones and ``beta{i}`` zeros after each hidden affine. ``dropout_keep_ratio`` < 1 adds
    dropout keeping units with that probability (cs231n's convention; see the module
    docstring). ``seed`` fixes the dropout masks (for gradient checks)."""

    NORMALIZATIONS = (None, "batchnorm", "layernorm")

    def __init__(self, hidden_dims: Sequence[int], input_dim: int = 3 * 32 * 32,
                 num_classes: int = 10, dropout_keep_ratio: float = 1, normalization:
                 str | None = None, reg: float = 0.0, weight_scale: float = 1e-2,
                 dtype: Any = np.float32, seed: int | None = None):
        if normalization not in self.NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {self.NORMALIZATIONS}, got "
                             f"{normalization!r}")
        if not 0 < dropout_keep_ratio <= 1:
            raise ValueError(f"dropout_keep_ratio is the probability of keeping a unit, in "
                             f"(0, 1], got {dropout_keep_ratio}")
        self.normalization, self.reg, self.dtype = normalization, reg, np.dtype(dtype)
        self.use_dropout = dropout_keep_ratio != 1
        self.num_layers = 1 + len(hidden_dims)
        self.params: dict[str, np.ndarray] = {}
        dims = [input_dim, *hidden_dims, num_classes]
        for i, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:]), start=1):
            self.params[f"W{i}"] = weight_scale * np.random.randn(fan_in, fan_out)
            self.params[f"b{i}"] = np.zeros(fan_out)
            if normalization and i < self.num_layers:
                self.params[f"gamma{i}"] = np.ones(fan_out)
                self.params[f"beta{i}"] = np.zeros(fan_out)
        for name, value in self.params.items():
            self.params[name] = value.astype(self.dtype)
        self.dropout_param: dict[str, Any] = {"mode": "train", "p": dropout_keep_ratio}
        if seed is not None:
            self.dropout_param["seed"] = seed
        self.bn_params: list[dict[str, Any]] = [{"mode": "train"}
                                                for _ in range(self.num_layers - 1)]

    def scores(self, X: np.ndarray, params: dict[str, Tensor], mode: str) -> Tensor:
        """Class scores (N, C) of X on needle Tensors."""
        self.dropout_param["mode"] = mode
        out = _tensor(X.reshape(len(X), -1), self.dtype)
        for i in range(1, self.num_layers):
            out = affine(out, params[f"W{i}"], params[f"b{i}"])
            if self.normalization == "batchnorm":
                self.bn_params[i - 1]["mode"] = mode
                out = batchnorm(out, params[f"gamma{i}"], params[f"beta{i}"],
                                self.bn_params[i - 1])
            elif self.normalization == "layernorm":
                out = layernorm(out, params[f"gamma{i}"], params[f"beta{i}"],
                                self.bn_params[i - 1])
            out = ops.relu(out)
            if self.use_dropout:
                out = dropout(out, self.dropout_param)
        last = self.num_layers
        return affine(out, params[f"W{last}"], params[f"b{last}"])

    def loss(self, X: np.ndarray, y: np.ndarray | None = None
             ) -> np.ndarray | tuple[float, Grads]:
        """Scores (N, C) for y None ("test" mode); else (loss, grads) in "train" mode."""
        mode = "test" if y is None else "train"
        params = {name: _tensor(value, self.dtype, requires_grad=y is not None)
                  for name, value in self.params.items()}
        scores = self.scores(X, params, mode)
        if y is None:
            return scores.numpy()
        loss = softmax_loss(scores, y)
        for i in range(1, self.num_layers + 1):
            weight = params[f"W{i}"]
            loss = loss + 0.5 * self.reg * (weight * weight).sum()
        loss.backward()
        grads = {name: tensor.grad.numpy() for name, tensor in params.items()}
        return float(loss.numpy()), grads


class TwoLayerNet(FullyConnectedNet):
    """affine - relu - affine - softmax: cs231n's TwoLayerNet, a FullyConnectedNet with one
    hidden layer of ``hidden_dim`` units."""

    def __init__(self, input_dim: int = 3 * 32 * 32, hidden_dim: int = 100,
                 num_classes: int = 10, weight_scale: float = 1e-3, reg: float = 0.0,
                 dtype: Any = np.float32):
        super().__init__([hidden_dim], input_dim, num_classes, reg=reg,
                         weight_scale=weight_scale, dtype=dtype)
