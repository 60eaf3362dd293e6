"""FBNetV3 (Dai et al., CVPR 2021) as released in mobile-vision: block tables A-G and the ``fbnetv3`` space.

The tables restate ``FBNetV3_{A..G}`` of mobile-vision's ``fbnet_modeldef_cls_fbnetv3.py`` (B is A's
block list at 248 px). The space's one decision is the ``variant``; ``published("fbnetv3-a")`` is the
released FBNetV3-A at 224 px, the base network of FBNetV5. ``mobile_cv_cost`` counts like mobile-vision's
LUT (conv/linear weights only; weight MACs plus one op per input element of every average pool), which
reproduces the released figures exactly; ``arch_cost`` counts every learnable scalar and weight MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas.core.decisions import Choice, SpaceSpec
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import PUBLISHED, SPACES
from nas.ops import OPS
from nas.spaces.fbnet.blocks import Row, divisible, irf_block, pooled_head, stem
from nas.spaces.scaling.simplenet import GridSpace, input_node

F, T = False, True


@dataclass(frozen=True)
class Table:
    """One FBNetV3 network: released input size, stem width, stages of rows, pooled-head width/expansion."""

    input_size: int
    stem: int
    stages: tuple[tuple[Row, ...], ...]
    head: int = 1984
    head_expansion: float = 6.0

    def scaled(self, width_mult: float) -> Table:
        """Every width times ``width_mult``, rounded by the multiple-of-8 rule."""
        if width_mult == 1.0:
            return self
        stages = tuple(tuple(Row(r.kernel, divisible(r.out * width_mult), r.stride, r.repeats, r.expansion, r.se,
                                 r.dw_pad) for r in rows) for rows in self.stages)
        return Table(self.input_size, divisible(self.stem * width_mult), stages, divisible(self.head * width_mult),
                     self.head_expansion)


_A_STAGES = (
    (Row(3, 16, 1, 2, 1, F),),
    (Row(5, 24, 2, 1, 4, F), Row(5, 24, 1, 3, 2, F)),
    (Row(5, 40, 2, 1, 5, T), Row(5, 40, 1, 4, 3, T)),
    (Row(5, 72, 2, 1, 5, F, dw_pad=1), Row(3, 72, 1, 4, 3, F), Row(3, 120, 1, 1, 5, T), Row(5, 120, 1, 5, 3, T)),
    (Row(3, 184, 2, 1, 6, T, dw_pad=0), Row(5, 184, 1, 5, 4, T), Row(5, 224, 1, 1, 6, T)),
)

TABLES: dict[str, Table] = {
    "A": Table(224, 16, _A_STAGES),
    "B": Table(248, 16, _A_STAGES),
    "C": Table(248, 16, (
        (Row(3, 16, 1, 2, 1, F),),
        (Row(5, 24, 2, 1, 5, F), Row(3, 24, 1, 4, 3, F)),
        (Row(5, 48, 2, 1, 5, T), Row(5, 48, 1, 4, 2, T)),
        (Row(5, 88, 2, 1, 4, F, dw_pad=1), Row(3, 88, 1, 4, 3, F), Row(3, 120, 1, 1, 4, T),
         Row(5, 120, 1, 5, 3, T)),
        (Row(5, 216, 2, 1, 5, T, dw_pad=1), Row(5, 216, 1, 5, 5, T), Row(5, 216, 1, 1, 6, T)),
    )),
    "D": Table(248, 24, (
        (Row(3, 16, 1, 2, 1, F),),
        (Row(3, 24, 2, 1, 5, F), Row(3, 24, 1, 5, 2, F)),
        (Row(5, 40, 2, 1, 4, T), Row(3, 40, 1, 4, 3, T)),
        (Row(3, 72, 2, 1, 5, F), Row(3, 72, 1, 4, 3, F), Row(3, 128, 1, 1, 5, T), Row(5, 128, 1, 6, 3, T)),
        (Row(3, 208, 2, 1, 6, T), Row(5, 208, 1, 5, 5, T), Row(5, 240, 1, 1, 6, T)),
    )),
    "E": Table(264, 24, (
        (Row(3, 16, 1, 3, 1, F),),
        (Row(5, 24, 2, 1, 4, F), Row(5, 24, 1, 4, 2, F)),
        (Row(5, 48, 2, 1, 4, T), Row(5, 48, 1, 4, 3, T)),
        (Row(5, 80, 2, 1, 5, F, dw_pad=1), Row(3, 80, 1, 4, 3, F), Row(3, 128, 1, 1, 5, T),
         Row(5, 128, 1, 7, 3, T)),
        (Row(3, 216, 2, 1, 6, T), Row(5, 216, 1, 5, 5, T), Row(5, 240, 1, 1, 6, T)),
    )),
    "F": Table(272, 24, (
        (Row(3, 24, 1, 3, 1, F),),
        (Row(5, 32, 2, 1, 4, F), Row(5, 32, 1, 4, 2, F)),
        (Row(5, 56, 2, 1, 4, T), Row(5, 56, 1, 4, 3, T)),
        (Row(5, 88, 2, 1, 5, F), Row(3, 88, 1, 4, 3, F), Row(3, 144, 1, 1, 5, T), Row(5, 144, 1, 8, 3, T)),
        (Row(3, 248, 2, 1, 6, T, dw_pad=0), Row(5, 248, 1, 6, 5, T), Row(5, 272, 1, 1, 6, T)),
    )),
    "G": Table(320, 32, (
        (Row(3, 24, 1, 3, 1, F),),
        (Row(5, 40, 2, 1, 4, F), Row(5, 40, 1, 4, 2, F)),
        (Row(5, 56, 2, 1, 4, T), Row(5, 56, 1, 4, 3, T)),
        (Row(5, 104, 2, 1, 5, F), Row(3, 104, 1, 4, 3, F), Row(3, 160, 1, 1, 5, T), Row(5, 160, 1, 8, 3, T)),
        (Row(3, 264, 2, 1, 6, T), Row(5, 264, 1, 6, 5, T), Row(5, 288, 1, 2, 6, T)),
    )),
}


def build_fbnetv3(g: GraphBuilder, x: str, table: Table, classes: int, dropout: float = 0.0) -> str:
    """The whole chain network on ``x``: stem, every row's blocks (``s{stage}.b{i}``), pooled head."""
    with g.scope("stem"):
        x = stem(g, x, table.stem)
    for s, rows in enumerate(table.stages, start=1):
        i = 0
        for row in rows:
            for r in range(row.repeats):
                with g.scope(f"s{s}.b{i}"):
                    x = irf_block(g, x, row.out, row.kernel, row.stride if r == 0 else 1, row.expansion, row.se,
                                  row.dw_pad if r == 0 else None)
                i += 1
    with g.scope("head"):
        return pooled_head(g, x, table.head, table.head_expansion, classes, dropout)


