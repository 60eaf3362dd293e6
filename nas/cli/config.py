"""Compose the resolved config of ``nas search`` from ``key=value`` overrides (Hydra config groups).

Hydra's compose API is used without its app runner, so no working-directory change, no logging
set-up and no outputs folder: the run directory is ours. Hydra's errors become one-line
``UserError``s that name the valid choices.

A space, searcher or evaluator registered from Python (``@nas.register_searcher``, an installed plugin of the
``nas.plugins`` entry-point group) has no yaml here: its section is made from its constructor's keyword
defaults (``default_options``) and stored in Hydra's ``ConfigStore``, so it is chosen and overridden like a
built-in one and an unknown option is still refused.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

from nas.core.errors import UserError

CONF_DIR = Path(__file__).resolve().parent / "conf"
GROUPS = ("space", "searcher", "evaluator", "dataset", "runner", "logger")
LIST_GROUPS = ("logger",)  # groups of which several options may be chosen at once: logger=[tensorboard,mlflow]
REGISTERED_GROUPS = ("space", "searcher", "evaluator")  # groups whose choices may also come from Python
_PLAIN = (type(None), bool, int, float, str)


def _registry(group: str) -> Any:
    if group == "space":
        from nas.core.space import SPACES

        return SPACES
    if group == "searcher":
        from nas.searchers.base import SEARCHERS

        return SEARCHERS
    from nas.evaluators.base import EVALUATORS

    return EVALUATORS


def _has_yaml(group: str, name: str) -> bool:
    return (CONF_DIR / group / f"{name}.yaml").is_file()


def group_options(group: str) -> list[str]:
    """The choices of a group (``space`` -> ``["nb201", ...]``): its config files, and for space, searcher and
    evaluator also what is registered from Python (plugins). Names starting with ``_`` (components that tests
    register, such as ``_faulty``) work but are not listed."""
    names = {p.stem for p in (CONF_DIR / group).glob("*.yaml")}
    if group in REGISTERED_GROUPS:
        names.update(name for name in _registry(group).names() if not name.startswith("_"))
    return sorted(names)


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return isinstance(value, _PLAIN)


def default_options(group: str, name: str) -> dict[str, Any]:
    """The config section of a component registered from Python without a yaml of its own.

    A space gets ``preset`` (its default preset) and an empty ``macro``; a searcher or evaluator gets its
    constructor's keyword defaults that a config can hold (None, bool, number, string, lists and mappings of
    them; others stay at the constructor's default), with ``???`` for a required one. A searcher with a warm
    start also gets the runner's ``warm_start*`` keys; an evaluator that reads the run's dataset is handed it
    by the runner, so ``dataset`` is left out and ``backend`` is null (the run's).
    """
    from omegaconf import MISSING, OmegaConf

    entry = _registry(group).get(name)
    if group == "space":
        return {"name": name, "preset": str(entry.default_preset), "macro": {}}
    options: dict[str, Any] = {"name": name}
    for key, param in inspect.signature(entry).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD, param.POSITIONAL_ONLY) or key == "name":
            continue
        if param.default is param.empty:
            options[key] = MISSING
        elif _plain(param.default):
            default = param.default
            options[key] = list(default) if isinstance(default, tuple) else default
    if group == "searcher" and getattr(entry, "supports_warm_start", False):
        warm = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "searcher" / "random.yaml"))
        options.update({k: v for k, v in warm.items() if k.startswith("warm_start")})
    if group == "evaluator":
        from nas.evaluators.base import LoadsDataset

        if isinstance(entry, type) and issubclass(entry, LoadsDataset):
            options.pop("dataset", None)
            if "backend" in options:
                options["backend"] = None  # null: the run's backend (``evaluator_spec``)
    return options


def _store_registered(overrides: list[str]) -> None:
    """Put the section of every chosen component without a yaml into Hydra's ``ConfigStore``."""
    from hydra.core.config_store import ConfigStore

    for item in overrides:
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key in REGISTERED_GROUPS and not _has_yaml(key, value):
            ConfigStore.instance().store(group=key, name=value, node=default_options(key, value))


def _check_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[+~]{0,2}[A-Za-z_][\w.]*", key.strip()):
            raise UserError(f"malformed override {item!r}: expected key=value, e.g. space=nb201 budget.trials=20")
        key, value = key.strip(), value.strip()
        if key in LIST_GROUPS:
            _check_list_choice(key, value)
        elif key in GROUPS and not _has_yaml(key, value) and value not in group_options(key):
            raise UserError(f"unknown {key} {value!r}; valid choices: {', '.join(group_options(key))}")


def _check_list_choice(key: str, value: str) -> None:
    """``logger=mlflow`` or ``logger=[tensorboard,mlflow]``: every name one of the group's options."""
    listed = value.startswith("[") and value.endswith("]")
    if "," in value and not listed:
        raise UserError(f"{key}={value}: several at once are a list, e.g. {key}=[{value}]")
    names = [n.strip() for n in (value[1:-1] if listed else value).split(",") if n.strip()]
    for name in names:
        if name not in group_options(key):
            raise UserError(f"unknown {key} {name!r}; valid choices: {', '.join(group_options(key))} "
                            f"(several at once: {key}=[tensorboard,mlflow])")


def compose(overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved config as plain data, with every ``???`` (required) value filled."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        full = prepared_overrides(overrides)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=full)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise UserError(f"{', '.join(missing)} must be set (e.g. {missing[0]}=<value>)")
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_one_line(exc)) from None


def prepared_overrides(overrides: list[str] | tuple[str, ...]) -> list[str]:
    """The overrides Hydra composes: checked, with the chosen space's suggestions first, and every chosen component
    registered from Python put in Hydra's ``ConfigStore`` (a sweep's launcher composes each job with these)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from nas.core.plugins import load_plugins

    overrides = list(overrides)
    load_plugins()  # before the checks: a plugin's components are choices like the built-ins
    _check_overrides(overrides)
    try:
        suggested = _suggestions(_space_suggest(overrides), overrides)
        _check_overrides(suggested)
        _store_registered(suggested + overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_one_line(exc)) from None
    return suggested + overrides


def _space_suggest(overrides: list[str]) -> Any:
    """The ``suggest:`` block of the chosen space's yaml (read before composing, so that the user's
    overrides of the suggested searcher's own keys, e.g. ``searcher.steps=...``, compose)."""
    from omegaconf import OmegaConf

    chosen = [value.strip() for key, _, value in (o.partition("=") for o in overrides) if key.strip() == "space"]
    if chosen:
        name = chosen[-1]
    else:
        defaults = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"))["defaults"]
        name = next(item["space"] for item in defaults if isinstance(item, dict) and "space" in item)
    file = CONF_DIR / "space" / f"{name}.yaml"
    return OmegaConf.to_container(OmegaConf.load(file)).get("suggest") if file.is_file() else None


def _suggestions(suggest: Any, overrides: list[str]) -> list[str]:
    """A space's ``suggest:`` defaults (e.g. ``searcher: bossnas``, ``dataset.resolution: 64``) as overrides,
    leaving out every key the user set: a space can pick the searcher and data it is meant for."""
    if not suggest:
        return []
    given = {item.partition("=")[0].strip().lstrip("+~") for item in overrides}
    out = []
    for key, value in dict(suggest).items():
        if key in given:
            continue
        text = str(value).lower() if isinstance(value, bool) else ("null" if value is None else str(value))
        out.append(f"{key}={text}")
    return out


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    merging = re.match(r"Error merging override ([^=\s]+)=", text)
    if merging and exc.__cause__ is not None:  # a value of the wrong type, e.g. hydra.launcher.n_jobs=x
        return f"bad value for {merging.group(1)}: {str(exc.__cause__).strip().splitlines()[0]}"
    group = re.search(r"Could not find '([^']+)/([^'/]+)'\s+Available options in '[^']+':\s+((?:\t\S+\n?)+)", str(exc))
    if group:
        return f"unknown {group.group(1)} {group.group(2)!r}; valid choices: {', '.join(group.group(3).split())}"
    match = re.search(r"Could not override '([^']+)'|Key '([^']+)' is not in struct", str(exc))
    if match:
        key = match.group(1) or match.group(2)
        if key.startswith("searcher.warm_start"):
            return (f"this searcher has no warm start ({key}); supported: random, evolution, optuna, "
                    "predictor_evolution")
        return f"unknown setting {key!r}; see `nas search --help` for the keys (add new keys with +key=value)"
    return f"bad configuration: {text}"
