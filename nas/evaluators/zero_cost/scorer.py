"""``ProxyScorer``: zero-cost proxy scores of a space's genotypes, once per canonical form, for searchers.

The warm start (``nas.runner.warm_start``) ranks a pool with it; ``predictor_evolution`` reads proxy features
through it. The runner builds it with the run's dataset and seed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.space import SearchSpace
from nas.evaluators.zero_cost.catalog import DATA_FREE, expand

PROXY_BATCH = 64


class ProxyScorer:
    """Proxy scores of genotypes, computed once per canonical form (or looked up in a table of scores).

    ``data`` loads the run's dataset when a data proxy first needs it. ``table`` maps canonical forms to
    precomputed ``{proxy: score}``; a genotype found there is not computed.
    """

    def __init__(self, space: SearchSpace, data: Callable[[], Any] | None, seed: int,
                 batch_size: int = PROXY_BATCH, table: Mapping[str, Mapping[str, float]] | None = None,
                 backend: str = "torch") -> None:
        self.space, self._load, self.seed, self.batch_size = space, data, seed, batch_size
        self.backend = backend
        self.table = dict(table or {})
        self.known: dict[str, dict[str, float]] = {}
        self._data: Any = None
        self.computed = 0  # genotypes whose scores were computed (not looked up)

    def data(self) -> Any:
        if self._data is None:
            if self._load is None:
                raise UserError("the proxies need a dataset and this run has none")
            self._data = self._load()
        return self._data

    def __call__(self, genotype: Genotype, proxies: Sequence[str]) -> dict[str, float]:
        """``{proxy: score}`` of ``genotype`` for ``proxies`` (plain names; ``vote`` gives its members)."""
        from nas.evaluators.zero_cost.scores import proxy_scores

        key = self.space.canonical(genotype)
        known = self.known.setdefault(key, dict(self.table.get(key, {})))
        missing = [p for p in expand(proxies) if p not in known]
        if missing:
            import torch

            data = self.data() if any(p not in DATA_FREE for p in missing) else None
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # as timed and as the proxy evaluator runs; restored for the trials
            try:
                found = proxy_scores(genotype, missing, data, self.batch_size, self.seed, self.backend)
            except ValueError as exc:
                raise UserError(f"proxy scores of {self.space.describe(genotype)}: {exc}") from None
            finally:
                torch.set_num_threads(threads)
            known.update({k[3:]: v for k, v in found.items()})
            self.computed += 1
        return {p: known[p] for p in expand(proxies)}
