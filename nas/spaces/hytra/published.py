"""BossNet-T (the searched HyTra models) and the reference hybrids of the paper, in the stage encoding.

Encodings and switches from the released ``retraining_hytra/boss_models.py`` (BossNet-T0 with SE and
SiLU, T0 without SE with ReLU, T1 = T0 with ``last_stride=1``) and ``boss_madds.py`` (the reference
hybrids, counted there with SE; we build them with T0's switches). ``PAPER`` keeps the published
multiply-adds (README, rounded) and the authors' analytic calculator's figures (spec 2.5); the
calculator adds SE to every layer and skips batch norms and biases, so its parameter counts are not
those of the built networks (see ``docs/spaces/hytra.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.core.genotype import Genotype
from nas.core.space import PUBLISHED
from nas.spaces.hytra import encoding as enc
from nas.spaces.hytra.space import HyTraSpace


@dataclass(frozen=True)
class Published:
    """A stage encoding, its switches and the figures published for it (``None``: not published)."""

    stages: tuple[tuple[int, ...], ...]
    switches: tuple[tuple[str, Any], ...]
    calculator_macs: int | None
    calculator_params: int | None
    readme_macs: float | None
    description: str


T0 = ((1,), (1,), (1, 1, 1, 0, 1), (0, 0, 0, 1, 0, 0, 0, 0, 0))
_RELEASED = (("se", True), ("act", "silu"))

PAPER: dict[str, Published] = {
    "bossnet-t0": Published(T0, _RELEASED, 3_447_000_000, 42_650_000, 3.4e9,
                            "BossNet-T0 (SE, SiLU): 80.8% top-1 at 224 (README)"),
    "bossnet-t0-nose": Published(T0, (("se", False), ("act", "relu")), 3_442_000_000, 37_230_000, 3.4e9,
                                 "BossNet-T0 without SE (ReLU): 80.5% top-1 at 224 (README)"),
    "bossnet-t1": Published(T0, (*_RELEASED, ("last_stride", 1)), 7_949_000_000, None, 7.9e9,
                            "BossNet-T1 = T0 with the 1/32 stage at stride 1: 81.9% top-1 (README; paper 82.2%)"),
    "r50-t": Published(((1,) * 3, (1,) * 4, (1,) * 6, (1,) * 3), _RELEASED, 4_104_000_000, None, 4.1e9,
                       "R50-T: the ResNet-50 layout in HyTra layers, 78.2% top-1 (paper digest)"),
    "bot50-t": Published(((1,) * 3, (1,) * 4, (1,) * 6, (0,) * 3), _RELEASED, 3_880_000_000, None, 3.9e9,
                         "BoT50-T: ResAtt in the 1/32 stage, 79.5% top-1 (paper digest)"),
    "vit-t-16": Published(((), (), (0,) * 16, ()), _RELEASED, 3_206_000_000, None, 3.2e9,
                          "ViT-T/16: 16 ResAtt at 1/16, 76.5% top-1 (paper digest)"),
    "vit-t-32": Published(((), (), (), (0,) * 16), _RELEASED, None, None, None,
                          "ViT-T/32: 16 ResAtt at 1/32 (boss_madds.py)"),
    "random-t": Published(((), (), (0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0), (0, 1, 0, 1, 1)), _RELEASED,
                          3_727_000_000, None, 3.7e9, "Random-T: a random HyTra path, 76.7% top-1 (paper digest)"),
    "dna-t": Published(((1,), (1, 1, 1), (1, 0, 1, 1, 1, 1, 0, 1), (0, 1, 1, 1)), _RELEASED, 3_912_000_000, None,
                       3.9e9, "DNA-T: DNA's search on HyTra, 80.3% top-1 (paper digest)"),
    "unnas-t": Published(((), (1,), (1, 1), (1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0)), _RELEASED, 3_682_000_000,
                         None, 3.7e9, "UnNAS-T: UnNAS's search on HyTra, 79.8% top-1 (paper digest)"),
}


def bossnet(name: str, **macro: Any) -> Genotype:
    """A published HyTra network under the ``imagenet`` preset (macro overrides allowed, e.g. input_shape).

    Its variant is the narrowest that contains it (``executable``, else ``fabric``).
    """
    entry = PAPER[name]
    tokens = enc.stages_to_tokens(entry.stages)
    variant = next(v for v in ("executable", "restricted", "fabric") if enc.is_valid(tokens, v))
    space = HyTraSpace(preset="imagenet", **{"variant": variant, **dict(entry.switches), **macro})
    return space.from_tokens(tokens)


def _register(name: str) -> None:
    def factory() -> Genotype:
        return bossnet(name)

    factory.__doc__ = PAPER[name].description
    PUBLISHED.register(name)(factory)


for _name in PAPER:
    _register(_name)
