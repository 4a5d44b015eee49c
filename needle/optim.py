"""Optimisers and learning-rate schedulers: update Parameters in place from their ``.grad``.

Updates build no graph and keep each parameter's dtype. For speed an optimiser runs its
update rule once over all parameters: at the first ``step()`` it moves the parameters of
each (device, dtype) group into one flat buffer (each Parameter keeps a view into it) and
keeps its moment buffers flat too, so an update is a dozen whole-model array operations
instead of a dozen per parameter. Per-parameter state (``state_dict()``) are views of the
flat buffers. A parameter whose ``.data`` was reassigned is copied back in at the next step;
when some gradients are None the rule runs per parameter on the others (PyTorch skips them).

``t`` counts ``step()`` calls (the contract's one counter for Adam); PyTorch counts steps per
parameter, which differs only for parameters that sometimes have no gradient.

Where needle differs from PyTorch the docstring says so: SGD's momentum buffer is an
exponential average, ``u = momentum u + (1 - momentum) g`` (PyTorch: ``u = momentum u + g``),
so needle's ``SGD(lr, m)`` moves like PyTorch's ``SGD(lr * (1 - m), m)``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from .autograd import Tensor
from .backend_ndarray import Device, NDArray, fused
from .nn import Parameter

Array = Any  # an array of a device's module (numpy or cupy)


class _Group:
    """Parameters of one device and dtype, their values, gradients and state in flat
    buffers of that device's array module (``xp``)."""

    def __init__(self, params: Sequence[Tensor], state_names: Sequence[str]):
        self.params = list(params)
        self.device: Device = params[0].device
        self.xp = self.device.module()
        dtype = params[0].dtype
        sizes = [p.size for p in params]
        self.offsets = np.cumsum([0] + sizes).tolist()
        total = self.offsets[-1]
        self.value = self.xp.empty(total, dtype=dtype)
        self.grad = self.xp.empty(total, dtype=dtype)
        self.tmp = self.xp.empty(total, dtype=dtype)
        self.state = {name: self.xp.zeros(total, dtype=dtype) for name in state_names}
        self.views = [self._view(self.value, i) for i in range(len(params))]
        self.grad_views = [self._view(self.grad, i) for i in range(len(params))]
        self.flat_grad = NDArray.make((total,), device=self.device, handle=self.grad)
        for p, view in zip(self.params, self.views):
            view[...] = p.cached_data
            p.cached_data = view

    def _view(self, flat: Array, i: int) -> NDArray:
        """Parameter i's slot of ``flat``, as an NDArray of its shape sharing memory."""
        return NDArray.make(self.params[i].shape, device=self.device, handle=flat,
                            offset=self.offsets[i])

    def raw(self, flat: Array, i: int) -> Array:
        """Parameter i's slot of ``flat`` as a raw array of its shape (a view)."""
        return flat[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[i].shape)

    def gather(self) -> bool:
        """Copy values reassigned since the last step back in, and gradients into the flat
        gradient buffer; True when every parameter has a gradient."""
        for p, view in zip(self.params, self.views):
            if p.cached_data is not view:
                view[...] = p.cached_data
                p.cached_data = view
        grads = [p.grad for p in self.params]
        if all(g is not None for g in grads):
            fused.flatten_into(self.flat_grad, [g.cached_data for g in grads])
            return True
        for grad, grad_view in zip(grads, self.grad_views):
            if grad is not None:
                grad_view[...] = grad.cached_data
        return False


Rule = Callable[..., None]


