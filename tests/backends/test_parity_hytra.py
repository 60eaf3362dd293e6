"""Torch/JAX parity on HyTra networks (CPU preset): ResConv, ResAtt with ``mhsa``, SE, SiLU, empty stages.

Train mode (batch statistics) is compared at a looser tolerance: 16 residual layers whose 1/32 maps are
2x2 make float32 itself drift, e.g. BossNet-T0's path in float32 torch differs from the same weights in
float64 by 1.5e-3 at the last layer (batch 8), while eval-mode outputs agree to 1e-6.
"""

from __future__ import annotations

from typing import Any

import pytest

from nas.core.genotype import Genotype  # noqa: E402
from nas.spaces.hytra import HyTraSpace  # noqa: E402
from nas.testing.parity import BackendParitySuite, check_parity  # noqa: E402

T0 = [5, 4, 3, 3, 3, 2, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0]


@pytest.mark.slow  # about 90 s on 2 cores: the JAX backend compiles every op shape eagerly
class TestHyTraParity(BackendParitySuite):
    """BossNet-T0's path with SE, SiLU and T1's last stride, and a fabric path with empty stages."""

    space_name = "hytra"
    preset = "cpu"
    atol = 3e-3

    def genotypes(self) -> list[Genotype]:
        return [HyTraSpace(se=True, act="silu", last_stride=1).from_tokens(T0),
                HyTraSpace(variant="fabric").from_tokens([2] * 6 + [0] * 10)]

    def results(self) -> list[tuple[str, dict[str, Any]]]:
        cls = type(self)
        if cls not in BackendParitySuite._cache:
            space = self.space()
            BackendParitySuite._cache[cls] = [(space.describe(g), check_parity(space.decode(g), self.atol, batch=8))
                                              for g in self.genotypes()]
        return BackendParitySuite._cache[cls]

    def test_eval_outputs_match(self) -> None:
        for name, r in self.results():
            assert r["eval_diff"] < 1e-5, (name, r["eval_diff"])