def mobile_cv_cost(arch: ArchSpec) -> dict[str, int]:
    """Params and "flops" by mobile-vision's LUT rule: conv/linear weights only (no biases, no BN); weight
    MACs plus N*C*H*W for every average pool's input. Reproduces the model-info JSON figures exactly."""
    params = flops = 0
    for node in arch.nodes:
        if node.op in ("conv2d", "linear"):
            ins, p = arch.in_shapes(node), node.p
            bias = node.shape[0] if p["bias"] else 0
            weights = OPS[node.op].params(ins, p, node.shape) - bias
            params += weights
            flops += OPS[node.op].macs(ins, p, node.shape)
        elif node.op == "global_avg_pool":
            c, *spatial = arch.in_shapes(node)[0]
            size = c
            for d in spatial:
                size *= d
            flops += size
    return {"params": int(params), "flops": int(flops)}


@SPACES.register("fbnetv3")
class FBNetV3Space(GridSpace):
    """The released FBNetV3 family; the decision is the variant (A-G), width and input size are macro."""

    name = "fbnetv3"
    version = 1
    presets = {
        "imagenet": {"input_shape": [3, None, None], "resolution": None, "num_classes": 1000, "width_mult": 1.0,
                     "dropout": 0.0, "variants": list(TABLES)},
        # CPU: 64 px (the smallest size every variant's odd paddings fit), widths x0.25.
        "small": {"input_shape": [3, 64, 64], "resolution": 64, "num_classes": 10, "width_mult": 0.25,
                  "dropout": 0.0, "variants": list(TABLES)},
    }
    default_preset = "imagenet"

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec((Choice("variant", tuple(self.macro["variants"])),))

    def describe(self, genotype: Genotype) -> str:
        m = genotype.macro_dict
        return f"FBNetV3-{genotype['variant']} x{m['width_mult']} @{self._resolution(genotype)}"

    @staticmethod
    def _resolution(genotype: Genotype) -> int:
        m = genotype.macro_dict
        return int(m["resolution"] or m["input_shape"][1] or TABLES[genotype["variant"]].input_size)

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m = genotype.macro_dict
        table = TABLES[genotype["variant"]].scaled(float(m["width_mult"]))
        g = GraphBuilder()
        x = input_node(g, m["input_shape"], self._resolution(genotype))
        logits = build_fbnetv3(g, x, table, int(m["num_classes"]), float(m["dropout"]))
        return g.build({"logits": logits})


def fbnetv3(variant: str) -> Genotype:
    """The released FBNetV3-``variant`` (ImageNet, 1000 classes, its own input size)."""
    return FBNetV3Space().make({"variant": variant})


def _register(variant: str) -> None:
    def factory() -> Genotype:
        return fbnetv3(variant)

    factory.__doc__ = f"FBNetV3-{variant} as released in mobile-vision ({TABLES[variant].input_size} px, ImageNet)."
    PUBLISHED.register(f"fbnetv3-{variant.lower()}")(factory)


for _variant in TABLES:
    _register(_variant)
