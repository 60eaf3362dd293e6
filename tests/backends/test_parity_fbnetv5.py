"""Torch/JAX parity of the FBNetV5 space with all three heads (classification, segmentation, detection)."""

from __future__ import annotations

import pytest

from nas.core.genotype import Genotype  # noqa: E402
from nas.testing.parity import BackendParitySuite  # noqa: E402


@pytest.mark.slow
class TestFBNetV5Parity(BackendParitySuite):
    """Every head (cpu preset) on one topology that keeps every same-shape block and skips every shape-changing
    one, so all block kinds and all adapter kinds are compared (random samples: the registered-space test)."""

    space_name = "fbnetv5"
    preset = "cpu"

    def genotypes(self) -> list[Genotype]:
        space = self.space()
        units = [u for u in space.plan().units if u.decision is not None]
        return [space.make({u.decision: int(u.skipped is None) for u in units})]

    def test_all_heads_are_compared(self) -> None:
        for name, r in self.results():
            assert len(r["shapes"]["torch"]) == 11, name
