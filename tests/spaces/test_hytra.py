"""HyTra (BossNAS): the path encoding, the space, its published BossNet-T architectures."""

from __future__ import annotations

import itertools
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nas
from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError, UserError
from nas.core.ir import GraphBuilder
from nas.ops import OPS, pair
from nas.spaces.hytra import HyTraSpace, tokens_of
from nas.spaces.hytra import encoding as enc
from nas.spaces.hytra.published import PAPER, bossnet
from nas.testing.skips import require_extra

T0_TOKENS = [5, 4, 3, 3, 3, 2, 3, 0, 0, 0, 1, 0, 0, 0, 0, 0]
T0_STAGES = [[1], [1], [1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0, 0]]


def brute_force(variant: str) -> int:
    """Chain the per-block candidate lists (an enumeration independent of the DP)."""
    ways = {0: 1}
    for block in range(enc.BLOCKS):
        nxt: dict[int, int] = {}
        for level, n in ways.items():
            for path in enc.block_candidates(block, level, variant):
                nxt[enc.end_level(path)] = nxt.get(enc.end_level(path), 0) + n
        ways = nxt
    return sum(ways.values())


def test_token_alphabet_matches_the_reference() -> None:
    assert list(enc.TOKENS) == [0, 1, 2, 3, 4, 5]
    assert [enc.token_level(t) for t in enc.TOKENS] == [3, 3, 2, 2, 1, 0]
    assert [enc.token_op(t) for t in enc.TOKENS] == ["att", "conv", "att", "conv", "conv", "conv"]


def test_space_sizes_by_dp_and_by_chaining_block_lists() -> None:
    assert enc.count("fabric") == 2_818_103
    assert enc.count("restricted") == 1_703_991
    assert enc.count("executable") == 1_663_488
    for variant in enc.VARIANTS:
        assert brute_force(variant) == enc.count(variant)


def test_restricted_lists_have_the_reference_sizes_and_order() -> None:
    sizes = [len(enc.block_candidates(1, level, "restricted")) for level in range(4)]
    assert sizes == [51, 99, 80, 16]
    first = enc.block_candidates(0, 0, "restricted")
    assert first[:3] == [(4, 2, 0, 0), (4, 2, 0, 1), (4, 2, 1, 0)]
    assert first[34:37] == [(4, 4, 4, 4), (5, 4, 2, 0), (5, 4, 2, 1)]
    assert first[-2:] == [(5, 5, 5, 4), (5, 5, 5, 5)]
    second = enc.block_candidates(1, 1, "restricted")
    assert second[0] == (2, 0, 0, 0) and second[64] == (4, 2, 0, 0) and second[-1] == (4, 4, 4, 4)
    assert enc.block_candidates(3, 3, "restricted") == list(itertools.product((0, 1), repeat=4))
    assert enc.block_candidates(2, 2, "restricted")[16] == (2, 0, 0, 0)


def test_executable_applies_the_supernet_op_ranges_in_list_order() -> None:
    restricted = enc.block_candidates(1, 1, "restricted")
    executable = enc.block_candidates(1, 1, "executable")
    assert executable == restricted  # block 1 from 1/8 already stays at 1/8 or coarser
    assert len(enc.block_candidates(1, 0, "executable")) == 35  # no 1/4 layer in block 1
    assert enc.block_candidates(2, 1, "executable") == [p for p in enc.block_candidates(2, 1, "restricted")
                                                        if max(p) <= 3]
    assert enc.block_candidates(0, 0, "executable") == enc.block_candidates(0, 0, "restricted")


def test_fabric_first_block_may_start_at_any_level() -> None:
    paths = enc.block_candidates(0, 0, "fabric")
    assert len(paths) == 131
    assert (2, 2, 2, 2) in paths and (0, 0, 0, 0) in paths
    assert enc.block_candidates(1, 0, "fabric") == enc.block_candidates(1, 0, "restricted")


