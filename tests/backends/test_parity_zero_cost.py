"""Synflow and NASWOT agree across backends on the same weights, for every registered space."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nas.backends import jax as jax_backend  # noqa: E402
from nas.backends import torch as torch_backend  # noqa: E402
from nas.core.space import SPACES  # noqa: E402
from nas.data.base import ArrayDataset  # noqa: E402
from nas.evaluators.zero_cost import _jax as zc_jax  # noqa: E402
from nas.evaluators.zero_cost import _torch as zc_torch  # noqa: E402
from nas.evaluators.zero_cost import proxy_scores  # noqa: E402
from nas.evaluators.zero_cost.graph import main_plan  # noqa: E402
from nas.testing.parity import space_for_tests  # noqa: E402

SLOW_TO_COMPILE = {"fbnetv3", "fbnetv5", "nasnet"}  # JAX compiles each op of a deep network (about a minute each)


@pytest.mark.parametrize("space_name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_TO_COMPILE else n
                                        for n in SPACES.names()])
def test_torch_and_jax_proxies_agree(space_name: str) -> None:
    space = space_for_tests(space_name)
    arch = space.decode(space.sample(1))
    plan = main_plan(arch)
    torch_model = torch_backend.build(arch, seed=0)
    jax_model = jax_backend.load_torch_weights(jax_backend.build(arch, seed=0), torch_model)
    x = np.random.default_rng(0).standard_normal((8, *arch.input_shape)).astype(np.float32)
    naswot_torch = zc_torch.naswot(torch_backend.build(arch, seed=0), arch, plan, torch.from_numpy(x))
    naswot_jax = zc_jax.naswot(jax_model, arch, plan, x)
    assert naswot_jax == pytest.approx(naswot_torch, abs=0.05)  # a unit's sign may flip at float32 rounding
    synflow_jax = zc_jax.synflow(jax_model, arch, plan)  # float64 in both
    assert synflow_jax == pytest.approx(zc_torch.synflow(torch_model, arch, plan), rel=1e-6)


def test_jax_proxy_scores_on_digits_shaped_data() -> None:
    space = space_for_tests("nb201")
    genotype = space.sample(0)
    arch = space.decode(genotype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, *arch.input_shape)).astype(np.float32)
    y = rng.integers(0, 10, 16).astype(np.int64)
    data = ArrayDataset("random", x, y, x, y, x, y, 10)
    scores = proxy_scores(genotype, ["synflow", "naswot", "params", "macs"], data, batch_size=8, backend="jax")
    assert set(scores) == {"zc_synflow", "zc_naswot", "zc_params", "zc_macs"}
    assert all(np.isfinite(v) and v > 0 for v in scores.values())
