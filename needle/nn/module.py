"""Module and Parameter: the building blocks of models.

A Module finds its parameters by walking its attributes (Modules, Parameters, and lists,
tuples and dicts of them), so layers need no registration. Every Tensor attribute — a
Parameter or a buffer such as BatchNorm's ``running_mean`` — is part of its state dict.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np

from ..autograd import Tensor
from . import hooks


class Parameter(Tensor):
    """A Tensor that a Module trains (``requires_grad`` defaults to True)."""

    __slots__ = ()


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(dotted name, value) for every Tensor or Module inside ``value``'s containers."""
    if isinstance(value, (Tensor, Module)):
        yield prefix, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{i}")


class Module:
    """Base class of layers and models: ``__call__`` runs ``forward``."""

    training: bool
    _hooks: hooks.ModuleHooks | None = None  # created by the first register_*_hook

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self._hooks:
            return self.forward(*args, **kwargs)
        return self._hooks.call(self, args, kwargs)

    # ------------------------------------------------------------------ hooks
    def register_forward_pre_hook(self, fn: Callable[..., Any]) -> hooks.RemovableHandle:
        """``fn(module, args)`` before each forward; a non-None result replaces ``args``."""
        return hooks.register_forward_pre_hook(self, fn)

    def register_forward_hook(self, fn: Callable[..., Any]) -> hooks.RemovableHandle:
        """``fn(module, args, output)`` after each forward; a non-None result replaces
        ``output``."""
        return hooks.register_forward_hook(self, fn)

    def register_backward_hook(self, fn: Callable[..., Any]) -> hooks.RemovableHandle:
        """``fn(module, grad_output)`` when backward() reaches the module's output
        (``grad_output``: a tuple, one adjoint per Tensor output); a non-None result
        replaces the adjoint."""
        return hooks.register_backward_hook(self, fn)

    # ------------------------------------------------------------------ traversal
    def _members(self) -> Iterator[tuple[str, Any]]:
        for name, value in vars(self).items():
            yield from _walk(value, name)

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """The Modules directly inside this one (through containers), with their names."""
        for name, value in self._members():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> list[Module]:
        return [child for _, child in self.named_children()]

    def modules(self) -> list[Module]:
        """This module and every module below it, depth first."""
        found = [self]
        for child in self.children():
            found.extend(child.modules())
        return found

    def named_tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """Every Tensor attribute below this module (parameters and buffers), by path."""
        for name, value in self._members():
            if isinstance(value, Module):
                yield from value.named_tensors(f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}", value

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """(path, Parameter) in definition order; a shared Parameter is listed once."""
        seen: set[int] = set()
        found = []
        for name, value in self.named_tensors():
            if isinstance(value, Parameter) and id(value) not in seen:
                seen.add(id(value))
                found.append((name, value))
        return found

    def parameters(self) -> list[Parameter]:
        return [param for _, param in self.named_parameters()]

    # ------------------------------------------------------------------ modes
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, as numpy arrays keyed by path."""
        return {name: value.numpy().copy() for name, value in self.named_tensors()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Set parameters and buffers from ``state``; with ``strict``, a clear error lists
        missing, unexpected and mis-shaped entries and nothing is changed."""
        own = dict(self.named_tensors())
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        misshaped = [f"{k}: expected {own[k].shape}, got {tuple(np.shape(state[k]))}"
                     for k in own if k in state and own[k].shape != tuple(np.shape(state[k]))]
        problems = [f"{label}: {items}" for label, items in
                    (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped))
                    if items and (strict or label == "wrong shape")]
        if problems:
            raise RuntimeError("load_state_dict: " + "; ".join(problems))
        for name, tensor in own.items():
            if name in state:
                value = state[name].numpy() if isinstance(state[name], Tensor) else state[name]
                tensor.data = Tensor(np.asarray(value), device=tensor.device, dtype=tensor.dtype)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): {child!r}".replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"
