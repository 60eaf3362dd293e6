"""FBNetV5 (Wu et al., arXiv 2111.10007): the multitask keep/skip supernet space ``fbnetv5``.

One binary decision per block of the supernet (``b{stage}.{path}.{i}``: 1 keeps the FBNetV3 block, 0
skips it); fusions, stem and heads are fixed (see ``nas.spaces.fbnet.supernet`` for the layout and
docs/spaces/fbnetv5.md for what is confirmed and what is our reconstruction). ``decode`` composes the
supernet plan's fragments chosen by the masks (``nas.spaces.fbnet.plan.compose``). Macro ``tasks``
picks the heads; ``size`` (FBNetV3-A/C/F tables), ``width_mult`` and ``resolution`` give the sizes
A, C, F, AR, AC, and ``transfer`` rebuilds a found topology at another size.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.space import SPACES
from nas.spaces.fbnet.fbnetv3 import TABLES
from nas.spaces.fbnet.plan import Plan, compose
from nas.spaces.fbnet.supernet import TASKS, Slot, block_slots, supernet_plan
from nas.spaces.scaling.simplenet import GridSpace

_ALL = list(TASKS)


def _size(size: str, resolution: int, width_mult: float = 1.0, head_width: int = 96, **extra: Any) -> dict[str, Any]:
    return {"input_shape": [3, None, None], "resolution": resolution, "size": size, "width_mult": width_mult,
            "depth_cap": None, "branch_blocks": 2, "tasks": _ALL, "num_classes": 1000, "seg_classes": 150,
            "det_classes": 80, "seg_width": head_width, "det_width": head_width, "det_depth": 2, "dropout": 0.0,
            **extra}


PRESETS: dict[str, dict[str, Any]] = {
    "A": _size("A", 224),
    "C": _size("C", 248, head_width=112),
    "F": _size("F", 272, head_width=128),
    "AR": _size("A", 160),  # A at reduced resolution (the paper's value is unknown; ours)
    "AC": _size("A", 224, width_mult=0.75, head_width=72),  # A with reduced channels (value unknown; ours)
    # CPU: 64 px, widths x0.25, one block per row and per parallel path: the same grid and heads.
    "cpu": _size("A", 64, width_mult=0.25, head_width=16, input_shape=[3, 64, 64], depth_cap=1,
                 branch_blocks=1, num_classes=10, seg_classes=10, det_classes=10, det_depth=1),
}


@SPACES.register("fbnetv5")
class FBNetV5Space(GridSpace):
    """FBNetV5-style multitask supernet: binary keep/skip masks on the blocks of a 4-path FBNetV3 grid."""

    name = "fbnetv5"
    version = 1
    presets = PRESETS
    default_preset = "cpu"

    def __init__(self, preset: str | None = None, **overrides: Any) -> None:
        super().__init__(preset, **overrides)
        m = self.macro
        tasks = m["tasks"]
        if not isinstance(tasks, (list, tuple)) or not tasks or any(t not in TASKS for t in tasks):
            raise UserError(f"fbnetv5 macro 'tasks' must be a non-empty list of {', '.join(TASKS)}; got {tasks!r}")
        if len(set(tasks)) != len(tasks):
            raise UserError(f"fbnetv5 macro 'tasks' lists a task twice: {tasks!r}")
        if m["size"] not in TABLES:
            raise UserError(f"fbnetv5 size {m['size']!r} is not one of {', '.join(TABLES)}")
        if m["depth_cap"] is not None and int(m["depth_cap"]) < 1:
            raise UserError("fbnetv5 macro 'depth_cap' must be null or at least 1")
        if int(m["branch_blocks"]) < 0:
            raise UserError("fbnetv5 macro 'branch_blocks' must be 0 or more")
        if int(m["resolution"]) < 32:
            raise UserError(f"fbnetv5 needs a resolution of at least 32 (four halvings after the stem); "
                            f"got {m['resolution']}")
        self.macro["tasks"] = [t for t in TASKS if t in tasks]  # canonical order: one genotype per task set

    def slots(self) -> list[Slot]:
        """The gated blocks of this space, in decision order."""
        return block_slots(self.macro)

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec(tuple(Choice(slot.label, (0, 1)) for slot in self.slots()))

    def plan(self) -> Plan:
        """The supernet plan of this space's macro settings (what the FBNetV5 searcher trains)."""
        return supernet_plan(self.macro)

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        return compose(supernet_plan(genotype), genotype.values)

    def live_decisions(self, genotype: Genotype) -> tuple[str, ...]:
        """Decisions that reach a built head (blocks feeding only heads not in ``tasks`` are inert)."""
        return supernet_plan(genotype).decisions

    def canonical(self, genotype: Genotype) -> str:
        """Genotypes differing only in inert decisions build the same network."""
        values = genotype.values
        live = {d: values[d] for d in self.live_decisions(genotype)}
        text = json.dumps({"macro": genotype.to_json()["macro"], "live": live}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self, genotype: Genotype) -> str:
        m, values = genotype.macro_dict, genotype.values
        kept, total = Counter(), Counter()
        for slot in block_slots(m):
            total[slot.stage] += 1
            kept[slot.stage] += int(values[slot.label])
        stages = " ".join(f"s{s}:{kept[s]}/{total[s]}" for s in sorted(total))
        tasks = "+".join(t[:3] for t in m["tasks"])
        return f"FBNetV5-{m['size']} x{m['width_mult']} @{m['resolution']} [{tasks}] kept {stages}"

    def transfer(self, genotype: Genotype, preset: str | None = None, **macro: Any) -> Genotype:
        """The same topology in another size (preset and/or macro overrides).

        Blocks correspond by grid position and FBNetV3 row; a row with n source and m target blocks maps
        target block j to source block floor(j * n / m) (a row missing at the source keeps its blocks).
        """
        self.validate(genotype)
        target = FBNetV5Space(preset, **macro)
        source = {(s.stage, s.path, s.row): s for s in block_slots(genotype.macro_dict)}
        counts = Counter((s.stage, s.path, s.row) for s in block_slots(genotype.macro_dict))
        labels = {(s.stage, s.path, s.row, s.index): s.label for s in block_slots(genotype.macro_dict)}
        values = genotype.values
        masks = {}
        for slot in target.slots():
            key = (slot.stage, slot.path, slot.row)
            if key not in source:
                masks[slot.label] = 1
                continue
            target_n = sum(1 for s in target.slots() if (s.stage, s.path, s.row) == key)
            j = math.floor(slot.index * counts[key] / target_n)
            masks[slot.label] = values[labels[(*key, j)]]
        return target.make(masks)
