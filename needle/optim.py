"""Optimisers and learning-rate schedulers: update Parameters in place from their ``.grad``.

Every optimiser states its update rule twice, and both run:

- ``rule`` — the readable form: one parameter at a time, written in Tensor arithmetic
  under ``no_grad`` (PyTorch's ``_single_tensor_*``). Reference mode
  (``ndl.reference_mode()``) runs it.
- ``update`` — the fast form (the default): the same rule once over all parameters of a
  group, on flat buffers of the device's array module, in place (PyTorch's ``_fused_*``).
  A group's parameters (per device and dtype) are laid end to end in one flat vector,
  over which each state buffer is one flat array. At each step the rule runs over the
  vector a cache-sized span at a time, by a dozen whole-array operations: small
  parameters' values and gradients are copied into scratch arrays (the values back),
  large ones are updated where they lie, reading their gradients where those lie.
  Parameters are never moved, so two optimisers over one model do not interfere;
  parameters whose gradient is None are skipped (as PyTorch does).

Parameters come as a list or as ``param_groups`` (dicts with ``"params"`` and their own
hyper-parameters), as in PyTorch; ``optimizer.lr`` reads the first group's lr and sets
every group's. ``t`` counts ``step()`` calls (the contract's one counter for Adam); PyTorch
counts steps per parameter, which differs only for parameters that sometimes have no
gradient.

Where needle differs from PyTorch the docstring says so: SGD's momentum buffer is an
exponential average, ``u = momentum u + (1 - momentum) g`` (PyTorch: ``u = momentum u + g``),
so needle's ``SGD(lr, m)`` moves like PyTorch's ``SGD(lr * (1 - m), m)``.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Iterable, Sequence

import numpy as np

from .autograd import Tensor, no_grad
from .backend_ndarray import Device, NDArray, parallel
from .nn import Parameter
from .nn.utils import clip_grad_norm_
from .reference import is_reference_mode

Array = Any  # an array of a device's module (numpy or cupy)
Group = dict[str, Any]  # "params" and the hyper-parameters of a parameter group
State = dict[str, Tensor]  # one parameter's buffers


#: Elements one fast update works on at a time on the CPU: with the gradient, the scratch
#: array and two state buffers of a chunk, about 1.3 MB: in a core's caches.
CACHE_CHUNK = 1 << 16
#: Parameters of at least this many elements are updated where they lie on the CPU, a span
#: at a time, rather than copied into the scratch arrays and back: for MLP-ResNet's 784 x
#: 100 weight (70 % of its values) the copies cost more than its dozen numpy calls.
DIRECT_MIN = 1 << 14

Piece = tuple[int, int, int]  # (parameter index, first element, end element) in row-major order
Span = tuple[slice, list[Piece]]  # a slice of the flat state buffers and the pieces it holds
# a span's scratch views (value, gradient, two temporaries), its slices of the state buffers,
# and per piece the part of the value scratch it fills (shaped as the parameter if whole)
Workspace = tuple[tuple[Array, ...], dict[str, Array], list[Array]]


class _Flat:
    """One group's parameters of one device and dtype, laid end to end in a flat vector:
    a flat buffer over it for each state (each parameter's state is a view of its slot,
    what ``optimizer.state`` holds), and chunk-sized scratch arrays for values, gradients
    and two temporaries (arrays of the device's ``xp``).

    A step goes over the vector a span of at most ``CACHE_CHUNK`` elements at a time (one
    span on a GPU): the span's values and gradients are copied into the scratch arrays,
    updated with the span's state, and the values copied back into each parameter's own
    storage; a span of one large parameter (``DIRECT_MIN``) is updated in the parameter's
    storage, reading its gradient where it lies (the rules only read ``g``). The dozen
    passes of a rule then run on memory in cache, and the scratch arrays stay there from
    span to span; parameters never move (Adam over the Transformer LM's 3 M parameters:
    26.6 ms over whole buffers, 15-20 ms in spans with every value copied, 11.6-12.1 ms
    with large parameters in place, 10.1-13.3 ms reading their gradients in place too;
    PyTorch 12-17 ms)."""

    def __init__(self, params: Sequence[Tensor], state: dict[Tensor, State],
                 state_names: Sequence[str]):
        self.params = list(params)
        self.device: Device = params[0].device
        self.xp = self.device.module()
        dtype = params[0].dtype
        self.offsets = np.cumsum([0] + [p.size for p in params]).tolist()
        total = self.offsets[-1]
        self.span_size = max(1, CACHE_CHUNK if self.xp is np else total)
        self.direct_min = DIRECT_MIN if self.xp is np else total + 1  # GPU: one span
        lanes = 2 if total > self.span_size else 1  # one per core (``parallel.over_rows``)
        self.value, self.grad, self.tmp, self.tmp2 = (
            self.xp.empty((lanes, min(self.span_size, total)), dtype=dtype) for _ in range(4))
        self.buffers = {name: self.xp.zeros(total, dtype=dtype) for name in state_names}
        self.all_spans = self.spans([True] * len(self.params))
        self.workspaces: dict[tuple[int, int, int], Workspace] = {}  # by (start, stop, lane)
        self.state_views = [{name: Tensor.make_const(self._view(flat, i))
                             for name, flat in self.buffers.items()} for i in range(len(params))]
        for i, (p, views) in enumerate(zip(self.params, self.state_views)):
            for name, view in views.items():  # the state so far moves into the buffers
                if name in state.get(p, {}):
                    self.raw(self.buffers[name], i)[...] = _raw(state[p][name])
            state[p] = dict(views)  # its own dict: a rule replacing an entry is noticed

    def _view(self, flat: Array, i: int) -> NDArray:
        """Parameter i's slot of ``flat``, as an NDArray of its shape sharing memory."""
        return NDArray.make(self.params[i].shape, device=self.device, handle=flat,
                            offset=self.offsets[i])

    def raw(self, flat: Array, i: int) -> Array:
        """Parameter i's slot of ``flat`` as a raw array of its shape (a view)."""
        return flat[self.offsets[i]:self.offsets[i + 1]].reshape(self.params[i].shape)

    def spans(self, present: Sequence[bool]) -> list[Span]:
        """The parameters marked ``present``, cut into spans of the flat vector of at most
        ``span_size`` elements. Small parameters share spans, which end early where an
        absent parameter leaves a gap; a large one (``direct_min`` elements or more) has
        spans of its own, which ``_update_span`` updates in the parameter's storage."""
        spans: list[Span] = []
        pieces: list[Piece] = []
        start = filled = 0
        for i, here in enumerate(present):
            first, end = self.offsets[i], self.offsets[i + 1]
            if not here or first == end:
                continue
            alone = end - first >= self.direct_min
            if pieces and (alone or start + filled != first):  # close the span so far
                spans.append((slice(start, start + filled), pieces))
                filled, pieces = 0, []
            position = first
            while position < end:
                if not pieces:
                    start = position
                take = min(self.span_size - filled, end - position)
                pieces.append((i, position - first, position - first + take))
                filled, position = filled + take, position + take
                if filled == self.span_size or (alone and position == end):
                    spans.append((slice(start, start + filled), pieces))
                    filled, pieces = 0, []
        if pieces:
            spans.append((slice(start, start + filled), pieces))
        return spans

    def workspace(self, span: slice, pieces: list[Piece], lane: int) -> Workspace:
        """The views a span's update works on, made at its first step (they are views of
        the flat and scratch buffers, which never change)."""
        key = (span.start, span.stop, lane)
        if key not in self.workspaces:
            size = span.stop - span.start
            scratch = tuple(a[lane, :size] for a in (self.value, self.grad, self.tmp, self.tmp2))
            parts, at = [], 0
            for i, lo, hi in pieces:
                part = scratch[0][at:at + hi - lo]
                parts.append(part.reshape(self.params[i].shape) if hi - lo ==
                             self.params[i].size else part)
                at += hi - lo
            self.workspaces[key] = (scratch, {k: v[span] for k, v in self.buffers.items()},
                                    parts)
        return self.workspaces[key]

    def load(self, pieces: list[Piece], arrays: list[Array], out: Array) -> None:
        """The pieces' elements of ``arrays`` (one per parameter), one after another into
        ``out`` (a whole parameter is flattened by ``concatenate`` itself)."""
        self.xp.concatenate([arrays[i] if hi - lo == arrays[i].size else
                             arrays[i].reshape(-1)[lo:hi] for i, lo, hi in pieces],
                            axis=None, out=out)

    def store(self, pieces: list[Piece], parts: list[Array], arrays: list[Array]) -> None:
        """The value scratch's ``parts`` (``workspace``) back into the pieces of ``arrays``,
        each parameter's own storage."""
        for (i, lo, hi), part in zip(pieces, parts):
            target = arrays[i]
            if hi - lo == target.size:  # the whole parameter, whatever its layout
                target[...] = part
            elif target.flags.c_contiguous:
                target.reshape(-1)[lo:hi] = part
            else:  # a strided parameter cut between spans (numpy: GPU spans are whole)
                target.flat[lo:hi] = part


def _raw(t: Tensor) -> Array:
    """The device array behind a Tensor (for the flat fast path only)."""
    return t.cached_data._array


class Optimizer:
    """Holds parameter groups; ``step()`` updates them, ``zero_grad()`` clears grads.

    Subclasses give ``defaults`` (their hyper-parameters), name their per-parameter
    buffers in ``state_names`` and write the rule twice: ``rule(p, grad, state, group)``
    on one parameter in Tensor arithmetic, and ``update(xp, w, g, tmp, tmp2, group,
    **state)`` in place on 1-D arrays (a span of a group's flat vector: ``_Flat``): it
    updates ``w`` and the state, only reads ``g`` (where it can, the gradient's own
    storage) and may overwrite the scratch arrays ``tmp`` and ``tmp2``."""

    state_names: tuple[str, ...] = ()

    def __init__(self, params: Iterable[Parameter] | Iterable[Group],
                 defaults: Group | None = None):
        defaults = {"lr": 0.01} if defaults is None else defaults  # the course's Optimizer(params)
        _check_positive(lr=defaults["lr"])
        self.defaults = defaults
        self.param_groups: list[Group] = []
        self.state: dict[Tensor, State] = {}
        self.t = 0
        self._flats: list[tuple[Group, _Flat]] | None = None
        items: list[Any] = list(params)
        if not items:
            raise ValueError("optimizer got an empty parameter list")
        groups: list[Group] = items if isinstance(items[0], dict) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: Group) -> None:
        """Add a dict with ``"params"`` and any hyper-parameters (defaults fill the rest)."""
        params = list(group["params"]) if not isinstance(group["params"], Tensor) \
            else [group["params"]]
        if not params or not all(isinstance(p, Tensor) for p in params):
            raise TypeError(f"optimizer params must be a non-empty list of Tensors, got "
                            f"{sorted({type(p).__name__ for p in params}) or 'none'}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("optimizer got the same parameter more than once")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"unknown hyper-parameters {sorted(unknown)}; "
                             f"{type(self).__name__} takes {sorted(self.defaults)}")
        full = {**self.defaults, **group, "params": params}
        self.check_group(full)
        self.param_groups.append(full)
        self._flats = None

    def check_group(self, group: Group) -> None:
        """Validate a group's hyper-parameters (a clear error for bad values)."""
        _check_positive(lr=group["lr"])

    @property
    def params(self) -> list[Tensor]:
        """Every parameter, group after group."""
        return [p for group in self.param_groups for p in group["params"]]

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    def __getattr__(self, name: str) -> Any:
        """A hyper-parameter of the first group (``opt.momentum``, ``opt.beta1``), as the
        course's optimisers keep them as attributes."""
        groups = vars(self).get("param_groups")
        if groups and name in vars(self).get("defaults", {}):
            return groups[0][name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        """Setting a hyper-parameter sets it in every group (schedulers cycle momentum so)."""
        if name in vars(self).get("defaults", {}) and "param_groups" in vars(self):
            for group in self.param_groups:
                group[name] = value
            return
        super().__setattr__(name, value)

    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        self.t += 1
        with no_grad():
            if is_reference_mode():
                self._reference_step()
            else:
                self._fast_step()

    def _reference_step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.rule(p, p.grad.detach(), self._state_of(p), group)

    def _state_of(self, p: Tensor) -> State:
        if p not in self.state:
            self.state[p] = {name: Tensor.make_const(self.initial_state(p, name))
                             for name in self.state_names}
        return self.state[p]

    def initial_state(self, p: Tensor, name: str) -> NDArray:
        """A new buffer for ``p`` (zeros; Adagrad starts its sum elsewhere)."""
        return p.device.full(p.shape, 0, p.dtype)

    def _fast_step(self) -> None:
        for group, flat in self._groups():
            self._restore_views(flat)
            grads = [p.grad for p in flat.params]
            present = [g is not None for g in grads]
            spans = flat.all_spans if all(present) else flat.spans(present)
            values = [_raw(p) for p in flat.params]  # each parameter's own storage
            grad_arrays = [None if g is None else _raw(g) for g in grads]

            def update_spans(lo: int, hi: int) -> None:  # called at once, below
                lane = 0 if lo == 0 else 1  # the two halves' own scratch arrays
                for span, pieces in spans[lo:hi]:
                    self._update_span(flat, group, span, pieces, values, grad_arrays, lane)

            # spans are independent: a large group's two halves run on two cores
            parallel.over_rows(update_spans, len(spans), flat.offsets[-1], flat.xp)

    def _update_span(self, flat: _Flat, group: Group, span: slice, pieces: list[Piece],
                     values: list[Array], grads: list[Array], lane: int) -> None:
        """The fast rule over one span: on a copy of its values and gradients in the
        scratch arrays, or, for a span of one large contiguous parameter, on the
        parameter's storage itself, reading the gradient's storage where it is contiguous."""
        (w, g, tmp, tmp2), state, parts = flat.workspace(span, pieces, lane)
        i, lo, hi = pieces[0]
        direct = len(pieces) == 1 and flat.params[i].size >= flat.direct_min and \
            values[i].flags.c_contiguous
        if direct:
            w = values[i].reshape(-1)[lo:hi]  # a view: the update lands in place
        else:
            flat.load(pieces, values, w)
        if direct and grads[i].flags.c_contiguous and grads[i].dtype == w.dtype:
            g = grads[i].reshape(-1)[lo:hi]  # a view, which the rule only reads
        else:
            flat.load(pieces, grads, g)
        self.update(flat.xp, w, g, tmp, tmp2, group, **state)
        if not direct:
            flat.store(pieces, parts, values)

    def _restore_views(self, flat: _Flat) -> None:
        """State replaced since the last fast step (by the reference rule, which assigns
        new buffers, ``load_state_dict`` or the user) is copied into the flat buffers."""
        for i, (p, views) in enumerate(zip(flat.params, flat.state_views)):
            current = self.state[p]
            for name, view in views.items():
                if current[name] is not view:
                    flat.raw(flat.buffers[name], i)[...] = _raw(current[name])
                    current[name] = view

    def _groups(self) -> list[tuple[Group, _Flat]]:
        if self._flats is None:
            self._flats = []
            for group in self.param_groups:
                by_kind: dict[tuple[str, str], list[Tensor]] = {}
                for p in group["params"]:
                    by_kind.setdefault((p.device.name, str(p.dtype)), []).append(p)
                for params in by_kind.values():
                    for p in params:
                        self._state_of(p)
                    self._flats.append((group, _Flat(params, self.state, self.state_names)))
        return self._flats

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        raise NotImplementedError

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        raise NotImplementedError

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every gradient: None (the default, as ``reset_grad``) or zeros."""
        for p in self.params:
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad = Tensor.make_const(p.device.full(p.shape, 0, p.dtype))

    def reset_grad(self) -> None:
        """The contract's name: every gradient back to None."""
        self.zero_grad(set_to_none=True)

    def clip_grad_norm(self, max_norm: float = 0.25) -> float:
        """Scale all gradients so that their global L2 norm is at most ``max_norm``;
        returns the norm before clipping."""
        return clip_grad_norm_(self.params, max_norm)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Each group's hyper-parameters (with the indices of its parameters), the step
        counter and each parameter's buffers (numpy copies, in parameter order)."""
        groups, start = [], 0
        for group in self.param_groups:
            hyper = {k: v for k, v in group.items() if k != "params"}
            groups.append({**hyper, "params": list(range(start, start + len(group["params"])))})
            start += len(group["params"])
        return {"param_groups": groups, "step": self.t,
                "state": [{k: v.numpy().copy() for k, v in self._state_of(p).items()}
                          for p in self.params]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` returned, for the same parameters in the same order;
        a clear error (nothing changed) when counts, names or shapes differ."""
        entries, params = state.get("state", []), self.params
        if len(entries) != len(params):
            raise ValueError(f"optimizer state holds {len(entries)} parameters, this "
                             f"optimizer has {len(params)}")
        for n, (p, entry) in enumerate(zip(params, entries)):
            if set(entry) != set(self.state_names):
                raise ValueError(f"optimizer state of parameter {n} has buffers "
                                 f"{sorted(entry)}, expected {sorted(self.state_names)}")
            for name, value in entry.items():
                if tuple(np.shape(value)) != p.shape:
                    raise ValueError(f"optimizer state {name!r} of parameter {n} has shape "
                                     f"{tuple(np.shape(value))}, the parameter {p.shape}")
        groups = state.get("param_groups") or \
            [state.get("hyper", {})] * len(self.param_groups)  # older files: one "hyper"
        if len(groups) not in (0, len(self.param_groups)):
            raise ValueError(f"optimizer state holds {len(groups)} parameter groups, this "
                             f"optimizer has {len(self.param_groups)}")
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.t = int(state.get("step", 0))
        for p, entry in zip(params, entries):
            self.state[p] = {name: Tensor(np.asarray(value), device=p.device, dtype=p.dtype,
                                          requires_grad=False) for name, value in entry.items()}


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


def _betas(betas: tuple[float, float] | None, beta1: float, beta2: float) -> tuple[float, float]:
    """PyTorch's ``betas=(b1, b2)`` or the contract's ``beta1``/``beta2``."""
    if betas is None:
        return beta1, beta2
    if len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    return float(betas[0]), float(betas[1])


def _with_weight_decay(xp: Any, w: Array, g: Array, out: Array, weight_decay: float) -> Array:
    """g + wd w (the L2 term) in ``out``, or g itself when wd is 0 (g is only read)."""
    if not weight_decay:
        return g
    xp.multiply(w, weight_decay, out=out)
    out += g
    return out


def _assign(p: Tensor, value: Tensor) -> None:
    """p's values replaced by ``value`` (the readable rules' last line)."""
    p.data = value


class SGD(Optimizer):
    """u = momentum u + (1 - momentum)(g + wd w);  w -= lr u  (u starts at 0).

    nesterov: w -= lr ((1 - momentum)(g + wd w) + momentum u). needle's dampening makes
    SGD(lr, m) equal PyTorch's SGD(lr * (1 - m), m) (also with nesterov)."""

    state_names = ("u",)

    def __init__(self, params: Iterable[Parameter] | Iterable[Group], lr: float = 0.01,
                 momentum: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, {"lr": lr, "momentum": momentum,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def check_group(self, group: Group) -> None:
        _check_positive(lr=group["lr"], weight_decay=group["weight_decay"])
        _check_unit(momentum=group["momentum"])
        if group["nesterov"] and not group["momentum"]:
            raise ValueError("nesterov=True needs a momentum > 0")

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        m = group["momentum"]
        g = grad + p * group["weight_decay"]
        if not m:
            return _assign(p, p - g * group["lr"])
        state["u"] = u = state["u"] * m + g * (1 - m)
        step = g * (1 - m) + u * m if group["nesterov"] else u
        _assign(p, p - step * group["lr"])

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        u, m, lr = state["u"], group["momentum"], group["lr"]
        g = _with_weight_decay(xp, w, g, tmp2, group["weight_decay"])
        if not m:
            xp.multiply(g, lr, out=tmp)
            w -= tmp
            return
        xp.multiply(g, 1 - m, out=tmp)
        u *= m
        u += tmp
        if group["nesterov"]:  # the step (1 - m) g + m u; g is no longer read
            xp.multiply(u, m, out=tmp2)
            tmp += tmp2
            tmp *= lr
        else:
            xp.multiply(u, lr, out=tmp)
        w -= tmp


class Adam(Optimizer):
    """Adam with the L2 term added to the gradient and one step counter t per ``step()``:
    g += wd w;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g²;
    w -= lr m̂ / (sqrt(v̂) + eps), m̂ = m / (1 - b1^t), v̂ = v / (1 - b2^t).
    ``betas=(b1, b2)`` (PyTorch's spelling) or ``beta1``/``beta2`` (the contract's)."""

    state_names = ("m", "v")

    def __init__(self, params: Iterable[Parameter] | Iterable[Group], lr: float = 0.01,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.0, betas: tuple[float, float] | None = None):
        beta1, beta2 = _betas(betas, beta1, beta2)
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps,
                                  "weight_decay": weight_decay})

    def add_param_group(self, group: Group) -> None:
        if "betas" in group:
            group = dict(group)
            group["beta1"], group["beta2"] = _betas(group.pop("betas"), 0, 0)
        super().add_param_group(group)

    def check_group(self, group: Group) -> None:
        _check_positive(lr=group["lr"], eps=group["eps"], weight_decay=group["weight_decay"])
        _check_unit(beta1=group["beta1"], beta2=group["beta2"])

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        self._adam_rule(p, grad + p * group["weight_decay"], state, group)

    def _adam_rule(self, p: Tensor, g: Tensor, state: State, group: Group) -> None:
        b1, b2, t = group["beta1"], group["beta2"], self.t
        state["m"] = m = state["m"] * b1 + g * (1 - b1)
        state["v"] = v = state["v"] * b2 + g * g * (1 - b2)
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        _assign(p, p - m_hat * group["lr"] / (v_hat ** 0.5 + group["eps"]))

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        g = _with_weight_decay(xp, w, g, tmp2, group["weight_decay"])
        self._adam(xp, w, g, tmp, group, state["m"], state["v"])

    def _adam(self, xp: Any, w: Array, g: Array, tmp: Array, group: Group, m: Array,
              v: Array) -> None:
        """The moment updates and the step, in place (``g`` is only read)."""
        b1, b2 = group["beta1"], group["beta2"]
        m *= b1
        xp.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # lr m̂ / (sqrt(v̂) + eps) = m / (sqrt(v) c / a + eps / a), a = lr / (1 - b1^t) and
        # c = 1 / sqrt(1 - b2^t): one pass fewer than scaling the quotient by a
        a, c = group["lr"] / (1 - b1 ** self.t), 1 / math.sqrt(1 - b2 ** self.t)
        if not a:  # lr 0 (a cosine schedule's last epoch): the moments move, w does not
            return
        xp.sqrt(v, out=tmp)
        tmp *= c / a
        tmp += group["eps"] / a
        xp.divide(m, tmp, out=tmp)
        w -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's AdamW): w -= lr wd w, then the Adam step
    on the plain gradient."""

    def __init__(self, params: Iterable[Parameter] | Iterable[Group], lr: float = 0.001,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 weight_decay: float = 0.01, betas: tuple[float, float] | None = None):
        super().__init__(params, lr, beta1, beta2, eps, weight_decay, betas)

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        _assign(p, p * (1 - group["lr"] * group["weight_decay"]))
        self._adam_rule(p, grad, state, group)

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        w *= 1 - group["lr"] * group["weight_decay"]
        self._adam(xp, w, g, tmp, group, state["m"], state["v"])


class RMSprop(Optimizer):
    """PyTorch's RMSprop: g += wd w;  v = alpha v + (1 - alpha) g²;
    d = g / (sqrt(v) + eps) (centered: sqrt(v - gbar²) with gbar the average gradient);
    with momentum: b = momentum b + d, w -= lr b; else w -= lr d."""

    state_names = ("v", "b", "gbar")

    def __init__(self, params: Iterable[Parameter] | Iterable[Group], lr: float = 0.01,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False):
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps,
                                  "weight_decay": weight_decay, "momentum": momentum,
                                  "centered": centered})

    def check_group(self, group: Group) -> None:
        _check_positive(lr=group["lr"], eps=group["eps"], weight_decay=group["weight_decay"])
        _check_unit(alpha=group["alpha"], momentum=group["momentum"])

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        alpha = group["alpha"]
        g = grad + p * group["weight_decay"]
        state["v"] = v = state["v"] * alpha + g * g * (1 - alpha)
        if group["centered"]:
            state["gbar"] = gbar = state["gbar"] * alpha + g * (1 - alpha)
            v = v - gbar * gbar
        d = g / (v ** 0.5 + group["eps"])
        if group["momentum"]:
            state["b"] = d = state["b"] * group["momentum"] + d
        _assign(p, p - d * group["lr"])

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        v, b, gbar, alpha = state["v"], state["b"], state["gbar"], group["alpha"]
        g = _with_weight_decay(xp, w, g, tmp2, group["weight_decay"])
        v *= alpha
        xp.multiply(g, g, out=tmp)
        tmp *= 1 - alpha
        v += tmp
        if group["centered"]:
            gbar *= alpha
            xp.multiply(g, 1 - alpha, out=tmp)
            gbar += tmp
            xp.multiply(gbar, gbar, out=tmp)
            xp.subtract(v, tmp, out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp += group["eps"]
        xp.divide(g, tmp, out=tmp)
        if group["momentum"]:
            b *= group["momentum"]
            b += tmp
            xp.multiply(b, group["lr"], out=tmp)
        else:
            tmp *= group["lr"]
        w -= tmp


class Adagrad(Optimizer):
    """PyTorch's Adagrad: g += wd w;  s += g²;  w -= lr_t g / (sqrt(s) + eps) with
    lr_t = lr / (1 + (t - 1) lr_decay); s starts at ``initial_accumulator_value``."""

    state_names = ("s",)

    def __init__(self, params: Iterable[Parameter] | Iterable[Group], lr: float = 0.01,
                 lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10):
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps,
                                  "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value})

    def check_group(self, group: Group) -> None:
        _check_positive(lr=group["lr"], lr_decay=group["lr_decay"],
                        weight_decay=group["weight_decay"], eps=group["eps"],
                        initial_accumulator_value=group["initial_accumulator_value"])

    def initial_state(self, p: Tensor, name: str) -> NDArray:
        group = next(g for g in self.param_groups if any(q is p for q in g["params"]))
        return p.device.full(p.shape, group["initial_accumulator_value"], p.dtype)

    def _lr(self, group: Group) -> float:
        return group["lr"] / (1 + (self.t - 1) * group["lr_decay"])

    def rule(self, p: Tensor, grad: Tensor, state: State, group: Group) -> None:
        g = grad + p * group["weight_decay"]
        state["s"] = s = state["s"] + g * g
        _assign(p, p - g * self._lr(group) / (s ** 0.5 + group["eps"]))

    def update(self, xp: Any, w: Array, g: Array, tmp: Array, tmp2: Array, group: Group,
               **state: Array) -> None:
        s = state["s"]
        g = _with_weight_decay(xp, w, g, tmp2, group["weight_decay"])
        xp.multiply(g, g, out=tmp)
        s += tmp
        xp.sqrt(s, out=tmp)
        tmp += group["eps"]
        xp.divide(g, tmp, out=tmp)
        tmp *= self._lr(group)
        w -= tmp


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> float:
    """``nn.utils.clip_grad_norm_`` under the contract's name; returns the norm."""
    return clip_grad_norm_(params, max_norm)


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

    def get_last_lr(self) -> list[float]:
        """The current learning rate of each parameter group, as a list (PyTorch's form)."""
        return current_lrs(self.optimizer)

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


# PyTorch's other common schedulers (issue 10). They read and set learning rates through
# current_lrs / set_lrs, which know both a flat ``optimizer.lr`` and ``param_groups``.
def current_lrs(optimizer: Optimizer) -> list[float]:
    """Each parameter group's lr (one entry for an optimiser without param_groups)."""
    groups = getattr(optimizer, "param_groups", None)
    if isinstance(groups, list) and groups and isinstance(groups[0], dict):
        return [float(group["lr"]) for group in groups]
    return [float(optimizer.lr)]


def set_lrs(optimizer: Optimizer, lrs: Sequence[float]) -> None:
    groups = getattr(optimizer, "param_groups", None)
    if isinstance(groups, list) and groups and isinstance(groups[0], dict):
        for group, lr in zip(groups, lrs):
            group["lr"] = lr
    else:
        optimizer.lr = lrs[0]


class ExponentialLR(LRScheduler):
    """lr = base_lr gamma^epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float):
        _check_positive(gamma=gamma)
        self.gamma = gamma
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** epoch


class MultiStepLR(LRScheduler):
    """lr = base_lr gamma^(number of milestones <= epoch)."""

    def __init__(self, optimizer: Optimizer, milestones: Sequence[int], gamma: float = 0.1):
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {list(milestones)}")
        self.milestones, self.gamma = list(milestones), gamma
        super().__init__(optimizer)

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** bisect.bisect_right(self.milestones, epoch)


class ReduceLROnPlateau:
    """Multiply every group's lr by ``factor`` (not below ``min_lr``) once the metric passed
    to ``step(metric)`` has not improved for more than ``patience`` steps, then wait
    ``cooldown`` steps. Improvement means beating the best by ``threshold`` (relative,
    ``threshold_mode="rel"``, or absolute), downwards in ``mode="min"``, upwards in "max"."""

    def __init__(self, optimizer: Optimizer, mode: str = "min", factor: float = 0.1,
                 patience: int = 10, threshold: float = 1e-4, threshold_mode: str = "rel",
                 cooldown: int = 0, min_lr: float = 0.0, eps: float = 1e-8):
        if mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"mode must be 'min' or 'max' and threshold_mode 'rel' or 'abs', "
                             f"got {mode!r} and {threshold_mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.min_lr, self.eps = cooldown, min_lr, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def is_better(self, value: float) -> bool:
        if self.mode == "min":
            bound = self.best * (1 - self.threshold) if self.threshold_mode == "rel" \
                else self.best - self.threshold
            return value < bound
        bound = self.best * (1 + self.threshold) if self.threshold_mode == "rel" \
            else self.best + self.threshold
        return value > bound

    def step(self, metric: float) -> None:
        value = float(metric)
        self.last_epoch += 1
        if self.is_better(value):
            self.best, self.num_bad_epochs = value, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self._reduce()
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def _reduce(self) -> None:
        lrs = current_lrs(self.optimizer)
        reduced = [max(lr * self.factor, self.min_lr) for lr in lrs]
        set_lrs(self.optimizer, [new if old - new > self.eps else old
                                 for old, new in zip(lrs, reduced)])

    def get_last_lr(self) -> list[float]:
        return current_lrs(self.optimizer)

    def state_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("best", "num_bad_epochs", "cooldown_counter",
                                              "last_epoch")}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
