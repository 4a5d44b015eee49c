"""Basic layers: Linear, activations, containers, normalisation and dropout.

Shapes: N is the batch, D (or in/out features) the feature axis; ``Linear`` keeps needle's
weight layout (in_features, out_features), the transpose of PyTorch's.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Callable, Iterator, Optional, Sequence

from .. import init, ops
from ..autograd import Tensor
from ..backend_ndarray import Device, NDArray, fused
from .module import Module, Parameter, _walk


class Identity(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x


class Linear(Module):
    """y = x W + b for x (..., in_features) -> (..., out_features).

    W (in, out) from kaiming_uniform(in, out); then b (1, out) from kaiming_uniform(out, 1)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(init.kaiming_uniform(in_features, out_features, device=device,
                                                     dtype=dtype))
        self.bias = Parameter(init.kaiming_uniform(out_features, 1, device=device, dtype=dtype)
                              .reshape((1, out_features))) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        if len(shape) < 1 or shape[-1] != self.in_features:
            raise ValueError(f"Linear expects inputs (..., {self.in_features}), got shape "
                             f"{shape}")
        if len(shape) == 2:
            return ops.linear(x, self.weight, self.bias)
        out = ops.linear(x.reshape((-1, self.in_features)), self.weight, self.bias)
        return out.reshape(shape[:-1] + (self.out_features,))

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " \
               f"bias={self.bias is not None}"


