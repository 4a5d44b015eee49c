"""Optimisers: update Parameters in place from their ``.grad``, building no graph.

Where needle differs from PyTorch the docstring says so: SGD's momentum buffer is an
exponential average, ``u = momentum u + (1 - momentum) g`` (PyTorch: ``u = momentum u + g``).
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .autograd import Tensor
from .backend_ndarray import NDArray
from .nn import Parameter


class Optimizer:
    """Holds a list of parameters; ``step()`` updates them, ``reset_grad()`` clears grads."""

    def __init__(self, params: Iterable[Parameter]):
        self.params = list(params)

    def step(self) -> None:
        raise NotImplementedError

    def reset_grad(self) -> None:
        for p in self.params:
            p.grad = None

    zero_grad = reset_grad

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters and per-parameter buffers (by parameter index), as numpy copies."""
        buffers = {name: getattr(self, name) for name in self._buffers}
        return {"hyper": {k: getattr(self, k) for k in self._hyper},
                "state": [{name: table[id(p)].numpy().copy() for name, table in buffers.items()
                           if id(p) in table} for p in self.params]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned (same parameters, in the same order)."""
        if len(state["state"]) != len(self.params):
            raise ValueError(f"optimizer state holds {len(state['state'])} parameters, this "
                             f"optimizer has {len(self.params)}")
        for k, v in state["hyper"].items():
            setattr(self, k, v)
        for p, entry in zip(self.params, state["state"]):
            for name, value in entry.items():
                if tuple(np.shape(value)) != p.shape:
                    raise ValueError(f"optimizer state {name!r} has shape {np.shape(value)}, "
                                     f"its parameter {p.shape}")
                getattr(self, name)[id(p)] = NDArray(np.asarray(value), device=p.device,
                                                     dtype=p.dtype)

    _hyper: tuple[str, ...] = ("lr",)
    _buffers: tuple[str, ...] = ()


def _grad_with_decay(param: Tensor, weight_decay: float) -> NDArray:
    """g + wd w, the gradient with its L2 term, as an NDArray in the parameter's dtype."""
    grad = param.grad.cached_data.astype(param.dtype)
    return grad + param.cached_data * weight_decay if weight_decay else grad


class SGD(Optimizer):
    """u = momentum u + (1 - momentum)(g + wd w);  w -= lr u."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0):
        super().__init__(params)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.u: dict[int, NDArray] = {}

    _hyper = ("lr", "momentum", "weight_decay")
    _buffers = ("u",)

    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            grad = _grad_with_decay(p, self.weight_decay)
            if self.momentum:
                previous = self.u.get(id(p))
                grad = grad * (1 - self.momentum) if previous is None else \
                    previous * self.momentum + grad * (1 - self.momentum)
                self.u[id(p)] = grad
            p.cached_data = p.cached_data - grad * self.lr


class Adam(Optimizer):
    """Adam with the L2 term added to the gradient and one step counter per ``step()``:
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;  w -= lr m̂ / (sqrt(v̂) + eps)."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params)
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weight_decay = weight_decay
        self.t = 0
        self.m: dict[int, NDArray] = {}
        self.v: dict[int, NDArray] = {}

    _hyper = ("lr", "beta1", "beta2", "eps", "weight_decay", "t")
    _buffers = ("m", "v")

    def step(self) -> None:
        self.t += 1
        for p in self.params:
            if p.grad is None:
                continue
            grad = _grad_with_decay(p, self.weight_decay)
            m = grad * (1 - self.beta1)
            v = grad * grad * (1 - self.beta2)
            if id(p) in self.m:
                m = self.m[id(p)] * self.beta1 + m
                v = self.v[id(p)] * self.beta2 + v
            self.m[id(p)], self.v[id(p)] = m, v
            m_hat = m / (1 - self.beta1 ** self.t)
            v_hat = v / (1 - self.beta2 ** self.t)
            p.cached_data = p.cached_data - m_hat * self.lr / (v_hat ** 0.5 + self.eps)
