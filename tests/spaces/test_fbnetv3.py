"""FBNetV3: the released figures of every variant, FBNetV3-A's structure and its counts in torch and JAX."""

from __future__ import annotations

from collections import Counter

import pytest

import nas
from nas.core.cost import arch_cost
from nas.core.errors import GenotypeError
from nas.spaces.fbnet.fbnetv3 import FBNetV3Space, mobile_cv_cost
from nas.spaces.resolve import space_of

# mobile-vision model_info_fbnet_v3.json: (params_m, flops_m); "flops" are multiply-accumulates (+ pool inputs).
RELEASED = {
    "a": (8.542224, 356.59828), "b": (8.542224, 461.550136), "c": (9.907136, 556.969904),
    "d": (10.237552, 644.420352), "e": (10.699464, 762.046336), "f": (13.803072, 1181.64452),
    "g": (16.513648, 2129.656384),
}
# FBNetV3-A counted as every learnable scalar (weights, biases, BN affine) and conv/linear weight MACs.
A_PARAMS, A_MACS = 8_598_480, 355_514_328


def _arch(name: str):
    g = nas.published(name)
    return space_of(g).decode(g)


@pytest.mark.parametrize("variant", sorted(RELEASED))
def test_released_figures_by_the_mobile_cv_rule(variant: str) -> None:
    params_m, flops_m = RELEASED[variant]
    cost = mobile_cv_cost(_arch(f"fbnetv3-{variant}"))
    assert cost == {"params": round(params_m * 1e6), "flops": round(flops_m * 1e6)}


def test_fbnetv3_a_analytic_cost_within_one_percent() -> None:
    cost = arch_cost(_arch("fbnetv3-a"))
    assert cost == {"params": A_PARAMS, "macs": A_MACS}
    assert cost["params"] == pytest.approx(8.54e6, rel=0.01)
    assert cost["macs"] == pytest.approx(356.6e6, rel=0.01)


def test_fbnetv3_a_structure() -> None:
    arch = _arch("fbnetv3-a")
    ops = Counter(n.op for n in arch.nodes)
    assert ops["conv2d"] == 124 and ops["linear"] == 1 and ops["batchnorm"] == 87
    assert sum(1 for n in arch.nodes if n.name.endswith("se.gate")) == 18
    # residual adds: 2 + 3 + 4 + (4 + 5) + 5 stride-1 blocks whose width does not change
    assert sum(1 for n in arch.nodes if n.name.endswith(".add")) == 23
    # the released paddings make the late maps 13x13 and 6x6
    assert arch.node("s4.b0.dw.conv").shape == (200, 13, 13)
    assert arch.node("s5.b0.dw.conv").shape == (720, 6, 6)
    assert arch.node("s5.b0.se.reduce").shape == (32, 1, 1)
    assert arch.output_shapes == {"logits": (1000,)}
    assert arch.input_shape == (3, 224, 224)


def test_fbnetv3_a_torch_counts_and_forward() -> None:
    import torch

    from nas.backends import torch as torch_backend

    model = torch_backend.build(_arch("fbnetv3-a"), seed=0).eval()
    assert torch_backend.count_params(model) == A_PARAMS
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 224, 224))
    assert out.shape == (1, 1000)


def test_fbnetv3_a_jax_count() -> None:
    from nas.backends import jax as jax_backend

    assert jax_backend.count_params(jax_backend.build(_arch("fbnetv3-a"), seed=0)) == A_PARAMS


def test_space_variants_and_small_preset() -> None:
    space = FBNetV3Space(preset="small")
    assert {space.sample(s)["variant"] for s in range(40)} == set("ABCDEFG")
    arch = space.decode(space.make({"variant": "A"}))
    assert arch.input_shape == (3, 64, 64) and arch.output_shapes == {"logits": (10,)}
    with pytest.raises(GenotypeError, match="variant"):
        space.make({"variant": "Z"})
