"""The HyTra search space (BossNAS, Li et al. ICCV 2021): a fabric of ResConv / ResAtt layers.

Decisions: ``layer0`` .. ``layer15``, one token each (``nas.spaces.hytra.encoding``). Their joint
validity (resolution never finer, at most one level coarser per layer, ResAtt only at 1/16 and 1/32,
the per-block candidate lists of the variant) is checked by ``check``; ``sample`` draws uniformly over
the legal paths (dynamic-programming counts), and ``mutate``/``crossover`` only make legal paths, so
every generic searcher stays inside the space. The variant (``fabric`` | ``restricted`` | ``executable``)
is a macro setting stored in each genotype; ``size()`` is its number of paths.

``decode`` builds the retraining form of the released BossNet (``layers.py``): stem, the layers
grouped into their resolution stages, an empty stage replaced by a 3x3 conv + BN + act, classifier.
"""

from __future__ import annotations

import random
from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import GenotypeError, UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import SPACES, SearchSpace, _rng
from nas.spaces.hytra import encoding as enc
from nas.spaces.hytra.layers import LayerConfig, add_layer, classifier, empty_stage, stem

LABELS = tuple(f"layer{i}" for i in range(enc.LAYERS))
ACTS = ("relu", "silu")
EMPTY_STAGE = ("level", "released")
# BossNet (retraining_hytra/boss_models.py) redraws every conv as He normal, fan-out, ReLU gain, and leaves
# conv biases and the timm classifier (nn.Linear) at torch's defaults.
CONV_INIT = "kaiming_normal_fan_out"

PRESETS: dict[str, dict[str, Any]] = {
    # The retraining form of the released models (ImageNet, 224).
    "imagenet": {
        "variant": "executable", "input_shape": [3, 224, 224], "num_classes": 1000,
        "stem_width": 64, "widths": [256, 512, 1024, 2048], "heads": [1, 2, 4, 8], "dim_head": 64,
        "se": True, "act": "silu", "last_stride": 2, "drop_path": 0.1, "empty_stage": "level",
    },
    # Spec 2.9: same encoding, 64x64 input (levels 16/8/4/2), every width / 8, dim_head 8 (heads unchanged).
    "cpu": {
        "variant": "executable", "input_shape": [3, 64, 64], "num_classes": 10,
        "stem_width": 8, "widths": [32, 64, 128, 256], "heads": [1, 2, 4, 8], "dim_head": 8,
        "se": False, "act": "relu", "last_stride": 2, "drop_path": 0.0, "empty_stage": "level",
    },
}


def tokens_of(genotype: Genotype) -> list[int]:
    """The 16 layer tokens of a genotype."""
    values = genotype.values
    return [values[label] for label in LABELS]


def layer_config(macro: dict[str, Any]) -> LayerConfig:
    """The layer settings of a macro dict (shared with the BossNAS supernet)."""
    return LayerConfig(widths=tuple(int(w) for w in macro["widths"]), heads=tuple(int(h) for h in macro["heads"]),
                       dim_head=int(macro["dim_head"]), se=bool(macro["se"]), act=str(macro["act"]))


