"""``proxy_scores``: every requested zero-cost proxy of one architecture, as ``zc_<proxy>`` metrics."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import numpy as np

from nas.core.cost import arch_cost
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.data.base import ArrayDataset
from nas.evaluators.zero_cost.catalog import DATA_FREE, WORST, check, expand
from nas.evaluators.zero_cost.graph import depends_on_input, main_plan
from nas.spaces.resolve import space_of


def proxy_scores(genotype: Genotype, proxies: Sequence[str], data: ArrayDataset | None, batch_size: int = 64,
                 seed: int = 0, backend: str = "torch") -> dict[str, float]:
    """``{"zc_<proxy>": score}`` for ``genotype``'s network, initialised under ``seed``.

    Data proxies read one batch of ``batch_size`` training examples drawn under ``seed``; synflow,
    params and macs need no data (``data`` may be None when only they are asked). ``vote`` needs other
    architectures: here it stands for its members (synflow, jacob_cov, snip), to be voted with
    ``vote_scores``. A network whose main head does not depend on its input, and any non-finite score,
    gets ``WORST`` (params and macs are counts and are always reported as such).
    """
    names = check(proxies, batch_size, backend)
    return arch_scores(space_of(genotype).decode(genotype), names, data, batch_size, seed, backend)


def _batch(arch: ArchSpec, data: ArrayDataset, batch_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    if tuple(data.input_shape) != tuple(arch.input_shape):
        raise ValueError(f"the network takes inputs of shape {tuple(arch.input_shape)}, "
                         f"the dataset {data.name} has {data.input_shape}")
    count = len(data.train_x)
    if batch_size > count:
        raise UserError(f"evaluator.batch_size {batch_size} exceeds the {count} training examples of {data.name}")
    index = np.sort(np.random.default_rng(seed).choice(count, batch_size, replace=False))
    return data.train_x[index], data.train_y[index]


def arch_scores(arch: ArchSpec, proxies: Sequence[str], data: ArrayDataset | None, batch_size: int = 64,
                seed: int = 0, backend: str = "torch") -> dict[str, float]:
    """``proxy_scores`` for an ``ArchSpec`` (any network of the IR, not only a space's candidates)."""
    names = expand(check(proxies, batch_size, backend))
    counted = arch_cost(arch)
    scores: dict[str, float] = {name: float(counted[name]) for name in names if name in ("params", "macs")}
    learned = [name for name in names if name not in scores]
    if learned and not depends_on_input(arch):
        scores.update({name: WORST for name in learned})
        learned = []
    if learned:
        if data is None and any(name not in DATA_FREE for name in learned):
            raise ValueError(f"proxies {', '.join(n for n in learned if n not in DATA_FREE)} need a dataset")
        x, y = _batch(arch, data, batch_size, seed) if data is not None else (None, None)
        compute = _torch_scores if backend == "torch" else _jax_scores
        for name, value in compute(arch, learned, x, y, seed).items():
            scores[name] = value if math.isfinite(value) else WORST
    return {f"zc_{name}": float(scores[name]) for name in names}


def _torch_scores(arch: ArchSpec, names: list[str], x: np.ndarray | None, y: np.ndarray | None,
                  seed: int) -> dict[str, float]:
    import torch

    from nas.backends.torch import build
    from nas.evaluators.zero_cost import _torch as proxies

    plan = main_plan(arch)
    base = build(arch, seed=seed)
    tx = torch.from_numpy(x) if x is not None else None
    ty = torch.from_numpy(y) if y is not None else None
    out = {}
    for name in names:
        model = copy.deepcopy(base)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            if name == "synflow":
                out[name] = proxies.synflow(model, arch, plan)
            elif name in ("jacob_cov", "naswot"):
                out[name] = getattr(proxies, name)(model, arch, plan, tx)
            else:
                out[name] = getattr(proxies, name)(model, arch, plan, tx, ty)
    return out


def _jax_scores(arch: ArchSpec, names: list[str], x: np.ndarray | None, y: np.ndarray | None,
                seed: int) -> dict[str, float]:
    from flax import nnx

    from nas.backends.jax import build
    from nas.evaluators.zero_cost import _jax as proxies

    plan = main_plan(arch)
    base = build(arch, seed=seed)
    out = {}
    for name in names:
        model = nnx.clone(base)
        out[name] = proxies.synflow(model, arch, plan) if name == "synflow" else proxies.naswot(model, arch, plan, x)
    return out
