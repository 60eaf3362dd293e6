"""Classes named by ``_target_`` in a searcher's options, found under a fixed set of modules only.

``searcher=optuna`` (``optuna.samplers``, ``optuna.pruners``) and ``searcher=ray_tune`` (``ray.tune.search``,
``ray.tune.schedulers``) take a setting that is a short name or a mapping whose ``_target_`` names a public class
under one of their modules and whose other keys are that class's keyword arguments. A keyword argument that is
itself such a mapping is resolved and built the same way. Resolution is attribute lookup from the allowed
modules (optionally importing their public submodules): nothing private and nothing outside them is reached.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Mapping
from types import ModuleType
from typing import Any


def split_target(value: Any, key: str, example: str) -> tuple[str, dict[str, Any]]:
    """(name, keyword arguments) of ``searcher.<key>``: a name, or a mapping whose ``_target_`` is the name and
    whose other keys are the class's keyword arguments; ``example`` is the module shown in the error."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("_target_"), str):
        return value["_target_"], {str(k): v for k, v in value.items() if k != "_target_"}
    raise ValueError(f"searcher.{key} must be a name or have a _target_ (e.g. searcher.{key}._target_="
                     f"{example}.<Class>), got {value!r}")


def _within(name: str, root: str) -> bool:
    return name == root or name.startswith(root + ".")


def _submodule(module: ModuleType, part: str) -> ModuleType | None:
    """The public submodule ``part`` of package ``module``, imported; None when there is none."""
    try:
        found = importlib.util.find_spec(f"{module.__name__}.{part}")
    except (ImportError, ValueError):
        return None
    return importlib.import_module(f"{module.__name__}.{part}") if found is not None else None


def resolve_class(name: str, roots: tuple[str, ...], import_submodules: bool = False) -> type:
    """The class a dotted ``name`` names under one of ``roots`` (``optuna.samplers.CmaEsSampler``), by attribute
    lookup from that module; with ``import_submodules`` a public submodule not imported yet is imported on the
    way (``ray.tune.search.hyperopt``). A private part, a module outside the root, or a class its package did
    not define (one merely imported from elsewhere) is refused with ``ValueError``."""
    root = next((r for r in roots if name.startswith(r + ".")), None)
    if root is None:
        raise ValueError(f"{name!r} is not a class under {' or '.join(roots)}")
    obj: Any = importlib.import_module(root)
    for part in name[len(root) + 1:].split("."):
        if not part or part.startswith("_"):
            raise ValueError(f"{name!r} is not a class under {root}")
        if not hasattr(obj, part) and import_submodules and isinstance(obj, ModuleType):
            _submodule(obj, part)
        if not hasattr(obj, part):
            raise ValueError(f"{name!r} is not a class under {root}")
        obj = getattr(obj, part)
        if isinstance(obj, ModuleType) and not _within(obj.__name__, root):
            raise ValueError(f"{name!r} is not a class under {root}")
    if not isinstance(obj, type) or not obj.__module__.startswith(root.split(".")[0] + "."):
        raise ValueError(f"{name!r} is not a class under {root}")
    return obj


def check_arguments(cls: type, kwargs: dict[str, Any], where: str, roots: tuple[str, ...],
                    import_submodules: bool = False, filled: tuple[str, ...] = ()) -> None:
    """``kwargs`` (nested ``_target_`` mappings too) bind to the class's signature; ``filled`` names keyword
    arguments the caller supplies when the class takes them and they are not given (``metric``, ``seed``)."""
    parameters = inspect.signature(cls).parameters
    supplied = {key: None for key in filled if key in parameters and key not in kwargs}
    try:
        inspect.signature(cls).bind(**supplied, **kwargs)
    except TypeError as exc:
        raise ValueError(f"{where}: {cls.__name__} does not take these arguments ({exc})") from None
    for key, value in kwargs.items():
        if isinstance(value, Mapping) and "_target_" in value:
            inner = resolve_class(str(value["_target_"]), roots, import_submodules)
            check_arguments(inner, split_target(value, key, roots[0])[1], f"{where}.{key}", roots,
                            import_submodules, filled)


def build(cls: type, kwargs: dict[str, Any], roots: tuple[str, ...], defaults: Mapping[str, Any],
          import_submodules: bool = False) -> Any:
    """An instance of ``cls``: nested ``_target_`` mappings built first, and each of ``defaults`` (the run's
    seed, the objective) given to every class that takes that keyword and was given none."""
    built = {k: build(resolve_class(str(v["_target_"]), roots, import_submodules), split_target(v, k, roots[0])[1],
                      roots, defaults, import_submodules)
             if isinstance(v, Mapping) and "_target_" in v else v for k, v in kwargs.items()}
    parameters = inspect.signature(cls).parameters
    for key, value in defaults.items():
        if key in parameters and built.get(key) is None:
            built[key] = value
    return cls(**built)


def public_classes(root: str, base: type) -> list[str]:
    """The public classes of module ``root`` that derive from ``base`` (``BaseSampler``), by name."""
    module = importlib.import_module(root)
    return sorted(n for n in getattr(module, "__all__", dir(module)) if not n.startswith("Base")
                  and isinstance(getattr(module, n, None), type) and issubclass(getattr(module, n), base))
