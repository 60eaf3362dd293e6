"""Torch/JAX parity on NB201 cells, and on samples of every registered space (small presets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.backends import jax as jax_backend  # noqa: E402
from nas.backends import torch as torch_backend  # noqa: E402
from nas.core.cost import arch_cost  # noqa: E402
from nas.core.genotype import Genotype  # noqa: E402
from nas.core.space import SPACES  # noqa: E402
from nas.spaces.nb201 import NB201Space  # noqa: E402
from nas.testing.parity import BackendParitySuite, check_parity, space_for_tests  # noqa: E402

ALL_CONV = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
CELLS = (
    ALL_CONV,
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|avg_pool_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|",
    "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
)


class TestNB201Parity(BackendParitySuite):
    """Hand-picked cells (conv, none, all-zero, pooling, skip) plus random samples, small preset."""

    space_name = "nb201"
    preset = "small"
    seeds = (0,)

    def genotypes(self) -> list[Genotype]:
        space = self.space()
        return [space.parse(cell) for cell in CELLS] + super().genotypes()


def test_all_conv_cell_matches_the_benchmark_count() -> None:
    """The benchmark's all-3x3 network (default preset): 1,531,546 parameters in every count."""
    space = NB201Space()
    arch = space.decode(space.parse(ALL_CONV))
    counts = {"torch": torch_backend.count_params(torch_backend.build(arch)),
              "jax": jax_backend.count_params(jax_backend.build(arch)), "arch": arch_cost(arch)["params"]}
    assert counts == {"torch": 1_531_546, "jax": 1_531_546, "arch": 1_531_546}


# Spaces with their own, more thorough parity files (all heads, every block kind, tolerances suited to their
# depth) are covered there; the sweep keeps them out so one sample is not compiled twice.
OWN_PARITY_FILE = {"hytra": "test_parity_hytra.py", "fbnetv5": "test_parity_fbnetv5.py"}
# JAX compiles every op of a deep network eagerly on its first call: minutes on 2 cores.
SLOW_TO_COMPILE = {"fbnetv3"}
# Train mode is compared too (dropout and drop-path off): batch 4 keeps batch statistics meaningful where deep
# presets reach 1x1 maps, and ResNet-RS-101's train-mode path drifts in float32 beyond 1e-4 (about 1e-4 at batch 4).
SWEEP_ATOL = {"resnet_rs": 5e-4}


def _sweep() -> list:
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_TO_COMPILE else name
            for name in SPACES.names() if name not in OWN_PARITY_FILE]


def test_spaces_outside_the_sweep_have_their_own_parity_file() -> None:
    here = Path(__file__).parent
    for name, file in OWN_PARITY_FILE.items():
        assert name in SPACES.names() and (here / file).is_file(), name


@pytest.mark.parametrize("space_name", _sweep())
def test_every_registered_space_has_backend_parity(space_name: str) -> None:
    space = space_for_tests(space_name)
    genotype = space.sample(0)
    r = check_parity(space.decode(genotype), atol=SWEEP_ATOL.get(space_name, 1e-4), batch=4)
    assert r["ok"], (space.describe(genotype), r)
