"""The short Python API: ``nas.space``, ``nas.build``, ``nas.cost``, ``nas.load``, ``nas.search``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError, UserError
from nas.core.genotype import Genotype
from nas.core.space import PUBLISHED, SPACES, SearchSpace


def space(name: str, preset: str | None = None, **macro: Any) -> SearchSpace:
    """The registered search space ``name`` with a preset and macro overrides."""
    return SPACES.get(name)(preset=preset, **macro)


def spaces() -> list[str]:
    """Names of all registered spaces."""
    return SPACES.names()


def published(name: str) -> Genotype:
    """A published architecture by name (``"nb201-best-cifar10"``, ``"nasnet-a-mobile"`` ...)."""
    return PUBLISHED.get(name)()


def _resolve(genotype: Genotype | str | Path | dict) -> Genotype:
    if isinstance(genotype, Genotype):
        return genotype
    if isinstance(genotype, dict):
        return Genotype.from_json(genotype.get("genotype", genotype))
    return load(genotype)


def load(path_or_name: str | Path) -> Genotype:
    """A genotype from a JSON file (a genotype, ``best.json`` or a journal line) or a published name."""
    path = Path(path_or_name)
    if not path.exists():
        if str(path_or_name) in PUBLISHED:
            return published(str(path_or_name))
        raise UserError(f"no such file or published architecture: {path_or_name}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GenotypeError(f"{path} is not valid JSON: {exc.msg} (line {exc.lineno})") from None
    if isinstance(data, dict) and "genotype" in data:
        data = data["genotype"]
    genotype = Genotype.from_json(data)
    if genotype.space not in SPACES:
        raise GenotypeError(f"{path}: unknown space {genotype.space!r}; valid choices: {', '.join(SPACES.names())}")
    SPACES.get(genotype.space)().validate(genotype)
    return genotype


def build(genotype: Genotype | str | Path | dict, backend: str = "torch", seed: int | None = 0) -> Any:
    """The native module of a genotype: a ``torch.nn.Module`` or a ``flax.nnx.Module``."""
    from nas.backends import get_backend
    from nas.spaces.resolve import space_of

    g = _resolve(genotype)
    return get_backend(backend).build(space_of(g).decode(g), seed=seed)


def cost(genotype: Genotype | str | Path | dict) -> dict[str, int]:
    """``{"params", "macs"}`` of a genotype's main network, computed from its ArchSpec alone.

    A network with auxiliary heads also gets ``params_with_aux`` / ``macs_with_aux`` (``nas.core.cost``).
    """
    from nas.spaces.resolve import space_of

    g = _resolve(genotype)
    return arch_cost(space_of(g).decode(g))


def search(space: str = "nb201", searcher: str = "evolution", evaluator: str = "train", progress: bool = True,
           **overrides: Any) -> Any:
    """Run a search; keyword overrides use the CLI's dotted keys (``budget__trials=20`` or a dict).

    Returns a ``RunSummary`` (run directory, results, best).
    """
    from nas.cli.config import compose
    from nas.runner.run import search as run_search

    items = [f"space={space}", f"searcher={searcher}", f"evaluator={evaluator}"]
    items += [f"{key.replace('__', '.')}={value}" for key, value in overrides.items()]
    return run_search(compose(items), progress=progress)
