"""Compose the resolved config of ``nas search`` from ``key=value`` overrides (Hydra config groups).

Hydra's compose API is used without its app runner, so no working-directory change, no logging
set-up and no outputs folder: the run directory is ours. Hydra's errors become one-line
``UserError``s that name the valid choices.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from nas.core.errors import UserError

CONF_DIR = Path(__file__).resolve().parent / "conf"
GROUPS = ("space", "searcher", "evaluator", "dataset", "runner")


def group_options(group: str) -> list[str]:
    """The config files of a group (``space`` -> ``["nb201", ...]``)."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _check_overrides(overrides: list[str]) -> None:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[+~]{0,2}[A-Za-z_][\w.]*", key.strip()):
            raise UserError(f"malformed override {item!r}: expected key=value, e.g. space=nb201 budget.trials=20")
        if key in GROUPS and value not in group_options(key):
            raise UserError(f"unknown {key} {value!r}; valid choices: {', '.join(group_options(key))}")


def compose(overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Any]:
    """The resolved config as plain data, with every ``???`` (required) value filled."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    _check_overrides(overrides)
    try:
        suggested = _suggestions(_space_suggest(overrides), overrides)
        _check_overrides(suggested)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            cfg = hydra_compose(config_name="config", overrides=suggested + overrides)
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise UserError(f"{', '.join(missing)} must be set (e.g. {missing[0]}=<value>)")
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_one_line(exc)) from None


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
    match = re.search(r"Could not override '([^']+)'|Key '([^']+)' is not in struct", str(exc))
    if match:
        key = match.group(1) or match.group(2)
        if key.startswith("searcher.warm_start"):
            return (f"this searcher has no warm start ({key}); supported: random, evolution, optuna, "
                    "predictor_evolution")
        return f"unknown setting {key!r}; see `nas search --help` for the keys (add new keys with +key=value)"
    return f"bad configuration: {text}"
