"""ResNet-RS: the released Pareto set's parameters and FLOPs, the recipe table, the structure, presets."""

from __future__ import annotations

import pytest

import nas
from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.spaces.resolve import space_of
from nas.spaces.scaling.resnet_rs import RELEASED, ResNetRSSpace, released_recipe

# (depth, resolution) -> (published params in millions, published FLOPs = 2 x MACs in billions); table 4.5.
PUBLISHED_TABLE = {
    (50, 160): (35.7, 4.6), (101, 160): (63.6, 8.4), (101, 192): (63.6, 12), (152, 192): (86.6, 18),
    (152, 224): (86.6, 24), (152, 256): (86.6, 31), (200, 256): (93.4, 40), (270, 256): (130, 54),
    (350, 256): (164, 69), (350, 320): (164, 107), (420, 320): (192, 128),
}
# The paper's FLOPs have two significant digits; RS-152 at 192 counts 17.49B, printed as 18B.
FLOPS_TOLERANCE = {(152, 192): 0.03}
# Released configs: (RandAugment magnitude, dropout, stochastic depth).
RECIPES = {
    (50, 160): (10, 0.25, 0.0), (101, 160): (10, 0.25, 0.0), (101, 192): (15, 0.25, 0.0),
    (152, 192): (15, 0.25, 0.0), (152, 224): (15, 0.25, 0.0), (152, 256): (15, 0.25, 0.0),
    (200, 256): (15, 0.25, 0.1), (270, 256): (15, 0.25, 0.1), (350, 256): (15, 0.25, 0.1),
    (350, 320): (15, 0.4, 0.1), (420, 320): (15, 0.4, 0.1),
}


def _cost(name: str) -> dict[str, int]:
    g = nas.published(name)
    return arch_cost(space_of(g).decode(g))


@pytest.mark.parametrize("depth,res", RELEASED)
def test_published_params_and_flops_analytic(depth: int, res: int) -> None:
    params, flops = PUBLISHED_TABLE[(depth, res)]
    cost = _cost(f"resnet-rs-{depth}-i{res}")
    assert cost["params"] / 1e6 == pytest.approx(params, rel=0.01)
    assert 2 * cost["macs"] / 1e9 == pytest.approx(flops, rel=FLOPS_TOLERANCE.get((depth, res), 0.01))


def test_plain_names_are_the_largest_released_resolution() -> None:
    assert nas.published("resnet-rs-50")["resolution"] == 160
    assert nas.published("resnet-rs-152")["resolution"] == 256
    assert nas.published("resnet-rs-420").values == {"depth": 420, "width_mult": 1.0, "resolution": 320}


@pytest.mark.parametrize("depth", [50, 101, 152, 200, 270, 350, 420])
def test_torch_counts_match_the_analytic_count(depth: int) -> None:
    import torch

    from nas.backends import torch as torch_backend

    g = nas.published(f"resnet-rs-{depth}")
    arch = space_of(g).decode(g)
    with torch.device("meta"):  # shapes only: no memory for 192M weights
        model = torch_backend.build(arch)
    assert torch_backend.count_params(model) == arch_cost(arch)["params"]


def _jax_and_analytic_counts(depth: int) -> tuple[int, int]:
    from nas.backends import jax as jax_backend

    g = nas.published(f"resnet-rs-{depth}")
    arch = space_of(g).decode(g)
    return jax_backend.count_params(jax_backend.build(arch)), arch_cost(arch)["params"]


def test_jax_count_rs50() -> None:
    jax_count, analytic = _jax_and_analytic_counts(50)
    assert jax_count == analytic


@pytest.mark.slow
@pytest.mark.parametrize("depth", [101, 152, 200, 270, 350, 420])
def test_jax_counts_larger(depth: int) -> None:
    jax_count, analytic = _jax_and_analytic_counts(depth)
    assert jax_count == analytic


@pytest.mark.parametrize("depth,res", RELEASED)
def test_recipe_reproduces_the_released_configs(depth: int, res: int) -> None:
    recipe = released_recipe(depth, res)
    assert (recipe["randaug_magnitude"], recipe["dropout"], recipe["stochastic_depth"]) == RECIPES[(depth, res)]
    assert recipe["weight_decay"] == 4e-5 and recipe["epochs"] == 350 and recipe["zero_init_last_bn"]


