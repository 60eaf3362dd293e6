"""The NAS-Bench-201 supernet for block-wise searches: one block per stage, the cell chosen per stage.

The macro network is the space's (``NB201Space.decode``): stem, three stages of ``cells_per_stage`` cells at
C, 2C, 4C channels joined by residual reduction blocks. Block k is stage k (block 0 includes the stem; blocks
1 and 2 begin with their reduction block); every cell of a block runs the same candidate cell, and each
cell position holds every edge's five ops with their own weights. A path is the cell as six op indices in
``EDGES`` order (``NB201_OPS`` numbering). Every op module is lowered from the space's own IR builders, so the
supernet computes exactly the stand-alone network of a path (the same cell in each stage).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from nas.backends.torch import build
from nas.backends.torch.supernets.blockwise import BLOCK_SUPERNETS, BlockSupernet, Path
from nas.core.space import SearchSpace
from nas.spaces.nb201.space import EDGES, NB201_OPS, edge_op_spec, reduction_spec, stem_spec

STAGES = 3
NONE = NB201_OPS.index("none")


def all_cells() -> list[Path]:
    """The 15,625 cells as paths (op indices per edge)."""
    return [tuple(c) for c in itertools.product(range(len(NB201_OPS)), repeat=len(EDGES))]


def path_to_decisions(path: Sequence[int]) -> dict[str, str]:
    """A path as the space's decisions (``edge_<node>_<source>`` -> op name)."""
    return {f"edge_{i}_{j}": NB201_OPS[op] for (i, j), op in zip(EDGES, path)}


def decisions_to_path(decisions) -> Path:
    """The inverse of ``path_to_decisions`` for a genotype or a mapping of its decisions."""
    return tuple(NB201_OPS.index(decisions[f"edge_{i}_{j}"]) for i, j in EDGES)


class CellChoices(nn.Module):
    """One cell position: every edge's ops with their own weights; ``forward`` runs one cell."""

    def __init__(self, channels: int, side: int) -> None:
        super().__init__()
        shape = (channels, side, side)
        self.ops = nn.ModuleDict()
        for (i, j) in EDGES:
            for k, op in enumerate(NB201_OPS):
                if op != "none":
                    self.ops[f"{i}{j}_{k}"] = build(edge_op_spec(shape, op))

    def forward(self, x: torch.Tensor, path: Sequence[int]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        live = _live_edges(path)
        for node in (1, 2, 3):
            total = None
            for e, (i, j) in enumerate(EDGES):
                if i != node or not live[e]:
                    continue
                y = self.ops[f"{i}{j}_{path[e]}"](nodes[j])
                total = y if total is None else total + y
            nodes.append(torch.zeros_like(x) if total is None else total)
        return nodes[3]

    def modules_on(self, path: Sequence[int]) -> list[nn.Module]:
        live = _live_edges(path)
        return [self.ops[f"{i}{j}_{path[e]}"] for e, (i, j) in enumerate(EDGES) if live[e]]


def _live_edges(path: Sequence[int]) -> list[bool]:
    """Which edges reach the cell's output (a ``none`` edge never does; nor does an edge into a node that no
    live edge reads), as the space's IR keeps only the nodes the output depends on."""
    needed = {3}
    for node in (3, 2, 1):
        if node in needed:
            needed |= {j for e, (i, j) in enumerate(EDGES) if i == node and path[e] != NONE}
    return [path[e] != NONE and i in needed for e, (i, j) in enumerate(EDGES)]


@BLOCK_SUPERNETS.register("nb201")
class NB201Supernet(BlockSupernet):
    """Stem, reductions and ``cells_per_stage`` choice cells per stage; block k starts at level k - 1 (0 for
    block 0) and ends at level k."""

    shared_path = True
    resample_necks = False

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        m = space.macro
        c, n = int(m["channels"]), int(m["cells_per_stage"])
        shape = tuple(int(v) for v in m["input_shape"])
        self.input_shape = shape
        self.blocks = STAGES
        self.channels = tuple(c * 2**s for s in range(STAGES))
        sides = [shape[1] // 2**s for s in range(STAGES)]
        self.stem = build(stem_spec(shape, c))
        self.reductions = nn.ModuleList(build(reduction_spec((self.channels[s - 1], sides[s - 1], sides[s - 1]),
                                                             self.channels[s])) for s in range(1, STAGES))
        self.cells = nn.ModuleList(nn.ModuleList(CellChoices(self.channels[s], sides[s]) for _ in range(n))
                                   for s in range(STAGES))
        self._candidates = all_cells()

    def genotype(self, space, paths: Sequence[Path]):
        if any(tuple(p) != tuple(paths[0]) for p in paths):
            raise ValueError(f"an NB201 architecture runs one cell in every stage, got {list(paths)}")
        return space.make(path_to_decisions(paths[0]))

    def fair_paths(self, block: int, start: int, rng) -> list[Path]:
        """Five cells that together use each op once on every edge (a random permutation per edge)."""
        perms = [rng.sample(range(len(NB201_OPS)), len(NB201_OPS)) for _ in EDGES]
        return [tuple(perm[i] for perm in perms) for i in range(len(NB201_OPS))]

    def block_starts(self, block: int) -> list[int]:
        return [max(block - 1, 0)]

    def candidates(self, block: int, start: int) -> list[Path]:
        return list(self._candidates)

    def end_level(self, block: int, path: Sequence[int]) -> int:
        return block

    def run_block(self, x: torch.Tensor, block: int, start_level: int, path: Sequence[int]) -> torch.Tensor:
        if block > 0:
            x = self.reductions[block - 1](x)
        for cell in self.cells[block]:
            x = cell(x, path)
        return x

    def enter(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        return self.stem(x), 0

    def block_modules(self, block: int, start_level: int, path: Sequence[int]) -> list[nn.Module]:
        mods: list[nn.Module] = [self.reductions[block - 1]] if block > 0 else []
        for cell in self.cells[block]:
            mods += cell.modules_on(path)
        return mods
