"""Module hooks (PyTorch's signatures) and fast.ai's ``Hook``/``Hooks`` helpers.

- ``module.register_forward_pre_hook(fn)``: ``fn(module, args)`` runs before ``forward``;
  it may return replacement args (a tuple, or one value that becomes a 1-tuple).
- ``module.register_forward_hook(fn)``: ``fn(module, args, output)`` runs after ``forward``;
  it may return a replacement output.
- ``module.register_backward_hook(fn)``: ``fn(module, grad_output)`` runs when ``backward()``
  reaches the module's output; ``grad_output`` is a tuple with the adjoint of each Tensor
  output (None for the others); it may return a replacement adjoint for that output.

Each ``register_*`` returns a ``RemovableHandle``; ``handle.remove()`` unregisters the hook
(also on leaving ``with handle:``). Hooks of one kind run in registration order.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ..autograd import Tensor, TensorOp
from ..backend_ndarray import NDArray

_next_id = itertools.count()


class RemovableHandle:
    """Unregisters one hook: ``handle.remove()`` (idempotent) or leaving ``with handle:``."""

    def __init__(self, table: dict[int, Callable[..., Any]], fn: Callable[..., Any]):
        self.id = next(_next_id)
        self._table = table
        table[self.id] = fn

    def remove(self) -> None:
        self._table.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _check_callable(fn: Any, kind: str, signature: str) -> None:
    if not callable(fn):
        raise TypeError(f"register_{kind}_hook expects a callable {signature}, "
                        f"got {type(fn).__name__} {fn!r}")


class ModuleHooks:
    """The hooks of one module, by kind; ``call`` runs the module with them."""

    def __init__(self) -> None:
        self.forward_pre: dict[int, Callable[..., Any]] = {}
        self.forward: dict[int, Callable[..., Any]] = {}
        self.backward: dict[int, Callable[..., Any]] = {}

    def __bool__(self) -> bool:
        return bool(self.forward_pre or self.forward or self.backward)

    def call(self, module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        for fn in list(self.forward_pre.values()):
            result = fn(module, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = module.forward(*args, **kwargs)
        for fn in list(self.forward.values()):
            result = fn(module, args, output)
            if result is not None:
                output = result
        if self.backward:
            output = _watch_outputs(module, output, list(self.backward.values()))
        return output


# ---------------------------------------------------------------------------- backward hooks
class BackwardHook(TensorOp):
    """Identity y = x whose gradient first shows the adjoint to the module's backward hooks.

    ``position``/``count`` place this output in the module's flattened Tensor outputs."""

    def __init__(self, module: Any, hooks: list[Callable[..., Any]], position: int, count: int):
        self.module = module
        self.hooks = hooks
        self.position = position
        self.count = count

    def compute(self, a: NDArray) -> NDArray:
        return a

    def gradient(self, out_grad: Tensor, node: Tensor) -> Tensor:
        for fn in self.hooks:
            grad_output: list[Tensor | None] = [None] * self.count
            grad_output[self.position] = out_grad
            result = fn(self.module, tuple(grad_output))
            if result is not None:
                out_grad = result[0] if isinstance(result, (tuple, list)) else result
        return out_grad


def _watch_outputs(module: Any, output: Any, hooks: list[Callable[..., Any]]) -> Any:
    """``output`` with each Tensor that needs a gradient passed through a BackwardHook."""
    tensors = [t for t in _flatten(output) if isinstance(t, Tensor)]
    index = {id(t): i for i, t in enumerate(tensors)}

    def watch(value: Any) -> Any:
        if isinstance(value, Tensor):
            if not value.requires_grad:
                return value
            return BackwardHook(module, hooks, index[id(value)], len(tensors))(value)
        if isinstance(value, (tuple, list)):
            return type(value)(watch(v) for v in value)
        return value

    return watch(output)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (tuple, list)):
        return [leaf for v in value for leaf in _flatten(v)]
    return [value]


# ---------------------------------------------------------------------------- registration
def hooks_of(module: Any) -> ModuleHooks:
    """The module's hook table, created on first use (kept in ``module._hooks``)."""
    if module.__dict__.get("_hooks") is None:
        module._hooks = ModuleHooks()
    return module._hooks


