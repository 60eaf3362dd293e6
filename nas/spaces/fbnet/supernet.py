"""The FBNetV5 supernet layout: FBNetV3 stages on four resolution paths, fusions, task heads, as a ``Plan``.

Layout (our reconstruction, see docs/spaces/fbnetv5.md): a fixed stem (3x3 stride-2 conv), then four
stages. Stage 0 holds the FBNetV3 rows at 1/2 and 1/4 on path 0. Stage s = 1..3 opens path s (1/4 * 2^-s)
with the FBNetV3 rows of that resolution (its first, strided block reads the previous lowest path), while
each older path p < s runs ``branch_blocks`` copies of the last FBNetV3 row at its resolution. Between
stages 1|2 and 2|3 a fusion gives every path the sum of all paths resampled to it (down: depthwise 3x3
stride-2 conv + BN per halving, then 1x1 conv + BN; up: 1x1 conv + BN, nearest upsampling, crop).
Heads: classification on path 3 (FBNetV3's pooled head), segmentation (paths to 1/4, summed, per-pixel
logits), detection (a per-level anchor-free head on paths 1-3: class, box and centerness maps).
Every block is gated by a keep/skip mask; a skipped block is the identity, or where its shape changes
an adapter (3x3 stride-2 average pool and/or 1x1 conv + BN). Fusions, stem and heads are not gated.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder, Shape
from nas.spaces.fbnet.blocks import ACT, Row, conv_bn, irf_block, pooled_head, stem
from nas.spaces.fbnet.fbnetv3 import TABLES, Table
from nas.spaces.fbnet.plan import Plan, Unit
from nas.spaces.scaling.simplenet import resize_input

TASKS = ("classification", "segmentation", "detection")
PATHS = 4
FUSED_STAGES = (1, 2)  # fusion modules sit between stages 1|2 and 2|3 (stage 0 has a single path)


@dataclass(frozen=True)
class Slot:
    """One gated block: its decision label, grid position and the FBNetV3 row it instantiates."""

    label: str
    stage: int
    path: int
    row: int  # row index within (stage, path)
    index: int  # position within the row
    row_spec: Row

    @property
    def stride(self) -> int:
        return self.row_spec.stride if self.index == 0 else 1


def table_of(macro: Mapping[str, Any]) -> Table:
    """The FBNetV3 table of the macro's ``size``, widths scaled by ``width_mult``."""
    return TABLES[str(macro["size"])].scaled(float(macro["width_mult"]))


def path_rows(macro: Mapping[str, Any]) -> dict[tuple[int, int], list[Row]]:
    """(stage, path) -> its rows, each row's repeats capped by ``depth_cap`` (when set)."""
    table = table_of(macro)
    cap = macro.get("depth_cap")

    def capped(row: Row, repeats: int | None = None) -> Row:
        n = row.repeats if repeats is None else repeats
        n = min(n, int(cap)) if cap else n
        return Row(row.kernel, row.out, row.stride, n, row.expansion, row.se)  # 'same' padding: paths align

    rows: dict[tuple[int, int], list[Row]] = {(0, 0): [capped(r) for r in (*table.stages[0], *table.stages[1])]}
    branch = int(macro["branch_blocks"])
    for s in range(1, PATHS):
        for p in range(s):
            last = table.stages[p + 1][-1]
            rows[(s, p)] = [capped(Row(last.kernel, last.out, 1, branch, last.expansion, last.se), branch)]
        rows[(s, s)] = [capped(r) for r in table.stages[s + 1]]
    return rows


def block_slots(macro: Mapping[str, Any]) -> list[Slot]:
    """Every gated block in plan order (stage by stage, path by path)."""
    slots = []
    rows = path_rows(macro)
    for s in range(PATHS):
        for p in range(s + 1):
            i = 0
            for r, row in enumerate(rows[(s, p)]):
                for k in range(row.repeats):
                    slots.append(Slot(f"b{s}.{p}.{i}", s, p, r, k, row))
                    i += 1
    return slots


def _fragment(shapes: Sequence[Shape], body: Callable[[GraphBuilder, list[str]], str | dict[str, str]]) -> ArchSpec:
    g = GraphBuilder()
    xs = [g.input(tuple(shape), name=f"in{i}") for i, shape in enumerate(shapes)]
    out = body(g, xs)
    return g.build({"out": out} if isinstance(out, str) else out)


