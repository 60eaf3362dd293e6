"""NASNet-A (the paper's best cells) under the CIFAR, Mobile and Large macro settings.

Cells from the TF-Slim reference (``NasNetANormalCell``/``NasNetAReductionCell``), with its input
indices swapped into this space's convention (0 = h_{i-1}, 1 = h_i) and its hard-coded concat
lists: normal [h_{i-1}, b0..b4], reduction [b1..b4]. The paper's figures (auxiliary head excluded)
are in ``PAPER``; ``paper_cost`` recounts them from the ArchSpec.
"""

from __future__ import annotations

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.space import PUBLISHED
from nas.spaces.nasnet.cell import Block, Cell
from nas.spaces.nasnet.space import NASNetSpace

NASNET_A_NORMAL = Cell((
    Block((1, 0), ("sep_conv_5x5", "sep_conv_3x3")),
    Block((0, 0), ("sep_conv_5x5", "sep_conv_3x3")),
    Block((1, 0), ("avg_pool_3x3", "identity")),
    Block((0, 0), ("avg_pool_3x3", "avg_pool_3x3")),
    Block((1, 1), ("sep_conv_3x3", "identity")),
), concat=(0, 2, 3, 4, 5, 6))

NASNET_A_REDUCE = Cell((
    Block((1, 0), ("sep_conv_5x5", "sep_conv_7x7")),
    Block((1, 0), ("max_pool_3x3", "sep_conv_7x7")),
    Block((1, 0), ("avg_pool_3x3", "sep_conv_5x5")),
    Block((3, 2), ("identity", "avg_pool_3x3")),
    Block((2, 1), ("sep_conv_3x3", "max_pool_3x3")),
), concat=(3, 4, 5, 6))

# name -> (preset, paper params, paper multiply-adds or None)
PAPER: dict[str, tuple[str, int, int | None]] = {
    "nasnet-a-cifar": ("cifar", 3_300_000, None),
    "nasnet-a-mobile": ("mobile", 5_300_000, 564_000_000),
    "nasnet-a-large": ("large", 88_900_000, 23_800_000_000),
}


def nasnet_a(preset: str, **macro: object) -> Genotype:
    """NASNet-A under a preset of the space (macro overrides allowed, e.g. ``cells_per_stack=7``)."""
    return NASNetSpace(preset=preset, **macro).from_cells(NASNET_A_NORMAL, NASNET_A_REDUCE)


def without_aux(genotype: Genotype) -> ArchSpec:
    """The network of a NASNet genotype without its auxiliary head (as the papers count it)."""
    macro = {**genotype.macro_dict, "aux_head": False}
    plain = Genotype.make(genotype.space, genotype.version, genotype.values, macro)
    return NASNetSpace().decode(plain)


def paper_cost(name: str) -> dict[str, int]:
    """``{"params", "macs"}`` of a published NASNet-A, auxiliary head excluded."""
    return arch_cost(without_aux(PUBLISHED.get(name)()))


@PUBLISHED.register("nasnet-a-cifar")
def nasnet_a_cifar() -> Genotype:
    """NASNet-A 6@768 on CIFAR-10 (N=6, F=32): 3.3M parameters, 3.41% error with drop-path."""
    return nasnet_a("cifar")


@PUBLISHED.register("nasnet-a-mobile")
def nasnet_a_mobile() -> Genotype:
    """NASNet-A 4@1056 on ImageNet 224 (N=4, F=44): 5.3M parameters, 564M multiply-adds, 74.0% top-1."""
    return nasnet_a("mobile")


@PUBLISHED.register("nasnet-a-large")
def nasnet_a_large() -> Genotype:
    """NASNet-A 6@4032 on ImageNet 331 (N=6, F=168): 88.9M parameters, 23.8B multiply-adds, 82.7% top-1."""
    return nasnet_a("large")
