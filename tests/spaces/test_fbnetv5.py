"""FBNetV5 space: the supernet plan, decode as its composition, heads, sizes, transfer, forward passes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nas.core.errors import UserError
from nas.spaces.fbnet.fbnetv3 import TABLES
from nas.spaces.fbnet.fbnetv5 import PRESETS, FBNetV5Space
from nas.spaces.fbnet.plan import compose, fragment_cost, unit_cost
from nas.spaces.fbnet.supernet import supernet_plan

CPU_HEADS = {
    "logits": (10,), "seg": (10, 16, 16),
    "det.l3.cls": (10, 8, 8), "det.l3.box": (4, 8, 8), "det.l3.ctr": (1, 8, 8),
    "det.l4.cls": (10, 4, 4), "det.l4.box": (4, 4, 4), "det.l4.ctr": (1, 4, 4),
    "det.l5.cls": (10, 2, 2), "det.l5.box": (4, 2, 2), "det.l5.ctr": (1, 2, 2),
}


def _chosen_total(space: FBNetV5Space, genotype) -> dict[str, int]:
    plan, costs = supernet_plan(genotype), unit_cost(supernet_plan(genotype))
    total = {"params": 0, "macs": 0}
    for unit in plan.units:
        kept = unit.decision is None or genotype[unit.decision] == 1
        for key in total:
            total[key] += costs[unit.name]["kept" if kept else "skipped"][key]
    return total


@pytest.mark.parametrize("preset", ["cpu", "A"])
def test_decode_is_the_composition_of_the_chosen_fragments(preset: str) -> None:
    space = FBNetV5Space(preset)
    for seed in range(3):
        g = space.sample(seed)
        arch = space.decode(g)
        assert arch == compose(space.plan(), g.values)
        assert fragment_cost(arch) == _chosen_total(space, g)


def test_plan_units_are_ordered_and_shapes_fit() -> None:
    plan = FBNetV5Space("A").plan()
    seen = {plan.input}
    for unit in plan.units:
        assert all(i in seen for i in unit.inputs), unit.name
        assert len(unit.kept.inputs) == len(unit.inputs)
        if unit.skipped is not None:
            assert unit.skipped.output_shapes == unit.kept.output_shapes
            assert unit.skipped.input_shape == unit.kept.input_shape
        elif unit.decision is not None:
            assert unit.kept.output_shapes["out"] == unit.kept.input_shape
        seen.add(unit.name)
    assert plan.decisions == FBNetV5Space("A").spec().labels
    assert set(plan.outputs) == set(CPU_HEADS)
    assert [u.name for u in plan.units if u.name.startswith("f")] == ["f1.0", "f1.1", "f2.0", "f2.1", "f2.2"]


def test_a_grid_holds_fbnetv3_a_rows_on_its_main_path() -> None:
    space = FBNetV5Space("A")
    slots = space.slots()
    per_path = {(s, p): sum(1 for x in slots if (x.stage, x.path) == (s, p)) for s in range(4) for p in range(s + 1)}
    # FBNetV3-A: 2 + 4 blocks at 1/2 and 1/4, 5 at 1/8, 11 at 1/16, 7 at 1/32; two branch blocks per older path
    assert per_path == {(0, 0): 6, (1, 0): 2, (1, 1): 5, (2, 0): 2, (2, 1): 2, (2, 2): 11,
                        (3, 0): 2, (3, 1): 2, (3, 2): 2, (3, 3): 7}
    arch = space.decode(space.make({label: 1 for label in space.spec().labels}))
    widths = [arch.node(f"b{s}.{s}.0.pwl.conv").shape for s in range(1, 4)]
    assert widths == [(40, 28, 28), (72, 14, 14), (184, 7, 7)]
    assert arch.node("head.cls.expand.conv").shape == (1344, 7, 7)


def test_heads_shapes_and_task_selection() -> None:
    space = FBNetV5Space("cpu")
    arch = space.decode(space.sample(0))
    assert arch.output_shapes == CPU_HEADS
    only_cls = FBNetV5Space("cpu", tasks=["classification"])
    assert only_cls.decode(only_cls.sample(0)).output_shapes == {"logits": (10,)}
    seg_det = FBNetV5Space("cpu", tasks=["detection", "segmentation"], seg_classes=3, det_classes=5)
    assert seg_det.macro["tasks"] == ["segmentation", "detection"]
    shapes = seg_det.decode(seg_det.sample(0)).output_shapes
    assert shapes["seg"] == (3, 16, 16) and shapes["det.l5.cls"] == (5, 2, 2) and "logits" not in shapes


def test_classification_only_plan_drops_blocks_that_feed_no_head() -> None:
    space = FBNetV5Space("cpu", tasks=["classification"])
    live = set(space.plan().decisions)
    dead = set(space.spec().labels) - live
    assert dead == {"b3.0.0", "b3.1.0", "b3.2.0"}
    g = space.sample(0)
    flipped = g.replace(**{label: 1 - g[label] for label in dead})
    assert space.canonical(flipped) == space.canonical(g) and flipped != g
    assert space.decode(flipped) == space.decode(g)


def test_skipped_blocks_are_identity_or_adapters() -> None:
    space = FBNetV5Space("cpu")
    plan = space.plan()
    adapters = {u.name for u in plan.units if u.skipped is not None}
    assert adapters == {"b0.0.1", "b1.1.0", "b2.2.0", "b2.2.2", "b3.3.0", "b3.3.2"}
    ops = {n.op for n in plan.unit("b1.1.0").skipped.nodes}
    assert ops == {"input", "avg_pool", "conv2d", "batchnorm"}
    none = space.make({label: 0 for label in space.spec().labels})
    assert space.decode(none).output_shapes == CPU_HEADS


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_size_decodes(preset: str) -> None:
    space = FBNetV5Space(preset)
    arch = space.decode(space.sample(1))
    res = PRESETS[preset]["resolution"]
    assert arch.output_shapes["seg"][1:] == (-(-res // 4),) * 2
    assert arch.output_shapes["det.l5.box"][1:] == (-(-res // 32),) * 2


def test_odd_sizes_are_cropped_after_upsampling() -> None:
    space = FBNetV5Space("C")  # 248 px: 62, 31, 16, 8
    arch = space.decode(space.make({label: 1 for label in space.spec().labels}))
    assert arch.node("f2.1.from2.crop").shape[1:] == (31, 31)
    assert arch.output_shapes["seg"] == (150, 62, 62)


def test_transfer_keeps_the_topology_per_row() -> None:
    cpu = FBNetV5Space("cpu")
    g = cpu.sample(3)
    a = cpu.transfer(g, "A")
    assert a.macro_dict["size"] == "A" and len(a.values) == len(FBNetV5Space("A").spec())
    rows = {(s.stage, s.path, s.row): g[s.label] for s in cpu.slots()}
    for slot in FBNetV5Space("A").slots():
        assert a[slot.label] == rows[(slot.stage, slot.path, slot.row)], slot.label
    c = FBNetV5Space("A").transfer(a, "C", tasks=["segmentation"])
    assert c.macro_dict["tasks"] == ["segmentation"]
    back = FBNetV5Space("C").transfer(c, "A")
    assert back == FBNetV5Space("A").make(a.values)  # A -> C -> A is lossless (C's rows are at least as long)
    assert FBNetV5Space("A").transfer(a, "AC")["b2.2.3"] == a["b2.2.3"]


def test_size_presets_scale_cost() -> None:
    def macs(preset: str) -> int:
        space = FBNetV5Space(preset, tasks=["classification"])
        return fragment_cost(space.decode(space.make({label: 1 for label in space.spec().labels})))["macs"]

    a = macs("A")
    assert macs("AR") < a and macs("AC") < a < macs("C") < macs("F")


@pytest.mark.parametrize("macro,match", [
    ({"tasks": []}, "tasks"), ({"tasks": ["depth"]}, "tasks"), ({"tasks": ["detection", "detection"]}, "twice"),
    ({"size": "Z"}, "size"), ({"depth_cap": 0}, "depth_cap"), ({"resolution": 16}, "resolution"),
])
def test_bad_macro_settings_are_user_errors(macro: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        FBNetV5Space("cpu", **macro)


def test_sizes_come_from_fbnetv3_tables() -> None:
    assert {PRESETS[p]["size"] for p in ("A", "C", "F", "AR", "AC")} <= set(TABLES)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, 1), min_size=18, max_size=18))
def test_random_masks_decode_and_run(bits: list[int]) -> None:
    import torch

    from nas.backends import torch as torch_backend

    space = FBNetV5Space("cpu")
    g = space.make(dict(zip(space.spec().labels, bits)))
    model = torch_backend.build(space.decode(g), seed=0).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == CPU_HEADS
    assert all(np.isfinite(v.numpy()).all() for v in out.values())