def test_validity_rules() -> None:
    assert enc.is_valid(T0_TOKENS, "executable")
    vit16 = [2] * 16
    assert enc.is_valid(vit16, "fabric") and not enc.is_valid(vit16, "restricted")
    assert not enc.is_valid([5, 3] + [3] * 14, "fabric")  # skips 1/8
    assert not enc.is_valid([4, 5] + [4] * 14, "fabric")  # back to a finer level
    assert not enc.is_valid(T0_TOKENS[:15], "fabric")
    assert not enc.is_valid([6] + T0_TOKENS[1:], "fabric")
    in_block_1_at_quarter = [5, 5, 5, 5, 5, 4] + [4] * 10
    assert enc.is_valid(in_block_1_at_quarter, "restricted")
    assert not enc.is_valid(in_block_1_at_quarter, "executable")
    with pytest.raises(ValueError, match="unknown hytra variant"):
        enc.is_valid(T0_TOKENS, "full")


def test_validity_agrees_with_block_lists_on_samples() -> None:
    rng = random.Random(0)
    for variant in enc.VARIANTS:
        for _ in range(200):
            tokens = enc.sample_tokens(rng, variant)
            assert enc.is_valid(tokens, variant)
            level = 0
            for b in range(enc.BLOCKS):
                path = tuple(tokens[4 * b:4 * b + 4])
                assert path in enc.block_candidates(b, level, variant)
                level = enc.end_level(path)


def test_sampling_is_uniform_over_paths() -> None:
    # The first token follows the DP counts: the share of paths whose first layer is at 1/8 is the
    # completions from level 1 over all completions; the last block is uniform given the prefix.
    rng = random.Random(1)
    draws = [enc.sample_tokens(rng, "restricted")[0] for _ in range(3000)]
    share = draws.count(4) / len(draws)
    table = enc._completions("restricted")
    expected = table[1][1] / (table[1][1] + table[1][0])
    assert abs(share - expected) < 0.03
    prefix = T0_TOKENS[:12]
    tails = {tuple(enc.sample_tokens(rng, "executable", prefix)[12:]) for _ in range(400)}
    assert len(tails) == 16


def test_stage_encoding_round_trip() -> None:
    assert enc.tokens_to_stages(T0_TOKENS) == T0_STAGES
    assert enc.stages_to_tokens(T0_STAGES) == T0_TOKENS
    r50 = [[1] * 3, [1] * 4, [1] * 6, [1] * 3]
    assert enc.tokens_to_stages(enc.stages_to_tokens(r50)) == r50
    assert enc.stages_to_tokens([[], [], [0] * 16, []]) == [2] * 16
    with pytest.raises(ValueError, match="ResAtt is not available"):
        enc.stages_to_tokens([[0], [], [], []])
    with pytest.raises(ValueError, match="finer resolution"):
        enc.tokens_to_stages([4, 5])


# --- the mhsa op ----------------------------------------------------------------------------------
def test_mhsa_is_standard_scaled_dot_product_attention() -> None:
    import torch

    from nas.backends.torch.ops import MHSA

    heads, dim_head, h, w = 3, 4, 5, 6
    x = torch.randn(2, 3 * heads * dim_head, h, w, generator=torch.Generator().manual_seed(0))
    q, k, v = (t.reshape(2, heads, dim_head, h * w).transpose(-2, -1) for t in x.chunk(3, dim=1))
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v)  # (b, heads, hw, dim_head)
    expected = expected.transpose(-2, -1).reshape(2, heads * dim_head, h, w)
    torch.testing.assert_close(MHSA(heads, dim_head)(x), expected, atol=1e-5, rtol=1e-5)


