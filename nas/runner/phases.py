"""Which backend each phase of a search runs on, and a one-line refusal where a phase has none for the chosen one.

A search has up to three kinds of phases that run networks: what the searcher runs itself (a supernet's training
and rating, the final trainings of a weight-sharing search: ``Searcher.backend_phases``), the zero-cost proxies
behind a warm start or a predictor's features, and the evaluation of each trial (the evaluator's ``backend``;
``cost`` and ``tabular`` run no network). ``backend=jax`` must mean JAX in every one of them: a phase without a
JAX implementation stops the run before it starts, naming the phase, instead of silently running torch. The map
goes into the run's ``config.json`` (``phases``) and ``report.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.core.errors import UserError
from nas.evaluators.base import EVALUATORS
from nas.searchers.base import SEARCHERS

NO_NETWORK = "none (no network is run)"


def evaluator_backend(evaluator: Mapping[str, Any], backend: str) -> str:
    """The backend the evaluator runs trials on: its own ``backend`` option, else the run's; none for evaluators
    that run no network (``backends`` empty)."""
    if not getattr(EVALUATORS.get(str(evaluator["name"])), "backends", ()):
        return NO_NETWORK
    return str(evaluator.get("backend") or backend)


def proxy_phase(searcher: Mapping[str, Any]) -> list[str]:
    """The zero-cost proxies the searcher computes itself (warm start, predictor features), as plain names."""
    from nas.runner.warm_start import proxy_names
    from nas.searchers.predictor_evolution import feature_proxies

    names: list[str] = []
    if searcher.get("warm_start") is not None:  # a table of scores (warm_start_scores) may still miss some
        names += proxy_names(searcher["warm_start"])
    names += feature_proxies(searcher.get("proxy_features"))
    return list(dict.fromkeys(names))


def run_phases(config: Mapping[str, Any]) -> dict[str, str]:
    """``{phase: backend}`` of the configured search; a ``UserError`` naming the first phase that has no
    implementation on ``config["backend"]``."""
    backend = str(config["backend"])
    searcher = config["searcher"]
    name = str(searcher["name"])
    phases: dict[str, str] = {}
    for phase, backends in getattr(SEARCHERS.get(name), "backend_phases", {}).items():
        if backend not in backends:
            raise UserError(f"backend={backend}: searcher {name} runs its {phase} in {' or '.join(backends)} only "
                            f"(no {backend} implementation yet); use backend={backends[0]}")
        phases[f"searcher {name}: {phase}"] = backend
    proxies = proxy_phase(searcher)
    if proxies:
        from nas.evaluators.zero_cost.catalog import BACKENDS, expand

        missing = [p for p in expand(proxies) if p not in BACKENDS.get(backend, ())]
        if missing:
            raise UserError(f"backend={backend}: searcher {name}'s zero-cost proxy {missing[0]!r} has no {backend} "
                            f"implementation; {backend} computes: {', '.join(sorted(BACKENDS.get(backend, ())))}")
        phases[f"searcher {name}: zero-cost proxies ({', '.join(proxies)})"] = backend
    if getattr(SEARCHERS.get(name), "uses_evaluator", True):
        phases[f"evaluator {config['evaluator']['name']}: trials"] = evaluator_backend(config["evaluator"], backend)
    return phases
