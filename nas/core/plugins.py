"""Third-party components: the ``nas.plugins`` entry-point group and the ``nas.register_*`` decorators.

An installed package declares, in its ``pyproject.toml``::

    [project.entry-points."nas.plugins"]
    hill_climb = "my_package.searchers"            # a module: importing it registers its components
    other = "my_package.plugin:register"           # or a callable, called once with no arguments

Every entry point is loaded once, the first time a registry looks up a name it does not know (after the
built-ins), and by ``nas search`` before it composes its config, so a plugin's searcher, space or evaluator
is chosen like a built-in one (``searcher=hill_climb``). A plugin that fails to load is a one-line
``UserError`` naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, TypeVar

from nas.core.errors import UserError

GROUP = "nas.plugins"
T = TypeVar("T")

_loaded: set[str] = set()
_loading = False


def plugin_entry_points() -> list[EntryPoint]:
    """The installed ``nas.plugins`` entry points, sorted by name (one per name)."""
    seen: dict[str, EntryPoint] = {}
    for ep in entry_points(group=GROUP):
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def load_plugins() -> list[str]:
    """Load every installed plugin not loaded yet; returns the names of all loaded plugins.

    A module entry point is imported; a callable one (``module:function``) is also called. Re-entrant calls
    (a plugin whose import looks a name up in a registry) return at once.
    """
    global _loading
    if _loading:
        return sorted(_loaded)
    _loading = True
    try:
        for ep in plugin_entry_points():
            if ep.name in _loaded:
                continue
            _loaded.add(ep.name)
            try:
                obj = ep.load()
                if callable(obj) and ep.attr:
                    obj()
            except Exception as exc:  # noqa: BLE001 - any failure of third-party code is the plugin's
                _loaded.discard(ep.name)  # a later lookup reports it again
                text = (str(exc).strip().splitlines() or [""])[0]
                detail = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
                raise UserError(f"plugin {ep.name!r} ({ep.value}) failed to load: {detail}") from None
    finally:
        _loading = False
    return sorted(_loaded)


def _checked(kind: str, base: type | None, name: str, obj: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a {kind} name must be an identifier (it is a config choice), got {name!r}")
    if base is not None and not (isinstance(obj, type) and issubclass(obj, base)):
        raise TypeError(f"{kind} {name!r} must be a subclass of {base.__module__}.{base.__name__}, got {obj!r}")
    if base is None and not callable(obj):
        raise TypeError(f"{kind} {name!r} must be a class or factory returning a callable, got {obj!r}")


def register_space(name: str) -> Callable[[T], T]:
    """Decorator: register a ``SearchSpace`` subclass as ``name`` (its ``name`` attribute is set to match)."""
    from nas.core.space import SPACES, SearchSpace

    def wrap(cls: T) -> T:
        _checked("space", SearchSpace, name, cls)
        declared = getattr(cls, "name", None)
        if declared not in (None, "", name) and "name" in vars(cls):
            raise ValueError(f"space class {cls.__name__} declares name {declared!r} but is registered as {name!r}")
        cls.name = name  # type: ignore[attr-defined]  # genotypes carry it; lookups go through SPACES
        SPACES.names()  # the built-ins first, so that a clash with one is reported here
        return SPACES.register(name)(cls)

    return wrap


def register_searcher(name: str) -> Callable[[T], T]:
    """Decorator: register a ``Searcher`` subclass as ``name`` (``searcher=<name>``)."""
    from nas.searchers.base import SEARCHERS, Searcher

    def wrap(cls: T) -> T:
        _checked("searcher", Searcher, name, cls)
        SEARCHERS.names()
        return SEARCHERS.register(name)(cls)

    return wrap


def register_evaluator(name: str) -> Callable[[T], T]:
    """Decorator: register an evaluator class or factory as ``name``; it builds ``f(genotype, ctx) -> metrics``."""
    from nas.evaluators.base import EVALUATORS

    def wrap(obj: T) -> T:
        _checked("evaluator", None, name, obj)
        EVALUATORS.names()
        return EVALUATORS.register(name)(obj)

    return wrap
