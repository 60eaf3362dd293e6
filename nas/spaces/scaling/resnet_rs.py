"""ResNet-RS (Bello et al., "Revisiting ResNets", NeurIPS 2021) as a depth x width x resolution space.

Bottleneck ResNet with the ResNet-D stem (three 3x3 convs, then a stride-2 3x3 conv in place of the
max-pool), ResNet-D downsampling shortcuts (2x2 average pool, then 1x1 conv + BN), squeeze-and-
excitation (ratio 0.25 of the block's output width, with biases) after the last BN of each residual
branch, stochastic depth (``drop_path``, rate x (stage + 1) / 5 per stage) and a dropout before the
classifier. ``width_mult`` scales every width, the stem's included.

Each genotype carries the size-dependent regularization of the released configs as its training
recipe (``ResNetRSSpace.recipe``): derived from (depth, resolution) by the rule that reproduces the
table of the released configs; with macro ``regularization: released`` decode applies its dropout and
stochastic depth. The last BN of every residual branch (nodes ``...branch.bn3``) is initialised to
zero as in the reference code (``batchnorm`` with ``zero_init=True``, honoured by both backends).
"""

from __future__ import annotations

from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import PUBLISHED, SPACES
from nas.spaces.scaling.simplenet import GridSpace, input_node

BLOCKS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3),
    270: (4, 29, 53, 4), 350: (4, 36, 72, 4), 420: (4, 44, 87, 4),
}
PLANES = (64, 128, 256, 512)
# The reference's initialisers (resnet_model.py, resnet_layers.py): every conv, the SE ones included, TF1's
# variance_scaling_initializer() with its defaults (scale 1, fan-in, truncated normal; conv biases 0); the
# classifier random_normal_initializer(stddev=0.01) (bias 0).
CONV_INIT = "tf_variance_scaling"
CLASSIFIER_INIT = "normal_0.01"
# (depth, resolution) of the published Pareto set (the released checkpoints).
RELEASED = ((50, 160), (101, 160), (101, 192), (152, 192), (152, 224), (152, 256), (200, 256), (270, 256),
            (350, 256), (350, 320), (420, 320))
_GRID = ("depths", "width_mults", "resolutions")


def released_recipe(depth: int, resolution: int) -> dict[str, Any]:
    """The training recipe of the released configs for a model of this depth and resolution.

    RandAugment magnitude 10 up to 160 px, else 15; dropout 0.4 from 320 px, else 0.25; stochastic
    depth 0.1 from depth 200, else none. This reproduces all eleven released configs.
    """
    return {
        "dropout": 0.4 if resolution >= 320 else 0.25,
        "stochastic_depth": 0.1 if depth >= 200 else 0.0,
        "randaug_layers": 2, "randaug_magnitude": 10 if resolution <= 160 else 15,
        "label_smoothing": 0.1, "weight_decay": 4e-5, "ema": 0.9999,
        "epochs": 350, "batch": 4096, "lr_per_256": 0.1, "momentum": 0.9, "decay": "cosine",
        "zero_init_last_bn": True,
    }


def _width(channels: int, mult: float) -> int:
    return max(1, int(round(channels * mult)))