@SPACES.register("hytra")
class HyTraSpace(SearchSpace):
    """HyTra paths; presets ``imagenet`` (retraining form, 224) and ``cpu`` (64x64, widths / 8; the default)."""

    name = "hytra"
    block_supernet = "hytra"  # BossNAS trains it block by block (nas.backends.torch.supernets)
    version = 1
    presets = PRESETS
    default_preset = "cpu"

    def __init__(self, preset: str | None = None, **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        _check_macro(self.macro)

    @property
    def variant(self) -> str:
        return str(self.macro["variant"])

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec(tuple(Choice(label, tuple(enc.TOKENS)) for label in LABELS))

    def size(self) -> int:
        return enc.count(self.variant)

    def check(self, genotype: Genotype) -> None:
        macro = genotype.macro_dict
        try:
            _check_macro(macro)
        except UserError as exc:
            raise GenotypeError(f"hytra genotype macro: {exc}") from None
        tokens = tokens_of(genotype)
        if not enc.is_valid(tokens, macro["variant"]):
            i = next(i for i in range(enc.LAYERS) if not enc.is_prefix(tokens[:i + 1], macro["variant"]))
            raise GenotypeError(f"hytra path {tokens} is not legal in the {macro['variant']} variant: layer{i} "
                                f"(token {tokens[i]}) cannot follow {tokens[:i] or 'the stem'}")

    # --- operators that keep paths legal ------------------------------------------------------
    def from_tokens(self, tokens: list[int]) -> Genotype:
        """The genotype of a 16-token path (validated against this space's variant)."""
        return self.make(dict(zip(LABELS, (int(t) for t in tokens))))

    def from_stages(self, stages: list[list[int]]) -> Genotype:
        """The genotype of a stage encoding (per level 1/4 .. 1/32: 0 = ResAtt, 1 = ResConv)."""
        try:
            tokens = enc.stages_to_tokens(stages)
        except ValueError as exc:
            raise GenotypeError(f"hytra stage encoding {stages}: {exc}") from None
        if len(tokens) != enc.LAYERS:
            raise GenotypeError(f"hytra stage encoding {stages} has {len(tokens)} layers, not {enc.LAYERS}")
        return self.from_tokens(tokens)

    def sample(self, seed: int | random.Random | None = None) -> Genotype:
        """A path drawn uniformly among the legal paths of the variant."""
        return self.from_tokens(enc.sample_tokens(_rng(seed), self.variant))

    def mutate(self, genotype: Genotype, seed: int | random.Random | None = None, n: int = 1) -> Genotype:
        """``n`` times: change one layer's token to another that keeps the path legal (uniform over all
        such single changes, never back to the parent's token); a path with none re-draws the layers after
        a random cut."""
        rng = _rng(seed)
        original = tokens_of(genotype)
        tokens = list(original)
        for _ in range(n):
            moves = [(i, t) for i in range(enc.LAYERS) for t in enc.TOKENS if t not in (tokens[i], original[i])
                     and enc.is_valid(tokens[:i] + [t] + tokens[i + 1:], self.variant)]
            if moves:
                i, t = rng.choice(moves)
                tokens[i] = t
                continue
            old = list(tokens)
            while tokens in (old, original):
                tokens = enc.sample_tokens(rng, self.variant, old[:rng.randrange(enc.LAYERS)])
        return self.from_tokens(tokens)

    def crossover(self, a: Genotype, b: Genotype, seed: int | random.Random | None = None) -> Genotype:
        """One-point crossover at a layer where the two halves join legally (either parent first);
        a copy of a random parent when no cut joins."""
        rng = _rng(seed)
        ta, tb = tokens_of(a), tokens_of(b)
        children = [head[:cut] + tail[cut:] for cut in range(1, enc.LAYERS) for head, tail in ((ta, tb), (tb, ta))]
        children = [c for c in children if enc.is_valid(c, self.variant)]
        return self.from_tokens(rng.choice(children) if children else rng.choice((ta, tb)))

    def describe(self, genotype: Genotype) -> str:
        tokens = tokens_of(genotype)
        blocks = "|".join("".join(map(str, tokens[k:k + enc.BLOCK_LAYERS]))
                          for k in range(0, enc.LAYERS, enc.BLOCK_LAYERS))
        return f"hytra {blocks} stages {enc.tokens_to_stages(tokens)}"

    # --- network ------------------------------------------------------------------------------
    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m = genotype.macro_dict
        return build_network(enc.tokens_to_stages(tokens_of(genotype)), m)


def build_network(stages: list[list[int]], macro: dict[str, Any]) -> ArchSpec:
    """The retraining-form network of a stage encoding under macro settings ``macro``.

    Stage ``s`` (1/4, 1/8, 1/16, 1/32) starts with stride 1, 2, 2, ``last_stride``; drop-path grows
    linearly over the 16 layers (ResConv only). An empty stage becomes a 3x3 conv + BN + act with the
    stage's stride (``empty_stage: level``, so every token runs at its level) or always stride 2 as the
    released ``boss_models.py`` (``released``; shifts the later stages one level coarser).
    """
    cfg = layer_config(macro)
    g = GraphBuilder()
    x = g.input(tuple(int(v) for v in macro["input_shape"]))
    with g.defaults("conv2d", init=CONV_INIT):
        with g.scope("stem"):
            x = stem(g, x, int(macro["stem_width"]), cfg.act)
        index = 0
        for s, stage in enumerate(stages):
            stride = (1, 2, 2, int(macro["last_stride"]))[s]
            if not stage:
                with g.scope(f"stage{s}_empty"):
                    x = empty_stage(g, x, cfg.widths[s], 2 if macro["empty_stage"] == "released" else stride, cfg.act)
                continue
            for b, entry in enumerate(stage):
                rate = float(macro["drop_path"]) * index / (enc.LAYERS - 1)
                with g.scope(f"layer{index}"):
                    x = add_layer(g, x, enc.stage_token(s, entry), stride if b == 0 else 1, cfg, rate)
                index += 1
    with g.scope("head"):
        x = classifier(g, x, int(macro["num_classes"]))
    return g.build({"logits": x})


def _check_macro(m: dict[str, Any]) -> None:
    missing = sorted(set(PRESETS["cpu"]) - set(m))
    if missing:
        raise UserError(f"hytra macro settings lack {', '.join(missing)}")
    if m["variant"] not in enc.VARIANTS:
        raise UserError(f"hytra variant must be one of {', '.join(enc.VARIANTS)}, got {m['variant']!r}")
    if m["act"] not in ACTS:
        raise UserError(f"hytra act must be relu or silu, got {m['act']!r}")
    if m["empty_stage"] not in EMPTY_STAGE:
        raise UserError(f"hytra empty_stage must be level or released, got {m['empty_stage']!r}")
    if int(m["last_stride"]) not in (1, 2):
        raise UserError(f"hytra last_stride must be 1 or 2, got {m['last_stride']!r}")
    if len(m["widths"]) != enc.LEVELS or len(m["heads"]) != enc.LEVELS:
        raise UserError("hytra widths and heads need one value per level (1/4, 1/8, 1/16, 1/32)")
    if any(int(w) % 4 for w in m["widths"]):
        raise UserError(f"hytra widths must be multiples of 4 (bottleneck planes = width / 4), got {m['widths']}")
    shape = m["input_shape"]
    if len(shape) != 3 or any(v is None for v in shape) or min(int(shape[1]), int(shape[2])) < 32:
        raise UserError(f"hytra needs a [C, H, W] input of at least 32x32 (1/32 resolution), got {shape}; "
                        "set dataset.resolution (e.g. 64)")
