"""Random search: independent uniform samples of the space."""

from __future__ import annotations

from nas.core.genotype import Genotype
from nas.searchers.base import SEARCHERS, Searcher


@SEARCHERS.register("random")
class RandomSearcher(Searcher):
    """Samples the space uniformly (per decision), after the warm-start candidates if any; the runner
    deduplicates if asked."""

    supports_warm_start = True
    multi_objective = True

    def ask(self) -> Genotype | None:
        return self.initial()
