"""Find the space a genotype belongs to and decode it (``nas.build``/``nas.cost`` use this)."""

from __future__ import annotations

from functools import cache

from nas.core.genotype import Genotype
from nas.core.space import SPACES, SearchSpace


@cache
def _space(name: str) -> SearchSpace:
    return SPACES.get(name)()


def space_of(genotype: Genotype) -> SearchSpace:
    """The registered space of ``genotype`` (validates space and version)."""
    space = _space(genotype.space)
    space.validate(genotype)
    return space