def test_mhsa_shape_and_cost_rules() -> None:
    op = OPS["mhsa"]
    p = op.normalize({"heads": 4, "dim_head": 64})
    assert op.shape([(768, 14, 14)], p) == (256, 14, 14)
    assert op.macs([(768, 14, 14)], p, (256, 14, 14)) == 2 * 256 * 196**2  # boss_madds: qk logits + v sums
    assert op.params([(768, 14, 14)], p, (256, 14, 14)) == 0
    g = GraphBuilder()
    with pytest.raises(ValueError, match="needs 768 channels"):
        g.add("mhsa", g.input((512, 7, 7)), heads=4, dim_head=64)


# --- the space -------------------------------------------------------------------------------------
SPACES = {variant: HyTraSpace(variant=variant) for variant in enc.VARIANTS}


def test_size_per_variant_and_default_preset() -> None:
    assert {v: s.size() for v, s in SPACES.items()} == {
        "fabric": 2_818_103, "restricted": 1_703_991, "executable": 1_663_488}
    space = HyTraSpace()
    assert space.preset == "cpu" and space.variant == "executable"
    assert HyTraSpace(preset="imagenet").macro["input_shape"] == [3, 224, 224]


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(enc.VARIANTS), st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_operators_keep_paths_legal(variant: str, a: int, b: int) -> None:
    space = SPACES[variant]
    x, y = space.sample(a), space.sample(b)
    for g in (x, y):
        assert enc.is_valid(tokens_of(g), variant)
    child = space.mutate(x, random.Random(a), n=2)
    assert child != x and enc.is_valid(tokens_of(child), variant)
    one = space.mutate(x, random.Random(b))
    assert sum(p != q for p, q in zip(tokens_of(one), tokens_of(x))) == 1
    mixed = space.crossover(x, y, random.Random(b))
    assert enc.is_valid(tokens_of(mixed), variant)
    assert all(t in pair for t, pair in zip(tokens_of(mixed), zip(tokens_of(x), tokens_of(y))))


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(enc.VARIANTS), st.integers(0, 2**31 - 1))
def test_sampled_paths_decode_with_tokens_at_their_levels(variant: str, seed: int) -> None:
    space = SPACES[variant]
    g = space.sample(seed)
    arch = space.decode(g)
    assert arch.output_shapes == {"logits": (10,)}
    for i, token in enumerate(tokens_of(g)):
        out = arch.node(f"layer{i}.act").shape
        size = 64 // (4 << enc.token_level(token))
        assert out == (space.macro["widths"][enc.token_level(token)], size, size)


def test_illegal_paths_and_settings_are_rejected_with_one_line() -> None:
    space = HyTraSpace()
    bad = list(T0_TOKENS)
    bad[5] = 5
    with pytest.raises(GenotypeError, match=r"layer5 \(token 5\) cannot follow"):
        space.make({f"layer{i}": t for i, t in enumerate(bad)})
    vit = [2] * 16
    with pytest.raises(GenotypeError, match="not legal in the executable variant: layer0"):
        space.from_tokens(vit)
    assert SPACES["fabric"].from_tokens(vit)
    with pytest.raises(UserError, match="at least 32x32"):
        HyTraSpace(input_shape=[1, 8, 8])
    with pytest.raises(UserError, match="variant must be one of"):
        HyTraSpace(variant="all")
    with pytest.raises(UserError, match="act must be"):
        HyTraSpace(act="gelu")


def test_genotype_carries_its_variant() -> None:
    g = SPACES["fabric"].from_tokens([2] * 16)
    again = HyTraSpace().validate(g)  # validated against the genotype's own variant
    assert again.macro_dict["variant"] == "fabric"
    assert "hytra 2222|2222|2222|2222 stages [[], [], [0" in HyTraSpace().describe(g)


def test_cpu_t0_matches_the_spec_recount() -> None:
    space = HyTraSpace()
    arch = space.decode(space.from_tokens(T0_TOKENS))
    assert arch_cost(arch)["params"] == 570_178  # spec 2.9: "570K params"
    assert arch.node("layer15.act").shape == (256, 2, 2)
    assert arch.node("layer7.branch.mhsa").p == {"heads": 8, "dim_head": 8}