class Flatten(Module):
    """Axes ``start_dim`` .. ``end_dim`` merged: by default (N, d1, d2, ...) -> (N, d1 d2 ...)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        if self.start_dim == 1 and self.end_dim == -1:
            return x.reshape((x.shape[0], -1))
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


#: ``fusion(modules, i, x)``: the output of children ``i, i+1, ...`` of a Sequential run as
#: one fused op, and how many children that was, or None where the fusion does not apply
#: (``nn/conv_bn.py`` and ``nn/linear_bn.py`` register Conv2d or Linear → BatchNorm → ReLU).
Fusion = Callable[[tuple[Module, ...], int, Any], Optional[tuple[Any, int]]]


def observed(modules: Sequence[Module]) -> bool:
    """Whether any of ``modules`` has hooks or a forward replaced on the instance (a tool's
    wrapper, e.g. ``summary``'s): such modules must run themselves, not inside a fusion."""
    return any(m._hooks or "forward" in vars(m) for m in modules)


def layer_norm_relu(modules: tuple[Module, ...], i: int, layers: tuple[type, ...],
                    norm: type) -> tuple[Any, Any, bool] | None:
    """(layer, norm, whether a ReLU follows) when children i and i+1 are a layer of one of
    the classes ``layers`` and a norm of class ``norm`` (exactly: a subclass may compute
    otherwise), maybe then a ReLU, none of them ``observed``; else None."""
    block = modules[i:i + 3]
    if len(block) < 2 or type(block[0]) not in layers or type(block[1]) is not norm:
        return None
    relu = len(block) == 3 and type(block[2]) is ReLU
    if observed(block[:2 + relu]):
        return None
    return block[0], block[1], relu


class Sequential(Module):
    """Applies ``modules`` in order; ``.modules`` is the tuple of them (as in the course).
    ``Sequential(OrderedDict(name=module, ...))`` names them (``seq.name``, parameters
    ``name.weight``); a slice of a Sequential is a Sequential.

    Consecutive children that a registered fusion knows run as its one op, computing what
    they would compute one by one (and only where it is the same: training mode, no hooks,
    not reference mode); the children stay as they are. ``Sequential.fusions`` holds the
    fusions by the class of the first child they take."""

    fusions: dict[type, list[Fusion]] = {}

    def __init__(self, *modules: Module | OrderedDict[str, Module]):
        super().__init__()
        named = modules[0] if len(modules) == 1 and isinstance(modules[0], OrderedDict) else None
        if named is not None:
            self._names = tuple(named)
        self.modules: tuple[Module, ...] = tuple(named.values()) if named is not None \
            else modules  # type: ignore[assignment]

    @property
    def layers(self) -> tuple[Module, ...]:
        """The children, by their older name (``.modules``)."""
        return self.modules

    def forward(self, x: Any) -> Any:
        i = 0
        while i < len(self.modules):
            x, i = self._run_from(i, x)
        return x

    def _run_from(self, i: int, x: Any) -> tuple[Any, int]:
        """Child i on x, or the children a fusion runs from i; the output and the index of
        the next child."""
        for fusion in Sequential.fusions.get(type(self.modules[i]), ()):
            done = fusion(self.modules, i, x)
            if done is not None:
                return done[0], i + done[1]
        return self.modules[i](x), i + 1

    def __getitem__(self, index: int | slice) -> Any:
        if not isinstance(index, slice):
            return self.modules[index]
        names = vars(self).get("_names")
        if names is None:
            return Sequential(*self.modules[index])
        return Sequential(OrderedDict(zip(names[index], self.modules[index])))

    def _members(self) -> Iterator[tuple[str, Any]]:
        names = vars(self).get("_names")
        if names is None:
            yield from super()._members()
            return
        for name, layer in zip(names, self.modules):
            yield from _walk(layer, name)

    def __getattr__(self, name: str) -> Module:  # only reached when normal lookup fails
        names = vars(self).get("_names", ())
        if name in names:
            return vars(self)["modules"][names.index(name)]
        raise AttributeError(f"'Sequential' object has no attribute {name!r}")

    def __len__(self) -> int:
        return len(self.modules)


class Residual(Module):
    """fn(x) + x."""

    def __init__(self, fn: Module):
        super().__init__()
        self.fn = fn

    def forward(self, x: Tensor) -> Tensor:
        return self.fn(x) + x


class LeakyReLU(Module):
    """x for x > 0, else negative_slope * x (gradient negative_slope at 0, as PyTorch)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return ops.where(x > 0, x, x * self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x Phi(x), Phi the standard normal CDF: 0.5 x (1 + erf(x / sqrt 2)); with
    ``approximate="tanh"``, 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        if self.approximate == "tanh":
            inner = (x + x * x * x * 0.044715) * math.sqrt(2 / math.pi)
            return x * (ops.tanh(inner) + 1) * 0.5
        return x * (ops.erf(x * math.sqrt(0.5)) + 1) * 0.5

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class BatchNorm1d(Module):
    """Per-feature normalisation of x (N, D) by batch statistics (training) or running ones
    (eval): y = weight * (x - mean) / sqrt(var + eps) + bias. weight ones, bias zeros (D,).

    Running statistics update as (1 - momentum) old + momentum batch, with the biased batch
    variance (needle's convention; PyTorch keeps the unbiased one). The statistics are taken
    over every axis but axis 1, so a subclass whose ``check_input`` accepts (N, C, H, W) is
    BatchNorm2d."""

    def __init__(self, dim: int, eps: float = 1e-5, momentum: float = 0.1,
                 device: Device | None = None, dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.momentum = momentum
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))
        self.running_mean = init.zeros(dim, device=device, dtype=dtype)
        self.running_var = init.ones(dim, device=device, dtype=dtype)

    def check_input(self, x: Tensor) -> None:
        shape = x.shape
        if len(shape) != 2 or shape[1] != self.dim:
            raise ValueError(f"{type(self).__name__}({self.dim}) expects input (N, {self.dim}), "
                             f"got {shape}")

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        axes = (0,) + tuple(range(2, x.ndim))
        if not self.training:
            scale = self.weight * (self.running_var + self.eps) ** -0.5
            shift = self.bias - self.running_mean * scale
            return x * self._per_channel(scale, x) + self._per_channel(shift, x)
        out, mean, var = ops.batch_norm(x, axes, self.eps, self.weight, self.bias,
                                        channel_axis=1)
        self._update_running_stats(mean.cached_data, var.cached_data)
        return out

    @staticmethod
    def _per_channel(value: Tensor, x: Tensor) -> Tensor:
        """A (C,) tensor shaped to broadcast along axis 1 of x (N, C, ...)."""
        return value if x.ndim == 2 else value.reshape((1, -1) + (1,) * (x.ndim - 2))

    def _update_running_stats(self, mean: NDArray, var: NDArray) -> None:
        """running = (1 - momentum) running + momentum batch, for the mean and the variance
        (fresh arrays: a running statistic read earlier keeps its value)."""
        for running, batch in ((self.running_mean, mean), (self.running_var, var)):
            running.cached_data = fused.moving_average(running.cached_data, batch,
                                                       self.momentum)  # as .data = does

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}, momentum={self.momentum}"


class LayerNorm1d(Module):
    """Normalises the last axis of x (..., D): y = weight * (x - mean) / sqrt(var + eps) +
    bias, with weight ones and bias zeros of shape (D,)."""

    def __init__(self, dim: int, eps: float = 1e-5, device: Device | None = None,
                 dtype: str = "float32"):
        super().__init__()
        self.dim = dim
        self.eps = eps
        self.weight = Parameter(init.ones(dim, device=device, dtype=dtype))
        self.bias = Parameter(init.zeros(dim, device=device, dtype=dtype))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.dim,):
            raise ValueError(f"LayerNorm1d({self.dim}) expects a last axis of {self.dim}, "
                             f"got shape {x.shape}")
        return ops.normalize(x, -1, self.eps, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


def dropout_mask(x: Tensor, p: float) -> Tensor:
    """The constant that dropout multiplies x by: randb(*x.shape, p=1-p) / (1-p) in x's
    dtype, the same draws as ``init.randb`` made without a Tensor around them, the scale
    cast in one pass (``fused.scaled_mask``)."""
    keep = init.bernoulli_mask(x.shape, 1 - p, x.device)
    return Tensor.make_const(fused.scaled_mask(keep, 1 / (1 - p), x.dtype))


class Dropout(Module):
    """In training, zeroes each element with probability p and scales the rest by
    1/(1-p): x * randb(*x.shape, p=1-p) / (1-p), with the scale folded into the mask.
    The identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        return x * dropout_mask(x, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}"