def register_forward_pre_hook(module: Any, fn: Callable[..., Any]) -> RemovableHandle:
    _check_callable(fn, "forward_pre", "fn(module, args)")
    return RemovableHandle(hooks_of(module).forward_pre, fn)


def register_forward_hook(module: Any, fn: Callable[..., Any]) -> RemovableHandle:
    _check_callable(fn, "forward", "fn(module, args, output)")
    return RemovableHandle(hooks_of(module).forward, fn)


def register_backward_hook(module: Any, fn: Callable[..., Any]) -> RemovableHandle:
    _check_callable(fn, "backward", "fn(module, grad_output)")
    return RemovableHandle(hooks_of(module).backward, fn)


# ---------------------------------------------------------------------------- fast.ai helpers
class Hook:
    """A forward hook that hands itself to ``fn(hook, module, args, output)`` (fast.ai's
    ``Hook``), so ``fn`` can keep what it measures on the hook, e.g. ``hook.stats``."""

    def __init__(self, module: Any, fn: Callable[..., Any]):
        if not callable(fn):
            raise TypeError(f"Hook expects a callable fn(hook, module, args, output), "
                            f"got {type(fn).__name__} {fn!r}")
        self.module = module
        self.handle = module.register_forward_hook(
            lambda mod, args, output: fn(self, mod, args, output))

    def remove(self) -> None:
        self.handle.remove()

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


class Hooks:
    """One ``Hook(module, fn)`` per module; a context manager that removes them on exit.

    ``modules`` is an iterable of Modules, or a Module (then its children)::

        with Hooks(model, append_stats) as hooks:
            train(model)
        means, stds = hooks[0].stats
    """

    def __init__(self, modules: Any, fn: Callable[..., Any]):
        if hasattr(modules, "children") and callable(modules.children):
            modules = modules.children()
        self.hooks = [Hook(m, fn) for m in _as_modules(modules)]

    def __getitem__(self, index: int) -> Hook:
        return self.hooks[index]

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self) -> Iterator[Hook]:
        return iter(self.hooks)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _as_modules(modules: Iterable[Any]) -> list[Any]:
    found = list(modules)
    wrong = [type(m).__name__ for m in found if not hasattr(m, "register_forward_hook")]
    if wrong:
        raise TypeError(f"Hooks expects Modules, got {', '.join(wrong)}")
    return found


# ---------------------------------------------------------------------------- check_finite
class HandleGroup:
    """Several hook handles removed together (``remove()`` or leaving ``with``)."""

    def __init__(self, handles: list[RemovableHandle]):
        self.handles = handles

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def __enter__(self) -> HandleGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _named_modules(module: Any, prefix: str) -> list[tuple[str, Any]]:
    found = [(prefix, module)]
    for name, child in module.named_children():
        found.extend(_named_modules(child, f"{prefix}.{name}" if prefix else name))
    return found


def _non_finite(value: Any) -> tuple[int, int, tuple[int, ...]] | None:
    """(NaN count, Inf count, shape) of the first Tensor in ``value`` that is not finite."""
    for tensor in _flatten(value):
        if isinstance(tensor, Tensor) and np.issubdtype(tensor.dtype, np.floating):
            host = tensor.numpy()
            if not np.isfinite(host).all():
                return int(np.isnan(host).sum()), int(np.isinf(host).sum()), tensor.shape
    return None


def check_finite(model: Any) -> HandleGroup:
    """Forward hooks on ``model`` and every module below it that raise FloatingPointError
    at the first module whose output holds NaN or Inf, naming it. Children finish before
    their parents, so the module named is the innermost one that went wrong::

        with nn.check_finite(model):
            loss = loss_fn(model(x), y)
    """
    def check(name: str) -> Callable[..., None]:
        def hook(module: Any, args: tuple[Any, ...], output: Any) -> None:
            bad = _non_finite(output)
            if bad is not None:
                nans, infs, shape = bad
                inputs = "finite" if _non_finite(args) is None else "not finite either"
                raise FloatingPointError(
                    f"check_finite: the output of {name or 'the model'} "
                    f"({type(module).__name__}) holds {nans} NaN and {infs} Inf value(s) "
                    f"(shape {shape}); its inputs were {inputs}")
        return hook

    return HandleGroup([module.register_forward_hook(check(name))
                        for name, module in _named_modules(model, "")])
