"""The ``cost`` evaluator: parameters and multiply-accumulates from the ArchSpec, no training."""

from __future__ import annotations

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.evaluators.base import EVALUATORS, EvalContext
from nas.spaces.resolve import space_of


@EVALUATORS.register("cost")
class CostEvaluator:
    """Reports ``params`` and ``macs`` (useful as objectives or constraints)."""

    def __init__(self, **_: object) -> None:
        pass

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        return dict(arch_cost(space_of(genotype).decode(genotype)))
