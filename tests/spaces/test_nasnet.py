"""The NASNet space: encoding, operators, macro wiring, ScheduledDropPath and the published NASNet-A counts."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nas
from nas.backends import torch as torch_backend
from nas.backends.torch.ops import AvgPool
from nas.backends.torch.schedules import drop_path_rates, set_drop_path_progress
from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, Node
from nas.ops import OPS
from nas.spaces.nasnet import OP_NAMES, NASNetSpace
from nas.spaces.nasnet.cell import Block, Cell
from nas.spaces.nasnet.droppath import drop_rate, keep_prob, layer_drop_rate, progress
from nas.spaces.nasnet.macro import reduction_indices, total_cells
from nas.spaces.nasnet.published import NASNET_A_NORMAL, NASNET_A_REDUCE, PAPER, paper_cost, without_aux
from nas.spaces.nasnet.space import CELLS, label

SMALL = NASNetSpace(preset="small")
DIGITS = NASNetSpace(preset="small", input_shape=[1, 8, 8])


def uniform_cell(op: str, combine: str = "add") -> Cell:
    return Cell(tuple(Block((b, b + 1), (op, op), combine) for b in range(5)))


# --- encoding and operators ---------------------------------------------------------------------
def test_fifty_decisions_with_per_block_cardinalities() -> None:
    spec = SMALL.spec()
    assert len(spec) == 50
    for cell in CELLS:
        for b in range(5):
            assert spec[label(cell, b, "in_a")].options == tuple(range(b + 2))
            assert spec[label(cell, b, "in_b")].options == tuple(range(b + 2))
            assert spec[label(cell, b, "op_a")].options == OP_NAMES and len(OP_NAMES) == 13
            assert spec[label(cell, b, "combine")].options == ("add", "concat")
    assert SMALL.size() == (2 * 2 * 3 * 3 * 4 * 4 * 5 * 5 * 6 * 6 * 13**10 * 2**5) ** 2


def _in_range(g: Genotype) -> bool:
    return all(0 <= g[label(c, b, f)] <= b + 1 for c in CELLS for b in range(5) for f in ("in_a", "in_b"))


def test_mutate_changes_one_decision_within_cardinality() -> None:
    rng = random.Random(0)
    for seed in range(50):
        g = SMALL.sample(seed)
        child = SMALL.mutate(g, rng)
        changed = [k for k, v in child.decisions if g[k] != v]
        assert len(changed) == 1 and _in_range(child)


def test_crossover_takes_whole_blocks() -> None:
    rng = random.Random(1)
    a, b = SMALL.sample(1), SMALL.sample(2)
    for _ in range(20):
        child = SMALL.crossover(a, b, rng)
        for cell in CELLS:
            for k in range(5):
                labels = [label(cell, k, f) for f in ("in_a", "in_b", "op_a", "op_b", "combine")]
                assert [child[x] for x in labels] in ([a[x] for x in labels], [b[x] for x in labels])


def test_canonical_ignores_branch_order_of_add_blocks() -> None:
    g = SMALL.sample(3)
    swapped = g.replace(**{label("normal", 0, "in_a"): g[label("normal", 0, "in_b")],
                           label("normal", 0, "in_b"): g[label("normal", 0, "in_a")],
                           label("normal", 0, "op_a"): g[label("normal", 0, "op_b")],
                           label("normal", 0, "op_b"): g[label("normal", 0, "op_a")],
                           label("normal", 0, "combine"): "add"})
    base = g.replace(**{label("normal", 0, "combine"): "add"})
    assert SMALL.canonical(swapped) == SMALL.canonical(base)


def test_bad_concat_list_is_rejected() -> None:
    g = SMALL.sample(0)
    macro = {**g.macro_dict, "normal_concat": [0, 9]}
    with pytest.raises(GenotypeError, match="normal_concat"):
        SMALL.validate(Genotype.make(g.space, g.version, g.values, macro))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1))
def test_random_genotypes_decode(seed: int) -> None:
    arch = DIGITS.decode(DIGITS.sample(seed))
    assert arch.output_shapes == {"logits": (10,)}


@pytest.mark.parametrize("seed", range(4))
def test_sampled_genotypes_run_forward_in_torch(seed: int) -> None:
    g = DIGITS.sample(1000 + seed)
    model = nas.build(g, backend="torch")
    model.train()
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("op", OP_NAMES)
def test_every_op_builds_and_runs_in_both_cells(op: str) -> None:
    g = DIGITS.from_cells(uniform_cell(op, "concat"), uniform_cell(op))
    arch = DIGITS.decode(g)
    model = torch_backend.build(arch, seed=0)
    assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert torch_backend.count_params(model) == arch_cost(arch)["params"]


# --- macro --------------------------------------------------------------------------------------
def test_reduction_placement_matches_the_reference() -> None:
    assert reduction_indices(18, 2) == [6, 12]
    assert reduction_indices(12, 2) == [4, 8]
    assert reduction_indices(3, 2) == [1, 2]
    assert total_cells(SMALL.macro) == 5 and total_cells(NASNetSpace(preset="mobile").macro) == 16


def test_spatial_flow_of_the_imagenet_presets() -> None:
    for name, sizes in (("nasnet-a-mobile", (111, 56, 28, 14, 7)), ("nasnet-a-large", (165, 83, 42, 21, 11))):
        arch = without_aux(nas.published(name))
        assert arch.node("stem.bn").shape[1] == sizes[0]
        assert arch.node("stem_cell0.out").shape[1] == sizes[1]
        assert arch.node("stem_cell1.out").shape[1] == sizes[2]
        assert arch.node("reduction0.out").shape[1] == sizes[3]
        assert arch.node("reduction1.out").shape[1] == sizes[4]


def test_aux_head_is_a_second_output_counted_apart() -> None:
    arch = NASNetSpace(preset="cifar").decode(nas.published("nasnet-a-cifar"))
    assert arch.output_shapes == {"logits": (10,), "aux_logits": (10,)}
    cost, main = arch_cost(arch), paper_cost("nasnet-a-cifar")
    assert (cost["params"], cost["macs"]) == (main["params"], main["macs"])
    # after cell11 (384 x 16 x 16): 5x5/3 pool -> 4x4; proj 1x1, BN, 4x4 conv to 768, BN, linear
    aux_params = 384 * 128 + 2 * 128 + 128 * 768 * 16 + 2 * 768 + 768 * 10 + 10
    assert cost["params_with_aux"] == cost["params"] + aux_params
    assert nas.cost(nas.published("nasnet-a-mobile"))["params"] == 5_289_978


# --- published NASNet-A -------------------------------------------------------------------------
def node_params(arch: ArchSpec, node: Node) -> int:
    return OPS[node.op].params(arch.in_shapes(node), node.p, node.shape)


def test_published_cells_round_trip() -> None:
    g = nas.published("nasnet-a-mobile")
    assert NASNetSpace().cells(g) == (NASNET_A_NORMAL, NASNET_A_REDUCE)
    assert Genotype.from_json(g.to_json()) == g
    assert g.macro_dict["normal_concat"] == [0, 2, 3, 4, 5, 6] and g.macro_dict["reduce_concat"] == [3, 4, 5, 6]


@pytest.mark.parametrize("name", ["nasnet-a-mobile", "nasnet-a-large"])
def test_imagenet_counts_within_one_percent_of_the_paper(name: str) -> None:
    _, params, macs = PAPER[name]
    cost = paper_cost(name)
    assert abs(cost["params"] / params - 1) < 0.01
    assert abs(cost["macs"] / macs - 1) < 0.01


def test_cifar_count_is_the_reference_count() -> None:
    """3,346,538: what TF-Slim's ``build_nasnet_cifar`` creates, cell by cell (+1.4% on the printed 3.3M; docs)."""
    arch = without_aux(nas.published("nasnet-a-cifar"))
    assert arch_cost(arch)["params"] == 3_346_538
    per_cell: dict[str, int] = {}
    for node in arch.nodes[1:]:
        scope = node.name.split(".")[0]
        per_cell[scope] = per_cell.get(scope, 0) + node_params(arch, node)
    assert per_cell["stem"] == 3 * 9 * 96 + 2 * 96
    # cell0 reads the unadapted 96-channel stem as h_{i-1} and projects it (1x1 + BN) only for its output concat
    assert per_cell["cell0"] == 40_384 and per_cell["cell5"] == 28_224 and per_cell["reduction0"] == 87_168
    assert per_cell["cell17"] == 383_232 and per_cell["head"] == 768 * 10 + 10


