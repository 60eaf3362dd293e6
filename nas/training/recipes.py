"""Named training recipes (``nas/cli/conf/recipe/<name>.yaml``): the papers' recipes and a CPU default.

A recipe file holds ``TrainConfig`` fields (``augment`` as a nested mapping) plus ``description`` and
``source`` (where its numbers come from). ``recipe.<key>=value`` overrides any field on the command line.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from nas.backends.training import Augment, TrainConfig
from nas.core.errors import UserError

RECIPE_DIR = Path(__file__).resolve().parents[1] / "cli" / "conf" / "recipe"
DEFAULT_RECIPE = "cpu"
INFO_KEYS = ("description", "source")


def recipe_names() -> list[str]:
    """The names of the recipes shipped with the package."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def _parse(value: str) -> Any:
    loaded = yaml.safe_load(value)
    return tuple(loaded) if isinstance(loaded, list) else loaded


def load_recipe(name: str, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """The resolved recipe ``name`` as plain data, with ``{"lr": "0.01", "augment.cutout": "8"}`` applied."""
    path = RECIPE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; valid choices: {', '.join(recipe_names())}")
    recipe = yaml.safe_load(path.read_text()) or {}
    recipe["name"] = name
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"seed"}
    augment_fields = {f.name for f in dataclasses.fields(Augment)}
    for key, value in (overrides or {}).items():
        head, _, sub = key.partition(".")
        if head == "augment" and sub in augment_fields:
            recipe.setdefault("augment", {})[sub] = _parse(value)
        elif not sub and (head in fields or head in INFO_KEYS):
            recipe[head] = _parse(value)
        else:
            valid = sorted(fields) + [f"augment.{a}" for a in sorted(augment_fields)]
            raise UserError(f"recipe has no field {key!r}; valid: {', '.join(valid)}")
    return recipe


def train_config(recipe: dict[str, Any], seed: int) -> TrainConfig:
    """The ``TrainConfig`` of a resolved recipe (one line for a bad value)."""
    fields = {k: v for k, v in recipe.items() if k not in (*INFO_KEYS, "name")}
    fields["augment"] = Augment(**(fields.get("augment") or {}))
    if "milestones" in fields:
        fields["milestones"] = tuple(fields["milestones"] or ())
    try:
        config = TrainConfig(seed=seed, **fields)
    except (TypeError, ValueError) as exc:
        raise UserError(f"recipe {recipe.get('name')!r}: {exc}") from None
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        if not isinstance(value, int) or value < 1:
            raise UserError(f"recipe {recipe.get('name')!r}: {name} must be a positive integer, got {value!r}")
    if not isinstance(config.lr, int | float) or config.lr <= 0:
        raise UserError(f"recipe {recipe.get('name')!r}: lr must be a positive number, got {config.lr!r}")
    return config


def describe(recipe: dict[str, Any]) -> str:
    """One line: the recipe's name, its schedule and where it comes from."""
    return (f"recipe {recipe['name']}: {recipe.get('epochs')} epochs, batch {recipe.get('batch_size')}, "
            f"{recipe.get('optimizer', 'sgd')} lr {recipe.get('lr')} ({recipe.get('schedule', 'cosine')})"
            + (f"; source: {recipe['source']}" if recipe.get("source") else ""))
