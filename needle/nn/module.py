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


def _names_device(device: Any) -> bool:
    return device is not None and (not isinstance(device, str) or
                                   device.split(":")[0] in ("cpu", "cuda", "cpu_numpy"))


class Module:
    """Base class of layers and models: ``__call__`` runs ``forward``."""

    training: bool
    _hooks: hooks.ModuleHooks | None = None  # created by the first register_*_hook

    def __init__(self) -> None:
        self.training = True

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        for a in args:
            if isinstance(a, np.ndarray):
                args = self._tensors_from_numpy(args)
                break
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

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """(dotted path, module) for this module ("") and every module below it, depth
        first, as PyTorch's ``named_modules``."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def submodules(self) -> list[Module]:
        """This module and every module below it, depth first (PyTorch's ``modules()``: in
        needle and the course, ``Sequential.modules`` is the tuple of its children)."""
        return [module for _, module in self.named_modules()]

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
        for module in self.submodules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and (persistent) buffer, as numpy arrays keyed by path."""
        return {name: value.numpy().copy() for name, value in self._state_tensors()}

    def _state_tensors(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``named_tensors`` without the buffers registered with ``persistent=False``."""
        skip = vars(self).get("_non_persistent", ())
        for name, value in self._members():
            if isinstance(value, Module):
                yield from value._state_tensors(f"{prefix}{name}.")
            elif name not in skip:
                yield f"{prefix}{name}", value

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Set parameters and buffers from ``state``; with ``strict``, a clear error lists
        missing, unexpected and mis-shaped entries and nothing is changed."""
        own = dict(self._state_tensors())
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

    # ------------------------------------------------------------------ PyTorch idioms
    def _tensors_from_numpy(self, args: tuple[Any, ...]) -> tuple[Any, ...]:
        """numpy arguments as constant Tensors on this module's device (a module called on
        a numpy array converts it, as a PyTorch user expects of ``torch.as_tensor``)."""
        params = self.parameters()
        device = params[0].device if params else None
        return tuple(Tensor(a, device=device, requires_grad=False) if isinstance(a, np.ndarray)
                     else a for a in args)

    def named_buffers(self) -> list[tuple[str, Tensor]]:
        """(path, buffer): every Tensor attribute that is not a Parameter (running stats)."""
        return [(name, t) for name, t in self.named_tensors() if not isinstance(t, Parameter)]

    def buffers(self) -> list[Tensor]:
        return [t for _, t in self.named_buffers()]

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep ``tensor`` as attribute ``name``: in ``state_dict`` (unless not
        ``persistent``) and moved by ``to()``, never in ``parameters()``."""
        if isinstance(tensor, Parameter):
            raise TypeError(f"register_buffer({name!r}): got a Parameter; buffers are plain "
                            f"Tensors (use an attribute for a Parameter)")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer({name!r}) needs a Tensor or None, got "
                            f"{type(tensor).__name__}")
        if tensor is not None:
            tensor.requires_grad = False
        if not persistent:
            vars(self).setdefault("_non_persistent", set()).add(name)
        setattr(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """``setattr(self, name, module)``, PyTorch's registration call (not needed here)."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}) needs a Module, got {type(module).__name__}")
        setattr(self, name, module)

    register_module = add_module

    def apply(self, fn: Any) -> Module:
        """``fn(module)`` for every submodule (children first) and then this one."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the parameters' gradients: None, or zeros with ``set_to_none=False``."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                param.grad = Tensor.make_const(param.grad.cached_data * 0)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (freeze with False)."""
        for param in self.parameters():
            param.requires_grad = requires_grad
        return self

    def to(self, device: Any = None, dtype: Any = None) -> Module:
        """Move every parameter and buffer to ``device`` (a Device, "cpu" or "cuda") and/or
        convert the floating ones to ``dtype``, in place; ``to(dtype)`` alone converts."""
        for _, tensor in self._unique_tensors():
            moved = tensor.to(device, dtype) if np.issubdtype(tensor.dtype, np.floating) \
                else tensor.to(device) if _names_device(device) else tensor
            tensor.cached_data = moved.cached_data
        return self

    def double(self) -> Module:
        return self.to("float64")

    def float(self) -> Module:
        return self.to("float32")

    def half(self) -> Module:
        return self.to("float16")

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self) -> Module:
        return self.to("cuda")

    def _unique_tensors(self) -> list[tuple[str, Tensor]]:
        seen: set[int] = set()
        found = []
        for name, tensor in self.named_tensors():
            if id(tensor) not in seen:
                seen.add(id(tensor))
                found.append((name, tensor))
        return found

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): {child!r}".replace("\n", "\n  ")
                 for name, child in self.named_children()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        return head + ")" if not lines else head + "\n  " + "\n  ".join(lines) + "\n)"