@SPACES.register("resnet_rs")
class ResNetRSSpace(GridSpace):
    """ResNet-RS: depth preset x width multiplier x input resolution."""

    name = "resnet_rs"
    version = 1
    presets = {
        "imagenet": {
            "input_shape": [3, None, None], "num_classes": 1000, "se_ratio": 0.25, "regularization": "released",
            "depths": list(BLOCKS), "width_mults": [0.25, 0.5, 1.0, 1.5, 2.0],
            "resolutions": [128, 160, 192, 224, 256, 320, 448],
        },
        "small": {
            "input_shape": [3, 32, 32], "num_classes": 10, "se_ratio": 0.25, "regularization": "released",
            "depths": [50, 101], "width_mults": [0.0625, 0.125], "resolutions": [32, 48, 64],
        },
    }
    default_preset = "imagenet"

    def build_spec(self) -> SpaceSpec:
        m = self.macro
        return SpaceSpec(tuple(Choice(label, tuple(m[key]))
                               for label, key in zip(("depth", "width_mult", "resolution"), _GRID)))

    def check(self, genotype: Genotype) -> None:
        if genotype["depth"] not in BLOCKS:
            raise GenotypeError(f"depth {genotype['depth']} is not one of {sorted(BLOCKS)}")
        if genotype.macro_dict.get("regularization") not in ("released", "none"):
            raise GenotypeError("macro 'regularization' must be 'released' or 'none'")

    def recipe(self, genotype: Genotype) -> dict[str, Any]:
        """The genotype's training recipe: the released configs' regularization for its size."""
        return released_recipe(int(genotype["depth"]), int(genotype["resolution"]))

    def describe(self, genotype: Genotype) -> str:
        v, r = genotype.values, self.recipe(genotype)
        return (f"ResNet-RS-{v['depth']} x{v['width_mult']} @{v['resolution']} (dropout {r['dropout']}, "
                f"stochastic depth {r['stochastic_depth']}, RandAugment {r['randaug_magnitude']})")

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m, v = genotype.macro_dict, genotype.values
        w = float(v["width_mult"])
        regularize = m["regularization"] == "released"
        recipe = self.recipe(genotype)
        dropout = recipe["dropout"] if regularize else 0.0
        survival = recipe["stochastic_depth"] if regularize else 0.0
        g = GraphBuilder()
        x = input_node(g, m["input_shape"], int(v["resolution"]))
        with g.defaults("conv2d", init=CONV_INIT), g.defaults("linear", init=CLASSIFIER_INIT):
            with g.scope("stem"):
                for k, (channels, stride) in enumerate(((32, 2), (32, 1), (64, 1), (64, 2))):
                    x = _conv_bn(g, x, _width(channels, w), 3, stride, f"conv{k}", f"bn{k}", relu=True)
            for stage, (blocks, planes) in enumerate(zip(BLOCKS[int(v["depth"])], PLANES)):
                rate = survival * (stage + 2) / 5
                for b in range(blocks):
                    stride = 2 if stage > 0 and b == 0 else 1
                    with g.scope(f"stage{stage + 1}.block{b}"):
                        x = _bottleneck(g, x, _width(planes, w), stride, b == 0, float(m["se_ratio"]), rate)
            with g.scope("head"):
                x = g.add("global_avg_pool", x, name="pool")
                if dropout > 0:
                    x = g.add("dropout", x, rate=dropout, name="drop")
                x = g.add("linear", x, out_features=int(m["num_classes"]), name="classifier")
        return g.build({"logits": x})


def _conv_bn(g: GraphBuilder, x: str, out: int, kernel: int, stride: int, conv: str, bn: str, relu: bool,
             zero_init: bool = False) -> str:
    x = g.add("conv2d", x, out_channels=out, kernel=kernel, stride=stride, padding=kernel // 2, name=conv)
    x = g.add("batchnorm", x, name=bn, zero_init=zero_init)
    return g.add("act", x, fn="relu", name=f"{bn}_relu") if relu else x


def _bottleneck(g: GraphBuilder, x: str, planes: int, stride: int, project: bool, se_ratio: float,
                drop_rate: float) -> str:
    shortcut = x
    if project:
        with g.scope("shortcut"):
            if stride == 2:  # ResNet-D: Keras AveragePooling2D(2, 2, padding='same'), then a 1x1 conv
                shortcut = g.add("avg_pool", shortcut, kernel=2, stride=2, padding="same", count_include_pad=False,
                                 name="pool")
            shortcut = _conv_bn(g, shortcut, 4 * planes, 1, 1, "conv", "bn", relu=False)
    with g.scope("branch"):
        y = _conv_bn(g, x, planes, 1, 1, "conv1", "bn1", relu=True)
        y = _conv_bn(g, y, planes, 3, stride, "conv2", "bn2", relu=True)
        y = _conv_bn(g, y, 4 * planes, 1, 1, "conv3", "bn3", relu=False, zero_init=True)
    if se_ratio > 0:
        with g.scope("se"):
            s = g.add("global_avg_pool", y, keepdims=True, name="pool")
            s = g.add("conv2d", s, out_channels=max(1, int(4 * planes * se_ratio)), kernel=1, bias=True,
                      name="reduce")
            s = g.add("act", s, fn="relu", name="relu")
            s = g.add("conv2d", s, out_channels=4 * planes, kernel=1, bias=True, name="expand")
            s = g.add("act", s, fn="sigmoid", name="gate")
            y = g.add("mul", y, s, name="scale")
    if drop_rate > 0:
        y = g.add("drop_path", y, rate=drop_rate, name="drop_path")
    y = g.add("add", y, shortcut, name="add")
    return g.add("act", y, fn="relu", name="relu")


def resnet_rs(depth: int, resolution: int) -> Genotype:
    """The released ResNet-RS-``depth`` at ``resolution`` (ImageNet, 1000 classes)."""
    space = ResNetRSSpace(input_shape=[3, resolution, resolution])
    return space.make({"depth": depth, "width_mult": 1.0, "resolution": resolution})


def _register(name: str, depth: int, resolution: int) -> None:
    def factory() -> Genotype:
        return resnet_rs(depth, resolution)

    factory.__doc__ = f"ResNet-RS-{depth} at {resolution}px, as released (ImageNet)."
    PUBLISHED.register(name)(factory)


for _depth, _res in RELEASED:
    _register(f"resnet-rs-{_depth}-i{_res}", _depth, _res)
# The plain names: the largest released resolution of each depth.
for _depth in BLOCKS:
    _register(f"resnet-rs-{_depth}", _depth, max(r for d, r in RELEASED if d == _depth))