@pytest.mark.parametrize(("name", "keras_total"), [("nasnet-a-mobile", 5_326_716), ("nasnet-a-large", 88_949_818)])
def test_imagenet_counts_equal_keras_with_batchnorm_statistics(name: str, keras_total: int) -> None:
    """Keras's ports of the TF-Slim checkpoints report these totals (trainable + BN moving mean/variance)."""
    arch = without_aux(nas.published(name))
    statistics = sum(2 * node.shape[0] for node in arch.nodes if node.op == "batchnorm")
    assert arch_cost(arch)["params"] + statistics == keras_total


def test_explicit_concat_lists_change_the_count() -> None:
    g = nas.published("nasnet-a-cifar")
    loose = {**g.macro_dict, "normal_concat": "loose_end", "reduce_concat": "loose_end"}
    arch = without_aux(Genotype.make(g.space, g.version, g.values, loose))
    assert arch_cost(arch)["params"] == 3_076_906
    assert arch.node("cell17.out").shape[0] == 5 * 128


@pytest.mark.parametrize("name", ["nasnet-a-cifar", "nasnet-a-mobile"])
def test_torch_counts_equal_the_analytic_count(name: str) -> None:
    arch = without_aux(nas.published(name))
    assert torch_backend.count_params(torch_backend.build(arch)) == arch_cost(arch)["params"]