def _halve(g: GraphBuilder, x: str, prefix: str) -> str:
    return conv_bn(g, x, g.shape(x)[0], 3, 2, groups=g.shape(x)[0], act=None, prefix=prefix)


def _upsample_to(g: GraphBuilder, x: str, scale: int, size: tuple[int, int], name: str) -> str:
    """Nearest upsampling by ``scale``, then crop right/bottom to ``size`` (odd sizes upsample too far)."""
    x = g.add("upsample", x, scale=scale, name=f"{name}.up")
    _, h, w = g.shape(x)
    if (h, w) != size:
        x = g.add("pad", x, pads=(0, size[1] - w, 0, size[0] - h), name=f"{name}.crop")
    return x


def _resample(g: GraphBuilder, x: str, src: int, dst: int, target: Shape, name: str) -> str:
    """Path ``src`` -> path ``dst`` (shape ``target``): identity, down (halvings + 1x1) or up (1x1 + upsample)."""
    if src == dst:
        return x
    if src < dst:
        for k in range(dst - src):
            x = _halve(g, x, f"{name}.down{k}.")
        return conv_bn(g, x, target[0], act=None, prefix=f"{name}.proj.")
    x = conv_bn(g, x, target[0], act=None, prefix=f"{name}.proj.")
    return _upsample_to(g, x, 2 ** (src - dst), (target[1], target[2]), name)


def _block_fragments(slot: Slot, shape: Shape) -> tuple[ArchSpec, ArchSpec | None]:
    row = slot.row_spec

    def kept(g: GraphBuilder, xs: list[str]) -> str:
        return irf_block(g, xs[0], row.out, row.kernel, slot.stride, row.expansion, row.se)

    kept_arch = _fragment([shape], kept)
    out_shape = kept_arch.output_shapes["out"]
    if out_shape == tuple(shape):
        return kept_arch, None

    def adapter(g: GraphBuilder, xs: list[str]) -> str:
        x = xs[0]
        if slot.stride == 2:
            x = g.add("avg_pool", x, kernel=3, stride=2, padding=1, count_include_pad=False, name="pool")
        if g.shape(x)[0] != out_shape[0]:
            x = conv_bn(g, x, out_shape[0], act=None, prefix="proj.")
        return x

    skipped = _fragment([shape], adapter)
    assert skipped.output_shapes["out"] == out_shape, (slot.label, skipped.output_shapes, out_shape)
    return kept_arch, skipped


def _seg_head(macro: Mapping[str, Any]) -> Callable[[GraphBuilder, list[str]], dict[str, str]]:
    def body(g: GraphBuilder, xs: list[str]) -> dict[str, str]:
        _, h, w = g.shape(xs[0])
        terms = []
        for p, x in enumerate(xs):
            with g.scope(f"p{p}"):
                y = conv_bn(g, x, int(macro["seg_width"]), act=None, prefix="proj.")
                terms.append(_upsample_to(g, y, 2 ** p, (h, w), "resize") if p else y)
        y = g.add("add", *terms, name="sum")
        y = g.add("act", y, fn=ACT, name="act")
        return {"seg": g.add("conv2d", y, out_channels=int(macro["seg_classes"]), kernel=1, bias=True,
                             name="classifier")}
    return body


def _det_head(macro: Mapping[str, Any]) -> Callable[[GraphBuilder, list[str]], dict[str, str]]:
    width, depth, classes = int(macro["det_width"]), int(macro["det_depth"]), int(macro["det_classes"])

    def body(g: GraphBuilder, xs: list[str]) -> dict[str, str]:
        out = {}
        for p, x in zip(range(1, PATHS), xs):
            level = f"l{p + 2}"
            with g.scope(level):
                y = conv_bn(g, x, width, prefix="stem.")
                for k in range(depth):
                    y = conv_bn(g, y, width, 3, groups=width, prefix=f"tower{k}.dw.")
                    y = conv_bn(g, y, width, prefix=f"tower{k}.pw.")
                pred = g.add("conv2d", y, out_channels=classes + 5, kernel=1, bias=True, name="pred")
                for name, start, stop in (("cls", 0, classes), ("box", classes, classes + 4),
                                          ("ctr", classes + 4, classes + 5)):
                    out[f"det.{level}.{name}"] = g.add("channel_slice", pred, start=start, stop=stop, name=name)
        return out
    return body


