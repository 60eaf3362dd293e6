"""Backend parity: the torch and JAX lowerings of an ``ArchSpec`` must be the same network.

``check_parity`` builds both backends for one architecture, copies the torch weights (with random
batch-norm statistics and affine terms, so the copy is really exercised) into the NNX module and
compares parameter counts (with ``arch_cost``), output shapes, eval-mode outputs and, when the
network has no active dropout or drop-path, train-mode outputs and the running statistics they update.
``BackendParitySuite`` runs it as pytest tests over genotypes of one registered space.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.space import SPACES, SearchSpace


def space_for_tests(name: str, preset: str | None = None) -> SearchSpace:
    """The registered space ``name`` under ``preset``, else its "small" preset if it has one."""
    cls = SPACES.get(name)
    if preset is None and "small" in cls.presets:
        preset = "small"
    return cls(preset=preset)


def _as_dict(out: Any) -> dict[str, np.ndarray]:
    if isinstance(out, dict):
        return {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in out.items()}
    return {"": np.asarray(out.detach().cpu().numpy() if hasattr(out, "detach") else out)}


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return float("inf")
    return max((float(np.max(np.abs(a[k] - b[k]), initial=0.0)) for k in a), default=0.0)


def randomize_norms(torch_model: Any, rng: np.random.Generator) -> None:
    """Give every batch norm non-trivial running statistics and affine terms."""
    import torch

    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.running_mean.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, c).astype(np.float32)))
                module.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, c).astype(np.float32)))
                if module.affine:
                    module.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, c).astype(np.float32)))
                    module.bias.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, c).astype(np.float32)))


def _state_diff(jax_model: Any, torch_model: Any) -> float:
    """Largest difference between a torch state dict entry and the NNX variable of the same name."""
    from flax import nnx

    torch_state = {k: v.detach().cpu().numpy().copy() for k, v in torch_model.state_dict().items()}
    diff = 0.0
    for path, value in nnx.iter_graph(jax_model):
        if isinstance(value, (nnx.Param, nnx.BatchStat)):
            ref = torch_state[f"layers.{path[1]}.{path[-1]}"]
            diff = max(diff, float(np.max(np.abs(np.asarray(value[...]) - ref), initial=0.0)))
    return diff


def check_parity(arch: ArchSpec, atol: float = 1e-4, batch: int = 2, seed: int = 0,
                 torch_device: str = "cpu") -> dict[str, Any]:
    """Compare the torch and JAX backends on ``arch`` with the same weights and a random input.

    The torch network runs on ``torch_device`` (TF32 off, so a GPU computes in plain float32) and JAX on its
    default device, so on a GPU machine this compares the two backends' GPU paths.

    Returns ``params`` (torch / jax / arch counts), ``shapes`` (expected / torch / jax per head),
    ``eval_diff``, ``train_diff`` and ``state_diff`` (max abs differences; the last two are ``None``
    when the network has active dropout or drop-path) and ``ok``: all counts and shapes equal and
    every diff < ``atol``.
    """

    from nas.backends import jax as jax_backend
    from nas.backends import torch as torch_backend

    rng = np.random.default_rng(seed)
    torch_model = torch_backend.build(arch, seed=seed)
    jax_model = jax_backend.build(arch, seed=seed)
    randomize_norms(torch_model, rng)
    jax_backend.load_torch_weights(jax_model, torch_model)
    torch_model.to(torch_device)
    with _plain_float32():
        return _compare(arch, torch_model, jax_model, rng, batch, atol, torch_device)


@contextlib.contextmanager
def _plain_float32() -> Iterator[None]:
    """TF32 off in torch (cuDNN convolutions and matmuls) for the duration, as before afterwards."""
    import torch

    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _compare(arch: ArchSpec, torch_model: Any, jax_model: Any, rng: np.random.Generator, batch: int, atol: float,
             torch_device: str) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    import torch

    from nas.backends import jax as jax_backend
    from nas.backends import torch as torch_backend

    x = rng.standard_normal((batch, *arch.input_shape)).astype(np.float32)
    torch_model.eval()
    jax_model.eval()
    with torch.no_grad():
        torch_eval = _as_dict(torch_model(torch.from_numpy(x).to(torch_device)))
    precise = jax.default_matmul_precision("highest")  # no TF32 on accelerators: compare exact float32
    with precise:
        jax_eval = _as_dict(jax_model(jnp.asarray(x)))
    heads = [head for head, _ in arch.outputs] if len(arch.outputs) > 1 else [""]
    expected = {head: (batch, *shape) for head, shape in zip(heads, arch.output_shapes.values())}
    result: dict[str, Any] = {
        "params": {"torch": torch_backend.count_params(torch_model),
                   "jax": jax_backend.count_params(jax_model), "arch": _whole_params(arch)},
        "shapes": {"expected": expected, "torch": {k: v.shape for k, v in torch_eval.items()},
                   "jax": {k: v.shape for k, v in jax_eval.items()}},
        "eval_diff": _max_diff(torch_eval, jax_eval), "train_diff": None, "state_diff": None,
    }
    if not any(n.op in ("dropout", "drop_path") and n.p["rate"] > 0 for n in arch.nodes):
        torch_model.train()
        jax_model.train()
        with torch.no_grad():
            torch_train = _as_dict(torch_model(torch.from_numpy(x).to(torch_device)))
        with precise:
            result["train_diff"] = _max_diff(torch_train, _as_dict(jax_model(jnp.asarray(x))))
        result["state_diff"] = _state_diff(jax_model, torch_model)
    counts, shapes = result["params"], result["shapes"]
    diffs = [d for d in (result["eval_diff"], result["train_diff"], result["state_diff"]) if d is not None]
    result["ok"] = (len(set(counts.values())) == 1 and shapes["expected"] == shapes["torch"] == shapes["jax"]
                    and all(d < atol for d in diffs))
    return result


class BackendParitySuite:
    """Torch/JAX parity tests for one space; subclass as ``TestXParity`` and set ``space_name``.

    ``genotypes()`` picks what is checked (default: ``space.sample(seed)`` for each of ``seeds``);
    ``preset`` ``None`` means the space's "small" preset when it has one, else its default.
    """

    space_name: ClassVar[str]
    preset: ClassVar[str | None] = None
    seeds: ClassVar[tuple[int, ...]] = (0, 1, 2)
    atol: ClassVar[float] = 1e-4
    _cache: ClassVar[dict[type, list[tuple[str, dict[str, Any]]]]] = {}

    def space(self) -> SearchSpace:
        return space_for_tests(self.space_name, self.preset)

    def genotypes(self) -> list[Genotype]:
        space = self.space()
        return [space.sample(seed) for seed in self.seeds]

    def results(self) -> list[tuple[str, dict[str, Any]]]:
        """``(description, check_parity result)`` per genotype, computed once per suite class."""
        cls = type(self)
        if cls not in BackendParitySuite._cache:
            space = self.space()
            BackendParitySuite._cache[cls] = [(space.describe(g), check_parity(space.decode(g), self.atol))
                                              for g in self.genotypes()]
        return BackendParitySuite._cache[cls]

    def test_param_counts(self) -> None:
        for name, r in self.results():
            assert r["params"]["torch"] == r["params"]["jax"] == r["params"]["arch"], (name, r["params"])

    def test_output_shapes(self) -> None:
        for name, r in self.results():
            shapes = r["shapes"]
            assert shapes["expected"] == shapes["torch"] == shapes["jax"], (name, shapes)

    def test_eval_outputs_match(self) -> None:
        for name, r in self.results():
            assert r["eval_diff"] < self.atol, (name, r["eval_diff"])

    def test_train_mode_matches(self) -> None:
        for name, r in self.results():
            for key in ("train_diff", "state_diff"):
                assert r[key] is None or r[key] < self.atol, (name, key, r[key])


def _whole_params(arch) -> int:
    """Learnable scalars of the whole graph, every head included (what a built module holds)."""
    cost = arch_cost(arch)
    return int(cost.get("params_with_aux", cost["params"]))
