"""nas: neural architecture search with faithful spaces, ask/tell searchers and torch/JAX backends.

The public API is small and imports no torch, jax or ray until a function needs them::

    space = nas.space("nb201")
    g = space.sample(seed=0)
    model = nas.build(g, backend="torch")     # or "jax": an nnx.Module
    nas.cost(g)                               # {"params": ..., "macs": ...}
    nas.search(space="nb201", searcher="evolution", evaluator="train")
    model = nas.create_model("nasnet_a_mobile", num_classes=10)   # or run="<training dir>"

New components register from any module (or an installed package's ``nas.plugins`` entry point) with
``@nas.register_space("name")``, ``@nas.register_searcher("name")``, ``@nas.register_evaluator("name")``
and are then chosen by name, from Python and from ``nas search``, like the built-in ones.
"""

from __future__ import annotations

from nas.api import build, cost, create_model, list_models, load, published, search, space, spaces
from nas.core import ArchSpec, Genotype, GenotypeError, Result, SearchSpace, TrialState, UserError
from nas.core.plugins import load_plugins, register_evaluator, register_searcher, register_space

__version__ = "0.1.0"

__all__ = [
    "ArchSpec", "Genotype", "GenotypeError", "Result", "SearchSpace", "TrialState", "UserError", "build", "cost",
    "create_model", "list_models", "load", "load_plugins", "published", "register_evaluator", "register_searcher",
    "register_space", "search", "space", "spaces",
]
