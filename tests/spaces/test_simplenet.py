"""SimpleNet: published parameter counts (analytic, torch, JAX), tables, depth/stride rules, presets."""

from __future__ import annotations

import pytest

import nas
from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.spaces.resolve import space_of
from nas.spaces.scaling.simplenet import TABLES, SimpleNetSpace, simplenet_layers

# name -> published parameters (millions): README of the Caffe repo (CIFAR) and of the PyTorch port (ImageNet).
PUBLISHED = {"simplenet-cifar-5m": 5.48, "simplenet-cifar-310k": 0.31, "simplenetv1-5m-m2": 5.75,
             "simplenetv1-9m-m2": 9.51}


def _arch(name: str):
    g = nas.published(name)
    return space_of(g).decode(g)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_params_within_one_percent(name: str) -> None:
    assert arch_cost(_arch(name))["params"] / 1e6 == pytest.approx(PUBLISHED[name], rel=0.01)


def test_cifar_5m_exact_recount() -> None:
    """5,498,378 with BN on all 13 convs (the PyTorch port); 652M MACs at 32x32 (spec recount)."""
    cost = arch_cost(_arch("simplenet-cifar-5m"))
    assert cost["params"] == 5_498_378
    assert cost["macs"] / 1e6 == pytest.approx(652, rel=0.01)


def test_backend_counts_match() -> None:
    from nas.backends import jax as jax_backend
    from nas.backends import torch as torch_backend

    for name in ("simplenet-cifar-5m", "simplenetv1-9m-m2"):
        arch = _arch(name)
        expected = arch_cost(arch)["params"]
        assert torch_backend.count_params(torch_backend.build(arch)) == expected
    small = _arch("simplenet-cifar-310k")
    assert jax_backend.count_params(jax_backend.build(small)) == arch_cost(small)["params"]


@pytest.mark.slow
def test_jax_counts_of_the_imagenet_models() -> None:
    from nas.backends import jax as jax_backend

    for name in ("simplenetv1-5m-m2", "simplenetv1-9m-m2"):
        arch = _arch(name)
        assert jax_backend.count_params(jax_backend.build(arch)) == arch_cost(arch)["params"]


def test_imagenet_m2_downsamples_at_layers_0_1_3() -> None:
    arch = _arch("simplenetv1-5m-m2")
    strides = [arch.node(f"conv{k}.conv").p["stride"] for k in range(1, 6)]
    assert strides == [2, 2, 1, 2, 1]
    assert arch.node("conv13.relu").shape == (256, 7, 7) and arch.output_shapes == {"logits": (1000,)}
    assert arch.node("conv11.conv").p["kernel"] == 1 and arch.node("conv11.conv").p["padding"] == 0


def test_depth_mult_repeats_layers_within_homogeneous_groups() -> None:
    assert simplenet_layers("cifar_5m", 1.0) == list(TABLES["cifar_5m"])
    deeper = simplenet_layers("cifar_5m", 2.0)
    assert deeper.count(128) == 5 + 5 and deeper.count(256) == 3 + 2 + 1  # runs 3 -> 6, 2 -> 4, 2 -> 4
    assert [x for x in deeper if not isinstance(x, int)] == [x for x in TABLES["cifar_5m"] if not isinstance(x, int)]
    assert len([x for x in simplenet_layers("cifar_5m", 1.5) if isinstance(x, int)]) == 13 - 2 + 4


def test_pools_on_a_1x1_map_are_left_out() -> None:
    space = SimpleNetSpace(input_shape=[1, 8, 8])
    g = space.make({"table": "cifar_5m", "width_mult": 0.25, "depth_mult": 1.0, "stride_mode": 1,
                    "resolution": 32, "dropout": 0.0})
    arch = space.decode(g)
    assert arch.node("resize.resize_up").p["scale"] == 4
    names = {n.name for n in arch.nodes}
    assert {"pool1.pool", "pool2.pool"} <= names and not names & {"pool3.pool", "pool4.pool"}
    assert arch.node("conv13.relu").shape[1:] == (1, 1)


def test_small_preset_keeps_the_encoding() -> None:
    full, small = SimpleNetSpace(), SimpleNetSpace(preset="small")
    assert full.spec().labels == small.spec().labels
    for seed in range(5):
        g = small.sample(seed)
        assert space_of(g).validate(g) is g  # the registered space validates against the genotype's own grid
        assert Genotype.from_json(g.to_json()) == g
        assert len(small.encode(g)) == 6


def test_off_grid_values_are_rejected() -> None:
    small = SimpleNetSpace(preset="small")
    g = small.sample(0)
    with pytest.raises(GenotypeError):
        small.validate(g.replace(width_mult=3.0))
    for off_grid in ({"table": "imagenet_5m"}, {"stride_mode": 2}):  # on the full grid, not on the CPU grid
        with pytest.raises(GenotypeError):
            small.validate(g.replace(**off_grid))


def test_resize_for_non_integer_ratios() -> None:
    space = SimpleNetSpace(input_shape=[3, 32, 32])
    g = space.make({"table": "cifar_310k", "width_mult": 0.25, "depth_mult": 1.0, "stride_mode": 0,
                    "resolution": 48, "dropout": 0.2})
    arch = space.decode(g)
    assert arch.node("resize.resize_up").p["scale"] == 3 and arch.node("resize.resize_down").p["kernel"] == 2
    assert arch.node("conv1.conv").shape[1:] == (48, 48)
    assert "dropout 0.2" in space.describe(g) and arch.node("head.drop").p["rate"] == 0.2