class Optimizer:
    """Holds a list of parameters; ``step()`` updates them, ``reset_grad()`` clears grads.

    Subclasses name their per-parameter buffers in ``state_names``, their hyper-parameters
    in ``hyper_names``, and write ``update(xp, w, g, tmp, **state)``: one in-place update on
    arrays of any shape (all parameters at once, or one)."""

    state_names: tuple[str, ...] = ()
    hyper_names: tuple[str, ...] = ("lr",)

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01):
        self.params = list(params)
        if not self.params:
            raise ValueError("optimizer got an empty parameter list")
        if not all(isinstance(p, Tensor) for p in self.params):
            raise TypeError(f"optimizer params must be Tensors, got "
                            f"{sorted({type(p).__name__ for p in self.params})}")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError("optimizer got the same parameter more than once")
        _check_positive(lr=lr)
        self.lr = lr
        self.t = 0
        self._groups: list[_Group] | None = None

    def _build_groups(self) -> list[_Group]:
        by_kind: dict[tuple[str, str], list[Tensor]] = {}
        for p in self.params:
            by_kind.setdefault((p.device.name, str(p.dtype)), []).append(p)
        return [_Group(ps, self.state_names) for ps in by_kind.values()]

    @property
    def groups(self) -> list[_Group]:
        if self._groups is None:
            self._groups = self._build_groups()
        return self._groups

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        self.t += 1
        for group in self.groups:
            if group.gather():
                self.update(group.xp, group.value, group.grad, group.tmp, **group.state)
                continue
            for i, p in enumerate(group.params):
                if p.grad is not None:
                    self.update(group.xp, group.raw(group.value, i), group.raw(group.grad, i),
                                group.raw(group.tmp, i),
                                **{k: group.raw(v, i) for k, v in group.state.items()})

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        raise NotImplementedError

    def reset_grad(self) -> None:
        for p in self.params:
            p.grad = None

    zero_grad = reset_grad

    def clip_grad_norm(self, max_norm: float = 0.25) -> float:
        """Scale all gradients so that their global L2 norm is at most ``max_norm``;
        returns the norm before clipping."""
        return clip_grad_norm(self.params, max_norm)

    # ------------------------------------------------------------------ state
    def _slots(self) -> list[tuple[_Group, int]]:
        """(group, index in the group) of each parameter, in parameter order."""
        slot = {id(p): (g, i) for g in self.groups for i, p in enumerate(g.params)}
        return [slot[id(p)] for p in self.params]

    def state_dict(self) -> dict[str, Any]:
        """Hyper-parameters, the step counter and each parameter's buffers (numpy copies,
        listed in parameter order)."""
        return {"hyper": {k: getattr(self, k) for k in self.hyper_names}, "step": self.t,
                "state": [{k: _host(g.raw(v, i)) for k, v in g.state.items()}
                          for g, i in self._slots()]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned, for the same parameters in the same order;
        a clear error (nothing changed) when counts, names or shapes differ."""
        entries = state.get("state", [])
        if len(entries) != len(self.params):
            raise ValueError(f"optimizer state holds {len(entries)} parameters, this "
                             f"optimizer has {len(self.params)}")
        for n, (p, entry) in enumerate(zip(self.params, entries)):
            if set(entry) != set(self.state_names):
                raise ValueError(f"optimizer state of parameter {n} has buffers "
                                 f"{sorted(entry)}, expected {sorted(self.state_names)}")
            for name, value in entry.items():
                if tuple(np.shape(value)) != p.shape:
                    raise ValueError(f"optimizer state {name!r} of parameter {n} has shape "
                                     f"{tuple(np.shape(value))}, the parameter {p.shape}")
        for k, v in state.get("hyper", {}).items():
            setattr(self, k, v)
        self.t = int(state.get("step", 0))
        for (group, i), entry in zip(self._slots(), entries):
            for name, value in entry.items():
                group.raw(group.state[name], i)[...] = group.xp.asarray(value)


def _host(array: Array) -> np.ndarray:
    """A numpy copy of a device array."""
    return array.get() if hasattr(array, "get") else np.array(array)


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value >= 0:
            raise ValueError(f"{name} must be >= 0, got {value}")


def _check_positive_int(**values: int) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_unit(**values: float) -> None:
    for name, value in values.items():
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")


def _add_weight_decay(xp: Any, w: Array, g: Array, tmp: Array, weight_decay: float) -> None:
    """g += wd w (the L2 term), in place on the optimiser's copy of the gradient."""
    if weight_decay:
        xp.multiply(w, weight_decay, out=tmp)
        g += tmp


class SGD(Optimizer):
    """u = momentum u + (1 - momentum)(g + wd w);  w -= lr u  (u starts at 0).

    nesterov: w -= lr ((1 - momentum)(g + wd w) + momentum u). needle's dampening makes
    SGD(lr, m) equal PyTorch's SGD(lr * (1 - m), m) (also with nesterov)."""

    state_names = ("u",)
    hyper_names = ("lr", "momentum", "weight_decay", "nesterov")

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, momentum: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, lr)
        _check_unit(momentum=momentum)
        _check_positive(weight_decay=weight_decay)
        if nesterov and not momentum:
            raise ValueError("nesterov=True needs a momentum > 0")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        u = state["u"]
        _add_weight_decay(xp, w, g, tmp, self.weight_decay)
        if not self.momentum:
            g *= self.lr
            w -= g
            return
        g *= 1 - self.momentum
        u *= self.momentum
        u += g
        if self.nesterov:
            xp.multiply(u, self.momentum, out=tmp)
            g += tmp
        else:
            g[...] = u
        g *= self.lr
        w -= g


class Adam(Optimizer):
    """Adam with the L2 term added to the gradient and one step counter t per ``step()``:
    g += wd w;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
    w -= lr m̂ / (sqrt(v̂) + eps), m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t)."""

    state_names = ("m", "v")
    hyper_names = ("lr", "beta1", "beta2", "eps", "weight_decay")

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr)
        _check_unit(beta1=beta1, beta2=beta2)
        _check_positive(eps=eps, weight_decay=weight_decay)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        _add_weight_decay(xp, w, g, tmp, self.weight_decay)
        self._adam(xp, w, g, tmp, state["m"], state["v"])

    def _adam(self, xp: Any, w: Array, g: Array, tmp: Array, m: Array, v: Array) -> None:
        """The moment updates and the step, in place (``g`` is used up)."""
        b1, b2 = self.beta1, self.beta2
        m *= b1
        v *= b2
        xp.multiply(g, 1 - b1, out=tmp)
        m += tmp
        g *= g
        g *= 1 - b2
        v += g
        # sqrt(v̂) + eps = sqrt(v) / sqrt(1 - b2^t) + eps;  lr m̂ = (lr / (1 - b1^t)) m
        xp.sqrt(v, out=tmp)
        tmp *= 1 / math.sqrt(1 - b2 ** self.t)
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - b1 ** self.t)
        w -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): w -= lr wd w, then the Adam step
    on the plain gradient."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.01):
        super().__init__(params, lr, beta1, beta2, eps, weight_decay)

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        w *= 1 - self.lr * self.weight_decay
        self._adam(xp, w, g, tmp, state["m"], state["v"])