def test_structure_of_rs200() -> None:
    g = nas.published("resnet-rs-200")
    arch = space_of(g).decode(g)
    names = {n.name: n for n in arch.nodes}
    # ResNet-D stem: four 3x3 convs, the last one strided in place of the max-pool.
    assert [names[f"stem.conv{k}"].p["stride"] for k in range(4)] == [2, 1, 1, 2]
    assert arch.node("stem.bn3_relu").shape == (64, 64, 64)
    # ResNet-D shortcut: average pool then 1x1 conv in the first block of stages 2-4; plain 1x1 in stage 1.
    assert "stage2.block0.shortcut.pool" in names and "stage1.block0.shortcut.pool" not in names
    assert names["stage1.block0.shortcut.conv"].p["kernel"] == 1
    # SE of width planes (= 0.25 x 4 planes) with biases, after the (zero-init) last BN of the branch.
    assert names["stage3.block5.se.reduce"].p["out_channels"] == 256 and names["stage3.block5.se.reduce"].p["bias"]
    assert names["stage3.block5.se.pool"].inputs == ("stage3.block5.branch.bn3",)
    # Stochastic depth 0.1 x (stage + 1) / 5; dropout 0.25 before the classifier.
    rates = [names[f"stage{s}.block0.drop_path"].p["rate"] for s in (1, 2, 3, 4)]
    assert rates == pytest.approx([0.04, 0.06, 0.08, 0.1])
    assert names["head.drop"].p["rate"] == 0.25
    assert arch.output_shapes == {"logits": (1000,)}


def test_no_regularization_macro_removes_dropout_and_drop_path() -> None:
    space = ResNetRSSpace(regularization="none", input_shape=[3, 256, 256])
    arch = space.decode(space.make({"depth": 200, "width_mult": 1.0, "resolution": 256}))
    assert not any(n.op in ("dropout", "drop_path") for n in arch.nodes)


def test_small_preset_keeps_the_encoding_and_resizes_digits() -> None:
    full, small = ResNetRSSpace(), ResNetRSSpace(preset="small", input_shape=[1, 8, 8])
    assert full.spec().labels == small.spec().labels == ("depth", "width_mult", "resolution")
    g = small.make({"depth": 50, "width_mult": 0.125, "resolution": 48})
    arch = small.decode(g)
    assert arch.input_shape == (1, 8, 8) and arch.node("resize.resize_up").p["scale"] == 6
    assert round(arch_cost(arch)["params"], -3) == 536_000  # spec 4.7: RS-50 x0.125 = 536K
    # A genotype of the small grid validates in the registered (ImageNet-grid) space: its own macro decides.
    assert space_of(g) is not None and Genotype.from_json(g.to_json()) == g
    # The odd 3x3 map of stage 4 at 48 px: the shortcut pool pads like TF's 'same'.
    assert arch.node("stage4.block0.shortcut.pool").shape[1:] == arch.node("stage4.block0.branch.conv2").shape[1:]


def test_encode_decode_round_trip() -> None:
    space = ResNetRSSpace()
    g = space.make({"depth": 152, "width_mult": 1.5, "resolution": 224})
    assert space.encode(g) == [2.0, 3.0, 3.0]
    assert "ResNet-RS-152 x1.5 @224" in space.describe(g)
    wider = arch_cost(space.decode(g))["params"]
    assert wider > 1.5**2 * 0.9 * arch_cost(space.decode(g.replace(width_mult=1.0)))["params"]


def test_last_bn_of_each_branch_starts_at_zero():
    import numpy as np

    import nas
    from nas.backends.jax import build as jax_build
    from nas.backends.torch import build as torch_build
    from nas.spaces.resolve import space_of

    space = nas.space("resnet_rs", preset="small")
    arch = space_of(space.sample(0)).decode(space.sample(0))
    zeroed = [n.name for n in arch.nodes if n.op == "batchnorm" and n.p["zero_init"]]
    assert zeroed and all(name.endswith("branch.bn3") for name in zeroed)
    torch_net, jax_net = torch_build(arch, seed=0), jax_build(arch, seed=0)
    for name in zeroed:
        key = name.replace(".", "/")
        assert float(torch_net.layers[key].weight.abs().sum()) == 0.0
        assert float(np.abs(np.asarray(jax_net.layers[key].weight[...])).sum()) == 0.0
    other = next(n.name for n in arch.nodes if n.op == "batchnorm" and not n.p["zero_init"])
    assert float(torch_net.layers[other.replace(".", "/")].weight.min()) == 1.0
