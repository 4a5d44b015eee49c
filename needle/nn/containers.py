"""ModuleList and ModuleDict: PyTorch's containers of submodules.

needle finds submodules in plain lists and dicts too; these containers add PyTorch's
methods and its parameter names (``layers.0.weight``, ``heads.query.weight``).
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping

from .module import Module, _walk


class ModuleList(Module):
    """A list of Modules: index, slice, iterate, ``append``, ``extend``, ``insert``."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        self._items: list[Module] = []
        self.extend(modules or [])

    def _members(self) -> Iterator[tuple[str, Any]]:
        for i, module in enumerate(self._items):
            yield from _walk(module, str(i))

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return ModuleList(self._items[index])
        return self._items[index]

    def __setitem__(self, index: int, module: Module) -> None:
        self._items[index] = _checked(module)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._items)

    def append(self, module: Module) -> ModuleList:
        self._items.append(_checked(module))
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        self._items.insert(index, _checked(module))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleList holds modules but has no forward(); "
                                  "call its modules in your own forward()")


class ModuleDict(Module):
    """A dict of Modules by name, in insertion order, with the dict methods."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None
                 = None):
        super().__init__()
        self._items: dict[str, Module] = {}
        self.update(modules or {})

    def _members(self) -> Iterator[tuple[str, Any]]:
        for name, module in self._items.items():
            yield from _walk(module, name)

    def __getitem__(self, key: str) -> Module:
        return self._items[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self._items[key] = _checked(module)

    def __delitem__(self, key: str) -> None:
        del self._items[key]

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def keys(self) -> Any:
        return self._items.keys()

    def values(self) -> Any:
        return self._items.values()

    def items(self) -> Any:
        return self._items.items()

    def pop(self, key: str) -> Module:
        return self._items.pop(key)

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        pairs = modules.items() if isinstance(modules, Mapping) else modules
        for key, module in pairs:
            self[key] = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("ModuleDict holds modules but has no forward(); "
                                  "call its modules in your own forward()")


def _checked(module: Any) -> Module:
    if not isinstance(module, Module):
        raise TypeError(f"a module container holds Modules, got {type(module).__name__}")
    return module