class RMSprop(Optimizer):
    """PyTorch's RMSprop: g += wd w;  v = alpha v + (1 - alpha) g²;
    d = g / (sqrt(v) + eps) (centered: sqrt(v - gbar²) with gbar the average gradient);
    with momentum: b = momentum b + d, w -= lr b; else w -= lr d."""

    state_names = ("v", "b", "gbar")
    hyper_names = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0,
                 centered: bool = False):
        super().__init__(params, lr)
        _check_unit(alpha=alpha, momentum=momentum)
        _check_positive(eps=eps, weight_decay=weight_decay)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        v, b, gbar = state["v"], state["b"], state["gbar"]
        _add_weight_decay(xp, w, g, tmp, self.weight_decay)
        v *= self.alpha
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - self.alpha
        v += tmp
        if self.centered:
            gbar *= self.alpha
            xp.multiply(g, 1 - self.alpha, out=tmp)
            gbar += tmp
            xp.multiply(gbar, gbar, out=tmp)
            xp.subtract(v, tmp, out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)
        if self.momentum:
            b *= self.momentum
            b += tmp
            xp.multiply(b, self.lr, out=tmp)
        else:
            tmp *= self.lr
        w -= tmp


class Adagrad(Optimizer):
    """PyTorch's Adagrad: g += wd w;  s += g²;  w -= lr_t g / (sqrt(s) + eps) with
    lr_t = lr / (1 + (t - 1) lr_decay); s starts at ``initial_accumulator_value``."""

    state_names = ("s",)
    hyper_names = ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value")

    def __init__(self, params: Iterable[Parameter], lr: float = 0.01, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        super().__init__(params, lr)
        _check_positive(lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                        initial_accumulator_value=initial_accumulator_value)
        self.lr_decay, self.eps, self.weight_decay = lr_decay, eps, weight_decay
        self.initial_accumulator_value = initial_accumulator_value

    def _build_groups(self) -> list[_Group]:
        groups = super()._build_groups()
        for group in groups:
            group.state["s"][...] = self.initial_accumulator_value
        return groups

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, **state: Array) -> None:
        s = state["s"]
        _add_weight_decay(xp, w, g, tmp, self.weight_decay)
        xp.multiply(g, g, out=tmp)
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)
        tmp *= self.lr / (1 + (self.t - 1) * self.lr_decay)
        w -= tmp


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """Scale the gradients of ``params`` by max_norm / (norm + 1e-6) when their global L2
    norm exceeds ``max_norm`` (PyTorch's clip_grad_norm_); returns the norm."""
    _check_positive(max_norm=max_norm)
    with_grad = [p for p in params if p.grad is not None]
    if not with_grad:
        return 0.0
    norm = math.sqrt(sum(float((p.grad.cached_data * p.grad.cached_data).sum().numpy())
                         for p in with_grad))
    scale = max_norm / (norm + 1e-6)
    if scale < 1:
        for p in with_grad:
            p.grad = Tensor.make_const(p.grad.cached_data * scale)
    return norm


# ---------------------------------------------------------------------------- schedulers
class LRScheduler:
    """Sets ``optimizer.lr`` from the number of ``step()`` calls (usually once per epoch):
    lr = ``lr_at(last_epoch)``, starting from the optimiser's lr at construction."""

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0
        optimizer.lr = self.lr_at(0)

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base_lr = float(state["base_lr"])
        self.last_epoch = int(state["last_epoch"])
        self.optimizer.lr = self.lr_at(self.last_epoch)


class StepLR(LRScheduler):
    """lr = base_lr gamma^(epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        _check_positive_int(step_size=step_size)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        _check_positive_int(T_max=T_max)
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2
        return self.eta_min + (self.base_lr - self.eta_min) * cosine


class LinearLR(LRScheduler):
    """Linear warm-up (PyTorch's LinearLR): the factor goes from ``start_factor`` to
    ``end_factor`` over ``total_iters`` steps, then stays; lr = base_lr factor."""

    def __init__(self, optimizer: Optimizer, start_factor: float = 1 / 3,
                 end_factor: float = 1.0, total_iters: int = 5):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1 or total_iters <= 0:
            raise ValueError(f"LinearLR needs 0 < start_factor <= 1, 0 <= end_factor <= 1 and "
                             f"total_iters > 0, got {start_factor}, {end_factor}, {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, \
            total_iters
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                               * progress)