@pytest.mark.parametrize("name", [pytest.param("nasnet-a-cifar", marks=pytest.mark.slow), "nasnet-a-mobile"])
def test_torch_flop_counter_equals_the_analytic_macs(name: str) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    arch = without_aux(nas.published(name))
    model = torch_backend.build(arch).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, *arch.input_shape))
    # the torch backend pools with a depthwise convolution (see AvgPool), which torch counts; MACs never count
    # pooling, so those window sums are taken out (and must be there: the pooling ops are in the network)
    pools = {f"{type(model).__name__}.{name}" for name, m in model.named_modules() if isinstance(m, AvgPool)}
    counts = counter.get_flop_counts()
    pooled = sum(sum(counts[name].values()) for name in pools if name in counts)
    assert pools and pooled > 0
    assert counter.get_total_flops() - pooled == 2 * arch_cost(arch)["macs"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PAPER))
def test_jax_and_torch_counts_of_every_published_model(name: str) -> None:
    from nas.backends import jax as jax_backend

    arch = without_aux(nas.published(name))
    expected = arch_cost(arch)["params"]
    assert torch_backend.count_params(torch_backend.build(arch)) == expected
    assert jax_backend.count_params(jax_backend.build(arch)) == expected


# --- ScheduledDropPath --------------------------------------------------------------------------
def test_drop_path_schedule_values() -> None:
    assert layer_drop_rate(0, 20, 0.6) == pytest.approx(0.02)
    assert layer_drop_rate(19, 20, 0.6) == pytest.approx(0.4)
    assert drop_rate(19, 20, 0, 1000, 0.6) == 0.0
    assert drop_rate(19, 20, 500, 1000, 0.6) == pytest.approx(0.2)
    assert drop_rate(19, 20, 5000, 1000, 0.6) == pytest.approx(0.4)
    assert keep_prob(9, 20, 250, 1000, 0.7) == pytest.approx(1 - 0.25 * (10 / 20) * 0.3)
    assert progress(3, 0) == 1.0 and layer_drop_rate(5, 20, 1.0) == 0.0
    with pytest.raises(ValueError):
        layer_drop_rate(20, 20, 0.6)


def test_arch_spec_carries_the_depth_part() -> None:
    arch = without_aux(nas.published("nasnet-a-cifar"))
    rates = {n.name.split(".")[0]: n.p["rate"] for n in arch.nodes if n.op == "drop_path"}
    assert rates["cell0"] == pytest.approx(1 / 20 * 0.4)
    assert rates["reduction0"] == pytest.approx(7 / 20 * 0.4)
    assert rates["cell17"] == pytest.approx(0.4)
    assert not any(n.op == "drop_path" for n in without_aux(nas.published("nasnet-a-mobile")).nodes)
    identity_drops = [n for n in arch.nodes if n.op == "drop_path" and (
        (n.name.startswith("cell") and ".b2.b." in n.name) or (n.name.startswith("red") and ".b3.a." in n.name))]
    assert not identity_drops


def test_set_drop_path_progress_scales_the_rates() -> None:
    model = nas.build(DIGITS.sample(0), backend="torch")
    full = drop_path_rates(model)
    assert full and max(full) == pytest.approx(0.4)
    assert set_drop_path_progress(model, 0.25) == len(full)
    assert drop_path_rates(model) == pytest.approx([r * 0.25 for r in full])
    set_drop_path_progress(model, 0.0)
    model.train()
    x = torch.randn(4, 1, 8, 8)
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    assert torch.allclose(a, model(x))


@pytest.mark.slow
def test_backend_parity_on_a_genotype_with_every_op() -> None:
    from nas.testing.parity import check_parity

    ops = list(OP_NAMES) * 2
    normal = Cell(tuple(Block((b, b + 1), (ops[2 * b], ops[2 * b + 1]), "concat" if b == 4 else "add")
                        for b in range(5)))
    reduce = Cell(tuple(Block((b % 2, b + 1), (ops[10 + 2 * b], ops[11 + 2 * b])) for b in range(5)),
                  concat=(0, 1, 5, 6))
    result = check_parity(DIGITS.decode(DIGITS.from_cells(normal, reduce)))
    assert result["ok"], result
