"""Block-wise supernets: the registry, and that a path of the NB201 supernet is the space's own network."""

from __future__ import annotations

import random

import pytest
import torch

from nas.backends.torch.supernets.blockwise import BLOCK_SUPERNETS, block_supernet
from nas.backends.torch.supernets.nb201 import all_cells, decisions_to_path, path_to_decisions
from nas.core.cost import arch_cost
from nas.core.space import SPACES


def test_block_wise_spaces_declare_a_registered_supernet():
    for name in ("hytra", "nb201"):
        assert SPACES.get(name).block_supernet == name and name in BLOCK_SUPERNETS
    assert SPACES.get("nasnet").block_supernet is None
    with pytest.raises(ValueError, match="declares no block supernet"):
        block_supernet(SPACES.get("nasnet")())


def test_nb201_paths_and_decisions_round_trip():
    space = SPACES.get("nb201")()
    cells = all_cells()
    assert len(cells) == 15625 == space.size()
    for cell in random.Random(0).sample(cells, 20):
        g = space.make(path_to_decisions(cell))
        assert decisions_to_path(g) == cell


@pytest.mark.parametrize("seed", range(4))
def test_an_nb201_path_runs_exactly_the_stand_alone_network(seed):
    """The modules a cell runs through in every stage have the parameters of the space's network for that
    cell (less the classifier head: last BN and linear), and the supernet's genotype of it is that cell."""
    space = SPACES.get("nb201")(channels=4, cells_per_stage=2)
    net = block_supernet(space)
    cell = random.Random(seed).choice(all_cells())
    genotype = space.make(path_to_decisions(cell))
    modules = [net.stem]
    for k in range(net.blocks):
        modules += net.block_modules(k, net.block_starts(k)[0], cell)
    params = sum(p.numel() for m in modules for p in m.parameters())
    head = 2 * 16 + 16 * 10 + 10  # BN(4C) + linear(4C -> 10)
    assert params == arch_cost(space.decode(genotype))["params"] - head
    assert net.genotype(space, [cell] * 3) == genotype
    with pytest.raises(ValueError, match="one cell in every stage"):
        net.genotype(space, [cell, cell, tuple(reversed(cell))])
    x = torch.randn(2, 3, 32, 32)
    feats, level = net.run_prefix(x, [cell] * 3)
    assert level == 2 and tuple(feats.shape) == (2, 16, 8, 8)


def test_nb201_fair_paths_use_every_op_of_every_edge_once_and_hytra_has_none():
    space = SPACES.get("nb201")(channels=4, cells_per_stage=1)
    net = block_supernet(space)
    rng = random.Random(0)
    draws = [net.fair_paths(1, 0, rng) for _ in range(3)]
    for paths in draws:
        assert len(paths) == 5 and len(set(paths)) == 5
        for edge in range(6):
            assert sorted(p[edge] for p in paths) == [0, 1, 2, 3, 4]
    assert draws[0] != draws[1]
    hytra = block_supernet(SPACES.get("hytra")(preset="cpu", widths=[16, 32, 64, 128], stem_width=8))
    assert hytra.fair_paths(0, 0, rng) is None
