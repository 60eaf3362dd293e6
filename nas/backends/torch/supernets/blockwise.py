"""What a block-wise supernet offers its trainer: run a prefix of blocks, then one candidate path of a block.

A block-wise space (``SearchSpace.block_supernet`` names its entry in ``BLOCK_SUPERNETS``) is cut into blocks;
each block has candidate paths (tuples of ints) per level it can start at, and a path ends at a level. The
supernet holds the weights of every candidate and runs one path per block, so the self-supervised trainer
(``nas.evaluators.supernet``) and the rating need nothing else of a space. BossNAS's HyTra fabric and the
NAS-Bench-201 stages are the two built in.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.core.registry import Registry

Path = tuple[int, ...]
BLOCK_SUPERNETS: Registry = Registry("block supernet", package="nas.backends.torch.supernets")


class BlockSupernet(nn.Module):
    """Base class: subclasses set ``blocks`` and ``channels`` (per level) and define the path methods."""

    blocks: int
    channels: tuple[int, ...]
    shared_path: bool = False  # True: an architecture runs one path in every block (NB201's single cell)
    resample_necks: bool = True  # projectors bring every level to the last one (False: one input per level)

    def genotype(self, space, paths: Sequence[Path]):
        """The space's genotype of an architecture given as one path per block."""
        raise NotImplementedError

    def block_starts(self, block: int) -> list[int]:
        """Levels block ``block`` can start at."""
        raise NotImplementedError

    def candidates(self, block: int, start: int) -> list[Path]:
        """Candidate paths of block ``block`` entered at level ``start``."""
        raise NotImplementedError

    def end_level(self, block: int, path: Sequence[int]) -> int:
        """Level (resolution index) of the block's output along ``path``."""
        raise NotImplementedError

    def enter(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The fixed part before block 0 (a stem); returns features and their level."""
        raise NotImplementedError

    def run_block(self, x: torch.Tensor, block: int, start_level: int, path: Sequence[int]) -> torch.Tensor:
        """Run block ``block`` along ``path`` on the previous block's output (the stem's for block 0)."""
        raise NotImplementedError

    def block_modules(self, block: int, start_level: int, path: Sequence[int]) -> list[nn.Module]:
        """The modules a block path runs through (BN recalibration before rating it)."""
        raise NotImplementedError

    def fair_paths(self, block: int, start: int, rng) -> list[Path] | None:
        """FairNAS's strict fairness, where the space allows it: paths that use every choice of every position
        exactly once (one path per choice); ``None`` where it does not (HyTra's paths are constrained)."""
        return None

    def run_prefix(self, x: torch.Tensor, paths: Sequence[Path]) -> tuple[torch.Tensor, int]:
        """The stem and the given leading block paths; returns the features and the level they end at."""
        x, level = self.enter(x)
        for block, path in enumerate(paths):
            x = self.run_block(x, block, level, path)
            level = self.end_level(block, path)
        return x, level


def block_supernet(space, **options) -> BlockSupernet:
    """The supernet a block-wise space declares (``space.block_supernet``), built from its macro settings;
    ``options`` are the supernet's own (HyTra: ``zero_init_residual``)."""
    name = getattr(space, "block_supernet", None)
    if name is None:
        raise ValueError(f"space {space.name!r} declares no block supernet")
    return BLOCK_SUPERNETS.get(name)(space, **options)
