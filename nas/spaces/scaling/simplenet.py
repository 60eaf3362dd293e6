"""SimpleNet (Hasanpour et al., arXiv 1608.06037) as a searchable scaling space.

The 13-layer plain network: 3x3 convs (bias, BN, ReLU), two 1x1 convs near the end, 2x2 max-pools,
a global max-pool, dropout and a linear classifier. Decisions: the published layer ``table`` (CIFAR
310k / 460k / 5m, ImageNet 5m / 9m), ``width_mult`` (every layer's channels, rounded), ``depth_mult``
(our extension: each homogeneous group, a run of at least two 3x3 convs of one width between
pools, is lengthened to ``ceil(n * depth_mult)`` layers), ``stride_mode`` (m0-m4 of the authors' code:
which layer indices, pools counted, get stride 2), input ``resolution`` and ``dropout`` (after every
pool and before the classifier). BN is on every conv, as in the authors' PyTorch port (momentum 0.05), and the
dropout is channel-wise as the port's ``nn.Dropout2d`` / ``F.dropout2d`` (whole feature maps; the original
Caffe prototxts use Caffe's element-wise ``Dropout`` layer instead). See docs/spaces/scaling.md.

Each preset's option lists are macro settings, so a CPU preset keeps the labels and value types
(the encoding) on a smaller grid; a genotype is validated against the grid stored in its own macro.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import GenotypeError, UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import PUBLISHED, SPACES, SearchSpace

# Layer tables: an int is a 3x3 conv with that many channels, "k<c>" a 1x1 conv, "p" a 2x2 max-pool.
TABLES: dict[str, tuple[int | str, ...]] = {
    "cifar_310k": (64, 32, 32, 32, "p", 32, 32, 64, "p", 64, 64, "p", 128, "k256", "k64", "p", 64),
    "cifar_460k": (32, 32, 32, 64, "p", 64, 64, 64, "p", 64, 64, "p", 96, "k96", "k96", "p", 100),
    "cifar_5m": (64, 128, 128, 128, "p", 128, 128, 256, "p", 256, 256, "p", 512, "k2048", "k256", "p", 256),
    "imagenet_5m": (64, 128, 128, 128, 128, 128, "p", 256, 256, 256, 512, "p", "k2048", "k256", 256),
    "imagenet_9m": (128, 192, 192, 192, 192, 192, "p", 320, 320, 320, 640, "p", "k2560", "k320", 320),
}
# Stride modes of the authors' code: layer index (pools counted) -> stride.
STRIDE_MODES: dict[int, dict[int, int]] = {
    0: {}, 1: {0: 2, 1: 2, 2: 2}, 2: {0: 2, 1: 2, 2: 1, 3: 2}, 3: {0: 2, 1: 2, 2: 1, 3: 1, 4: 2},
    4: {0: 2, 1: 1, 2: 2, 3: 1, 4: 2, 5: 1},
}
BN_MOMENTUM = 0.05
# The PyTorch port redraws every conv weight as Xavier (Glorot) uniform with ReLU gain; conv biases, BN and
# the classifier keep torch's defaults.
CONV_INIT = "xavier_uniform_relu"
# The port drops whole channels (``nn.Dropout2d`` after each pool, ``F.dropout2d`` before the classifier).
CHANNELWISE_DROPOUT = True

_GRID = ("tables", "width_mults", "depth_mults", "stride_modes", "resolutions", "dropouts")


def resize_input(g: GraphBuilder, x: str, size: int) -> str:
    """Bring a square image to ``size`` x ``size``: nearest upsampling by p, then average pooling by q.

    Exact for any rational ratio p/q of sizes (8 -> 32: x4; 32 -> 48: x3 then /2); no parameters.
    """
    _, h, w = g.shape(x)
    if h != w:
        raise UserError(f"scaling spaces need square images, got {h}x{w}")
    if h == size:
        return x
    k = math.gcd(h, size)
    up, down = size // k, h // k
    if up > 1:
        x = g.add("upsample", x, scale=up, name="resize_up")
    if down > 1:
        x = g.add("avg_pool", x, kernel=down, stride=down, padding=0, count_include_pad=True, name="resize_down")
    return x


def input_node(g: GraphBuilder, input_shape: Sequence[Any], resolution: int) -> str:
    """The network input: ``[C, H, W]`` images resized to ``resolution``; ``H, W`` null: they arrive resized."""
    c, h, w = input_shape
    if h is None or w is None:
        return g.input((int(c), resolution, resolution))
    x = g.input((int(c), int(h), int(w)))
    with g.scope("resize"):
        return resize_input(g, x, resolution)


class GridSpace(SearchSpace):
    """A space whose decision options are macro settings; genotypes validate against their own grid."""

    def _frozen_macro(self) -> tuple:
        return Genotype.make(self.name, self.version, {}, self.macro).macro

    def validate(self, genotype: Genotype) -> Genotype:
        if genotype.space == self.name and genotype.version == self.version and genotype.macro != self._frozen_macro():
            try:
                own = type(self)(**genotype.macro_dict)
            except UserError as exc:
                raise GenotypeError(f"genotype macro settings do not fit space {self.name!r}: {exc}") from None
            own.validate(genotype)
            return genotype
        return super().validate(genotype)


def simplenet_layers(table: str, depth_mult: float) -> list[int | str]:
    """The table with each homogeneous run of n >= 2 equal-width 3x3 convs grown to ceil(n * depth_mult)."""
    layers: list[int | str] = []
    run: list[int] = []

    def flush() -> None:
        n = len(run)
        layers.extend(run + ([run[-1]] * (math.ceil(n * depth_mult) - n) if n >= 2 else []))
        run.clear()

    for item in TABLES[table]:
        if isinstance(item, int) and (not run or item == run[-1]):
            run.append(item)
            continue
        flush()
        if isinstance(item, int):
            run.append(item)
        else:
            layers.append(item)
    flush()
    return layers


@SPACES.register("simplenet")
class SimpleNetSpace(GridSpace):
    """SimpleNet family: table x width x depth x stride mode x resolution x dropout."""

    name = "simplenet"
    version = 1
    presets = {
        "cifar": {
            "input_shape": [3, 32, 32], "num_classes": 10,
            "tables": list(TABLES), "width_mults": [0.25, 0.5, 0.75, 1.0], "depth_mults": [1.0, 1.5, 2.0],
            "stride_modes": [0, 1, 2, 3, 4], "resolutions": [32, 48, 64, 96, 128, 160, 192, 224],
            "dropouts": [0.0, 0.1, 0.2],
        },
        "imagenet": {
            "input_shape": [3, None, None], "num_classes": 1000,
            "tables": list(TABLES), "width_mults": [0.25, 0.5, 0.75, 1.0], "depth_mults": [1.0, 1.5, 2.0],
            "stride_modes": [0, 1, 2, 3, 4], "resolutions": [128, 160, 192, 224, 256],
            "dropouts": [0.0, 0.1, 0.2],
        },
        "small": {
            "input_shape": [3, 32, 32], "num_classes": 10,
            "tables": ["cifar_310k", "cifar_460k", "cifar_5m"], "width_mults": [0.125, 0.25],
            "depth_mults": [1.0, 1.5, 2.0], "stride_modes": [0], "resolutions": [16, 24, 32],
            "dropouts": [0.0, 0.1, 0.2],
        },
    }
    default_preset = "cifar"

    def build_spec(self) -> SpaceSpec:
        m = self.macro
        labels = ("table", "width_mult", "depth_mult", "stride_mode", "resolution", "dropout")
        return SpaceSpec(tuple(Choice(label, tuple(m[key])) for label, key in zip(labels, _GRID)))

    def check(self, genotype: Genotype) -> None:
        if genotype["stride_mode"] not in STRIDE_MODES:
            raise GenotypeError(f"stride_mode {genotype['stride_mode']} is not one of {sorted(STRIDE_MODES)}")
        if genotype["table"] not in TABLES:
            raise GenotypeError(f"table {genotype['table']!r} is not one of {', '.join(TABLES)}")

    def describe(self, genotype: Genotype) -> str:
        v = genotype.values
        return (f"simplenet {v['table']} x{v['width_mult']} depth x{v['depth_mult']} m{v['stride_mode']} "
                f"@{v['resolution']} dropout {v['dropout']}")

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m, v = genotype.macro_dict, genotype.values
        g = GraphBuilder()
        x = input_node(g, m["input_shape"], int(v["resolution"]))
        with g.defaults("conv2d", init=CONV_INIT), g.defaults("dropout", channelwise=CHANNELWISE_DROPOUT):
            x = self._body(g, x, v)
            x = self._head(g, x, v, int(m["num_classes"]))
        return g.build({"logits": x})

    def _head(self, g: GraphBuilder, x: str, v: dict[str, Any], num_classes: int) -> str:
        """Global max-pool, dropout (when > 0) and the linear classifier."""
        with g.scope("head"):
            x = g.add("global_max_pool", x, name="pool")
            if v["dropout"] > 0:
                x = g.add("dropout", x, rate=float(v["dropout"]), name="drop")
            return g.add("linear", x, out_features=num_classes, name="classifier")

    def _body(self, g: GraphBuilder, x: str, v: dict[str, Any]) -> str:
        """The table's convs (conv, BN, ReLU) and pools (with dropout), up to the head."""
        strides = STRIDE_MODES[int(v["stride_mode"])]
        conv = pool = 0
        for idx, item in enumerate(simplenet_layers(v["table"], float(v["depth_mult"]))):
            size = g.shape(x)[1]
            if item == "p":
                pool += 1
                if size < 2:  # a pool on a 1x1 map is left out (small inputs with strided modes)
                    continue
                with g.scope(f"pool{pool}"):
                    x = g.add("max_pool", x, kernel=2, stride=strides.get(idx, 2), padding=0, name="pool")
                    if v["dropout"] > 0:
                        x = g.add("dropout", x, rate=float(v["dropout"]), name="drop")
                continue
            conv += 1
            pointwise = isinstance(item, str)
            channels = max(1, round(int(str(item).lstrip("k")) * float(v["width_mult"])))
            kernel = 1 if pointwise else 3
            with g.scope(f"conv{conv}"):
                x = g.add("conv2d", x, out_channels=channels, kernel=kernel, stride=strides.get(idx, 1),
                          padding=kernel // 2, bias=True, name="conv")
                x = g.add("batchnorm", x, momentum=BN_MOMENTUM, name="bn")
                x = g.add("act", x, fn="relu", name="relu")
        return x


def _published(preset: str, resolution: int, **values: Any) -> Genotype:
    space = SimpleNetSpace(preset=preset)
    if preset == "imagenet":
        space = SimpleNetSpace(preset=preset, input_shape=[3, resolution, resolution])
    return space.make({"width_mult": 1.0, "depth_mult": 1.0, "stride_mode": 0, "resolution": resolution,
                       "dropout": 0.0, **values})


@PUBLISHED.register("simplenet-cifar-5m")
def simplenet_cifar_5m() -> Genotype:
    """The 13-layer CIFAR SimpleNet (published 5.48M parameters; CIFAR-10 95.51% in the PyTorch port)."""
    return _published("cifar", 32, table="cifar_5m", dropout=0.1)


@PUBLISHED.register("simplenet-cifar-310k")
def simplenet_cifar_310k() -> Genotype:
    """The slim 310K CIFAR SimpleNet (CIFAR-10 91.98%)."""
    return _published("cifar", 32, table="cifar_310k", dropout=0.1)


@PUBLISHED.register("simplenetv1-5m-m2")
def simplenetv1_5m_m2() -> Genotype:
    """ImageNet SimpleNet 5m, stride mode 2 at 224 (5.75M parameters, 72.03% top-1)."""
    return _published("imagenet", 224, table="imagenet_5m", stride_mode=2)


@PUBLISHED.register("simplenetv1-9m-m2")
def simplenetv1_9m_m2() -> Genotype:
    """ImageNet SimpleNet 9m, stride mode 2 at 224 (9.51M parameters, 74.23% top-1)."""
    return _published("imagenet", 224, table="imagenet_9m", stride_mode=2)
