"""One generic registry for spaces, searchers, evaluators, backends, datasets and exporters.

Things are registered by name with a decorator and built from config by name. Registration
happens when the module that defines the thing is imported. A registry names the package that
holds its built-ins (``nas.spaces`` for spaces); the first lookup of a name it does not yet know
imports every module of that package once, so adding a space is one new module, no core edit. It then
loads the installed plugins (the ``nas.plugins`` entry points, ``nas.core.plugins``), which register theirs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from nas.core.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of factories of one kind (``kind`` is used in error messages)."""

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package
        self._entries: dict[str, T] = {}
        self._discovered = package is None

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: ``@SPACES.register("nb201")`` over a class or factory function."""

        def wrap(obj: T) -> T:
            if name in self._entries and self._entries[name] is not obj:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return wrap

    def _discover(self) -> None:
        """Import every module of the built-ins package once (each registers its entries), then the plugins."""
        if self._discovered:
            return
        self._discovered = True
        root = importlib.import_module(self.package)
        for info in pkgutil.walk_packages(root.__path__, prefix=root.__name__ + "."):
            if not info.name.rsplit(".", 1)[-1].startswith("_"):
                importlib.import_module(info.name)
        from nas.core.plugins import load_plugins

        load_plugins()

    def names(self) -> list[str]:
        """All known names, sorted."""
        self._discover()
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry called ``name``; an unknown name raises a one-line error listing the choices."""
        if name not in self._entries:
            self._discover()
        if name not in self._entries:
            choices = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; valid choices: {choices}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self._discover()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
