"""The short Python API: ``nas.space``, ``nas.build``, ``nas.cost``, ``nas.load``, ``nas.search``,
``nas.create_model``, ``nas.list_models``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nas.core import extras
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
        name = str(path_or_name)
        for candidate in (name, name.replace("_", "-")):
            if candidate in PUBLISHED:
                return published(candidate)
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


def list_models(pattern: str | None = None) -> list[str]:
    """Published architectures ``create_model`` builds by name (``fnmatch`` ``pattern``, e.g. ``"resnet-rs*"``)."""
    from fnmatch import fnmatch

    return [n for n in PUBLISHED.names() if pattern is None or fnmatch(n, pattern)]


def create_model(name_or_arch: Genotype | str | Path | dict | None = None, num_classes: int | None = None,
                 pretrained: str | Path | None = None, backend: str = "torch", run: str | Path | None = None,
                 input_shape: tuple[int, int, int] | None = None, seed: int = 0) -> Any:
    """A ready network, timm-style: a published name (``"nasnet_a_mobile"``), an arch JSON or a genotype, or
    ``run=`` a training directory (its trained weights), a search run directory (its best architecture) or a
    ``format=flax`` export folder.

    ``num_classes``/``input_shape`` adapt the classifier and input where the space allows; ``pretrained`` is
    a ``model.safetensors`` checked tensor by tensor against the architecture. ``backend="jax"`` gives a Flax
    NNX network holding the same weights. Returns the network in eval mode.
    """
    from nas.training.sources import adapt_to_data, resolve_source

    if backend == "jax":
        extras.check("jax", "backend='jax'")
    if (name_or_arch is None) == (run is None):
        raise UserError("create_model takes an architecture or run=<directory>, exactly one of them")
    if run is not None and Path(run, "variables.msgpack").is_file():
        if backend != "jax" or pretrained is not None or num_classes or input_shape:
            raise UserError(f"{run} is a flax export: load it with backend='jax' and no other options")
        from nas.export import load_flax

        return load_flax(run)
    task = None
    if run is not None:
        source = resolve_source(str(run))
        genotype, weights, task = source.genotype, source.weights, source.task
    else:
        genotype, weights = _resolve(name_or_arch), None
    if pretrained is not None:
        weights = Path(pretrained)
    genotype = adapt_to_data(genotype, input_shape, num_classes)
    from nas.backends.torch import build as build_torch
    from nas.export.exporters import task_arch
    from nas.spaces.resolve import space_of
    from nas.training.weights import load_weights

    arch = task_arch(space_of(genotype).decode(genotype), task)
    model = build_torch(arch, seed=seed)
    if weights is not None:
        load_weights(model, weights)
    if backend == "torch":
        return model.eval()
    if backend != "jax":
        raise UserError(f"unknown backend {backend!r}; valid choices: torch, jax")
    from nas.training.convert import jax_from_torch

    network = jax_from_torch(model, arch)
    network.eval()
    return network