# --- published -------------------------------------------------------------------------------------
def _empty_stage_terms(name: str) -> tuple[int, int]:
    """(our MACs of the empty-stage convs, what boss_madds.py counts for them: planes^2 3x3 convs at the
    stage's output resolution)."""
    g = nas.published(name)
    arch = HyTraSpace().decode(g)
    ours = sum(_node_macs(arch, n) for n in arch.nodes if n.name.endswith("_empty.conv"))
    res, planes, strides = (56, 56, 28, 14), (64, 128, 256, 512), (1, 2, 2, 2)
    theirs = sum((res[s] // strides[s]) ** 2 * 9 * planes[s] ** 2 for s, stage in enumerate(PAPER[name].stages)
                 if not stage)
    return ours, theirs


def _node_macs(arch, node) -> int:
    return OPS[node.op].macs(arch.in_shapes(node), node.p, node.shape)


@pytest.mark.parametrize("name", ["bossnet-t0", "bossnet-t0-nose", "bossnet-t1", "r50-t", "bot50-t", "dna-t"])
def test_published_macs_match_the_authors_calculator(name: str) -> None:
    cost = nas.cost(name)
    assert abs(cost["macs"] / PAPER[name].calculator_macs - 1) < 0.01, cost
    assert abs(cost["macs"] / PAPER[name].readme_macs - 1) < 0.05


@pytest.mark.parametrize("name", ["vit-t-16", "random-t", "unnas-t"])
def test_empty_stages_are_the_only_difference_to_the_calculator(name: str) -> None:
    ours, theirs = _empty_stage_terms(name)
    assert ours > theirs  # the calculator counts planes->planes, a real stage must change the width
    assert abs((nas.cost(name)["macs"] - ours + theirs) / PAPER[name].calculator_macs - 1) < 0.01


def test_bossnet_t0_counts() -> None:
    nose, t0 = nas.cost("bossnet-t0-nose"), nas.cost("bossnet-t0")
    assert 37_200_000 <= nose["params"] <= 37_330_000  # spec: calculator 37.23M, a module build 37.32M
    assert nose["params"] == 37_319_080
    se = sum(c * (c // 16) * 2 + c // 16 + c for c in (256, 512, 1024, 1024, 1024, 1024, 2048))
    assert t0["params"] - nose["params"] == se  # SE on the 7 ResConv layers only, as the released model
    assert abs(nose["macs"] - 3_442_000_000) < 3_442_000
    t1 = HyTraSpace().decode(nas.published("bossnet-t1"))
    assert t1.node("layer15.act").shape == (2048, 14, 14)
    assert nas.published("bossnet-t0").macro_dict["variant"] == "executable"
    assert nas.published("vit-t-16").macro_dict["variant"] == "fabric"


def test_published_built_in_torch_has_the_analytic_count() -> None:
    import torch

    from nas.backends.torch import count_params

    model = nas.build("bossnet-t0", backend="torch")
    assert count_params(model) == nas.cost("bossnet-t0")["params"]
    model.eval()
    small = bossnet("bossnet-t0", input_shape=[3, 64, 64])
    with torch.no_grad():
        out = nas.build(small, backend="torch")(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


def test_published_built_in_jax_has_the_analytic_count() -> None:
    from nas.backends.jax import count_params

    assert count_params(nas.build("bossnet-t0", backend="jax")) == nas.cost("bossnet-t0")["params"]


@pytest.mark.parametrize("fmt", ["pt2", "onnx"])
def test_export_of_a_network_with_attention(fmt: str, tmp_path) -> None:
    import torch

    from nas.backends.torch import build
    from nas.export import export_model

    g = HyTraSpace().from_tokens(T0_TOKENS)
    out, _ = export_model(g, fmt, tmp_path / f"t0.{fmt}", seed=0)
    x = torch.randn(3, 3, 64, 64)
    model = build(HyTraSpace().decode(g), seed=0).eval()
    with torch.no_grad():
        expected = model(x).numpy()
    if fmt == "pt2":
        got = torch.export.load(str(out)).module()(x).detach().numpy()
    else:
        ort = require_extra("onnxruntime", "export")
        got = ort.InferenceSession(str(out)).run(None, {"input": x.numpy()})[0]
    assert abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("searcher", ["random", "evolution"])
def test_generic_searchers_stay_inside_the_variant(searcher: str) -> None:
    from nas.core.result import Result, TrialState
    from nas.searchers.base import SEARCHERS, Objective

    space = SPACES["restricted"]
    s = SEARCHERS.get(searcher)()
    s.setup(space, 0, Objective("valid_accuracy", "max"))
    seen = set()
    for t in range(40):
        g = s.ask()
        tokens = tokens_of(g)
        assert enc.is_valid(tokens, "restricted")
        seen.add(tuple(tokens))
        score = float(sum(enc.token_op(x) == "att" for x in tokens))
        s.tell(g, Result(trial=t, genotype=g, state=TrialState.COMPLETE, metrics={"valid_accuracy": score}))
    assert len(seen) > 20


@pytest.mark.parametrize(("name", "resolution", "calculator"), [("bossnet-t0", 288, 5_736_000_000),
                                                               ("bossnet-t1", 256, 10_513_000_000)])
def test_upscaled_test_resolutions_match_the_calculator(name: str, resolution: int, calculator: int) -> None:
    macs = nas.cost(bossnet(name, input_shape=[3, resolution, resolution]))["macs"]
    assert abs(macs / calculator - 1) < 0.01


def test_stage_encoding_reads_and_writes_genotypes(tmp_path) -> None:
    space = HyTraSpace(preset="imagenet")
    g = space.from_stages(T0_STAGES)
    assert tokens_of(g) == T0_TOKENS and enc.tokens_to_stages(tokens_of(g)) == T0_STAGES
    assert g == nas.published("bossnet-t0")
    path = tmp_path / "t0.json"
    path.write_text(json.dumps(g.to_json()))
    assert nas.load(path) == g
    with pytest.raises(GenotypeError, match="has 3 layers"):
        space.from_stages([[1], [1], [1], []])
    with pytest.raises(GenotypeError, match="ResAtt is not available"):
        space.from_stages([[0] * 16, [], [], []])


def test_cli_config_resizes_the_data_to_64() -> None:
    from nas.cli.config import compose

    cfg = compose(["space=hytra"])
    assert cfg["dataset"]["resolution"] == 64 and cfg["space"]["preset"] == "cpu"
    assert compose(["space=hytra", "dataset.resolution=96"])["dataset"]["resolution"] == 96


def test_the_calculators_42_65m_counts_weights_only_and_se_on_all_16_layers() -> None:
    """boss_madds.py's T0 figures: conv/FC weights without BN or biases (37.23M for T0 w/o SE), plus a bias-free
    SE of ratio 1/16 on every layer, attention included (42.65M). The released model has SE on ResConv only."""
    arch = HyTraSpace().decode(nas.published("bossnet-t0-nose"))
    weights = 0
    for node in arch.nodes:
        if node.op == "conv2d":
            kh, kw = pair(node.p["kernel"])
            weights += node.shape[0] * arch.in_shapes(node)[0][0] // node.p["groups"] * kh * kw
        elif node.op == "linear":
            weights += arch.in_shapes(node)[0][0] * node.shape[0]
    widths = [arch.node(f"layer{i}.act").shape[0] for i in range(16)]
    se_on_every_layer = sum(2 * c * c // 16 for c in widths)
    assert weights == 37_231_232  # the calculator's 37.23M
    assert abs((weights + se_on_every_layer) / 42_650_000 - 1) < 0.001  # 42,646,144