def _macro_key(macro: Mapping[str, Any]) -> tuple:
    return Genotype.make("fbnetv5", 0, {}, macro).macro


def build_plan(macro: Mapping[str, Any]) -> Plan:
    """The supernet plan of a full fbnetv5 macro (cached: plans are immutable)."""
    return _build_plan(_macro_key(macro))


@lru_cache(maxsize=16)
def _build_plan(key: tuple) -> Plan:
    macro = Genotype("fbnetv5", 0, (), key).macro_dict
    table = table_of(macro)
    c, h, w = macro["input_shape"]
    res = int(macro["resolution"])
    input_shape = (int(c), int(h or res), int(w or res))
    units: list[Unit] = []
    shapes: dict[str, Shape] = {"input": input_shape}

    def add(name: str, inputs: tuple[str, ...], kept: ArchSpec, skipped: ArchSpec | None = None,
            decision: str | None = None) -> str:
        units.append(Unit(name, inputs, kept, skipped, decision))
        if "out" in kept.output_shapes:
            shapes[name] = kept.output_shapes["out"]
        return name

    def stem_body(g: GraphBuilder, xs: list[str]) -> str:
        x = resize_input(g, xs[0], res) if (input_shape[1], input_shape[2]) != (res, res) else xs[0]
        return stem(g, x, table.stem)

    tails = [add("stem", ("input",), _fragment([input_shape], stem_body))]
    slots = block_slots(macro)
    for s in range(PATHS):
        if s - 1 in FUSED_STAGES:
            tails = _fuse(add, shapes, tails, s - 1)
        if s > 0:  # path s starts from the lowest-resolution path
            tails.append(tails[-1])
        for slot in (x for x in slots if x.stage == s):
            kept, skipped = _block_fragments(slot, shapes[tails[slot.path]])
            tails[slot.path] = add(slot.label, (tails[slot.path],), kept, skipped, slot.label)

    tasks = list(macro["tasks"])
    outputs: dict[str, tuple[str, str]] = {}
    heads: list[tuple[str, tuple[str, ...], Callable]] = []
    if "classification" in tasks:
        def cls_body(g: GraphBuilder, xs: list[str]) -> dict[str, str]:
            return {"logits": pooled_head(g, xs[0], table.head, table.head_expansion, int(macro["num_classes"]),
                                          float(macro["dropout"]))}
        heads.append(("head.cls", (tails[3],), cls_body))
    if "segmentation" in tasks:
        heads.append(("head.seg", tuple(tails), _seg_head(macro)))
    if "detection" in tasks:
        heads.append(("head.det", tuple(tails[1:]), _det_head(macro)))
    for name, inputs, body in heads:
        kept = _fragment([shapes[i] for i in inputs], body)
        add(name, inputs, kept)
        outputs.update({head: (name, head) for head, _ in kept.outputs})
    return Plan("input", input_shape, _live(units, [name for name, _, _ in heads]), outputs)


def _fuse(add: Callable, shapes: dict[str, Shape], tails: list[str], stage: int) -> list[str]:
    """Fusion after ``stage``: every path gets the sum of all paths resampled to it."""
    fused = []
    for q in range(len(tails)):
        def body(g: GraphBuilder, xs: list[str], q: int = q) -> str:
            terms = [_resample(g, x, p, q, shapes[tails[q]], f"from{p}") for p, x in enumerate(xs)]
            return g.add("add", *terms, name="sum")
        fused.append(add(f"f{stage}.{q}", tuple(tails), _fragment([shapes[t] for t in tails], body)))
    return fused


def _live(units: list[Unit], roots: list[str]) -> tuple[Unit, ...]:
    """The units the heads depend on (blocks that only feed heads not built are dropped), in order."""
    needed = set(roots)
    for unit in reversed(units):
        if unit.name in needed:
            needed.update(unit.inputs)
    return tuple(u for u in units if u.name in needed)


def supernet_plan(space_or_macro: Any) -> Plan:
    """The plan of an ``fbnetv5`` space, of a genotype of it, or of a full macro mapping."""
    macro = getattr(space_or_macro, "macro", space_or_macro)
    if hasattr(space_or_macro, "macro_dict"):
        macro = space_or_macro.macro_dict
    return build_plan(macro)
