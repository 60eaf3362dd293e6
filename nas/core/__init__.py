"""Framework-free core: decisions, genotypes, spaces, the ArchSpec IR, cost, results, registries."""

from nas.core.cost import arch_cost
from nas.core.decisions import Choice, Condition, FloatRange, IntRange, SpaceSpec
from nas.core.errors import GenotypeError, UnknownNameError, UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder, Node
from nas.core.registry import Registry
from nas.core.result import Result, TrialState
from nas.core.space import PUBLISHED, SPACES, SearchSpace

__all__ = [
    "PUBLISHED", "SPACES", "ArchSpec", "Choice", "Condition", "FloatRange", "Genotype", "GenotypeError",
    "GraphBuilder", "IntRange", "Node", "Registry", "Result", "SearchSpace", "SpaceSpec", "TrialState",
    "UnknownNameError", "UserError", "arch_cost",
]
