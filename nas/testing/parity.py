"""Backend parity: the torch and JAX lowerings of an ``ArchSpec`` must be the same network.

``check_parity`` builds both backends for one architecture, copies the torch weights (with random
batch-norm statistics and affine terms, so the copy is really exercised) into the NNX module and
compares parameter counts (with ``arch_cost``), output shapes, eval-mode outputs, train-mode outputs and
the running statistics they update. Both networks are built from ``without_stochastic(arch)`` (dropout and
drop-path rates 0), so train mode is compared for every architecture and eval mode is unchanged.
``check_train_step`` compares one SGD step: loss, gradients and the weights after the update.
``BackendParitySuite`` runs ``check_parity`` as pytest tests over genotypes of one registered space.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, Node
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


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray], relative: bool = False) -> float:
    """Largest absolute difference over heads; ``relative``: each head's divided by its largest value above 1
    (eval mode: randomized running statistics can blow a deep network's outputs up to ~1e4, where float32
    rounding alone is ~1e-3 absolute)."""
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return float("inf")
    scale = {k: max(1.0, float(np.max(np.abs(a[k]), initial=0.0))) if relative else 1.0 for k in a}
    return max((float(np.max(np.abs(a[k] - b[k]), initial=0.0)) / scale[k] for k in a), default=0.0)


STOCHASTIC_OPS = ("dropout", "drop_path")


def without_stochastic(arch: ArchSpec) -> ArchSpec:
    """``arch`` with every dropout and drop-path rate set to 0: the same weights, deterministic train mode.

    Eval mode is unchanged (both ops are the identity there); train mode then differs between the torch and
    JAX backends only through arithmetic, not through their independent random masks."""
    nodes = tuple(Node(n.name, n.op, n.inputs, tuple((k, 0.0 if k == "rate" else v) for k, v in n.params),
                       n.shape) if n.op in STOCHASTIC_OPS else n for n in arch.nodes)
    return ArchSpec(nodes, arch.inputs, arch.outputs, arch.roles)


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


def _state_diff(jax_model: Any, torch_model: Any, kinds: tuple[type, ...] | None = None,
                relative: bool = False) -> float:
    """Largest difference between a torch state dict entry and the NNX variable of the same name
    (variables of ``kinds`` only; default ``nnx.Param`` and ``nnx.BatchStat``); with ``relative``, each
    entry's difference is divided by its largest absolute torch value when that exceeds 1."""
    from flax import nnx

    kinds = kinds or (nnx.Param, nnx.BatchStat)
    torch_state = {k: v.detach().cpu().numpy().copy() for k, v in torch_model.state_dict().items()}
    diff = 0.0
    for path, value in nnx.iter_graph(jax_model):
        if isinstance(value, kinds):
            ref = torch_state[f"layers.{path[1]}.{path[-1]}"]
            scale = max(1.0, float(np.max(np.abs(ref), initial=0.0))) if relative else 1.0
            diff = max(diff, float(np.max(np.abs(np.asarray(value[...]) - ref), initial=0.0)) / scale)
    return diff


def _paired_models(arch: ArchSpec, seed: int, rng: np.random.Generator, torch_device: str) -> tuple[Any, Any]:
    """Torch and JAX networks of ``without_stochastic(arch)`` holding the same weights (random norms)."""
    from nas.backends import jax as jax_backend
    from nas.backends import torch as torch_backend

    arch = without_stochastic(arch)
    torch_model = torch_backend.build(arch, seed=seed)
    jax_model = jax_backend.build(arch, seed=seed)
    randomize_norms(torch_model, rng)
    jax_backend.load_torch_weights(jax_model, torch_model)
    return torch_model.to(torch_device), jax_model


def check_parity(arch: ArchSpec, atol: float = 1e-4, batch: int = 2, seed: int = 0,
                 torch_device: str = "cpu") -> dict[str, Any]:
    """Compare the torch and JAX backends on ``arch`` with the same weights and a random input.

    The torch network runs on ``torch_device`` (TF32 off, so a GPU computes in plain float32) and JAX on its
    default device, so on a GPU machine this compares the two backends' GPU paths.

    Returns ``params`` (torch / jax / arch counts), ``shapes`` (expected / torch / jax per head),
    ``eval_diff`` (max difference relative to each head's largest value above 1), ``train_diff`` and
    ``state_diff`` (max abs differences; train mode with dropout and drop-path off, see
    ``without_stochastic``) and ``ok``: all counts and shapes equal and every diff < ``atol``.
    """
    rng = np.random.default_rng(seed)
    torch_model, jax_model = _paired_models(arch, seed, rng, torch_device)
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
        "eval_diff": _max_diff(torch_eval, jax_eval, relative=True),
    }
    torch_model.train()
    jax_model.train()
    with torch.no_grad():
        torch_train = _as_dict(torch_model(torch.from_numpy(x).to(torch_device)))
    with precise:
        result["train_diff"] = _max_diff(torch_train, _as_dict(jax_model(jnp.asarray(x))))
    result["state_diff"] = _state_diff(jax_model, torch_model)
    counts, shapes = result["params"], result["shapes"]
    diffs = (result["eval_diff"], result["train_diff"], result["state_diff"])
    result["ok"] = (len(set(counts.values())) == 1 and shapes["expected"] == shapes["torch"] == shapes["jax"]
                    and all(d < atol for d in diffs))
    return result


def check_train_step(arch: ArchSpec, batch: int = 4, seed: int = 0, lr: float = 0.1, aux_weight: float = 0.4,
                     torch_device: str = "cpu", float64: bool = False) -> dict[str, Any]:
    """One plain SGD step (``lr``, no momentum, no weight decay) in both backends from the same weights and batch.

    Both networks are built from ``without_stochastic(arch)`` and run in train mode (batch statistics, running
    statistics updated). The loss is ``train_loss``'s: cross-entropy of the main head on random labels plus
    ``aux_weight`` times that of every other classification head (``(classes,)`` output, as the training loops
    weigh NASNet's auxiliary head); a dense head (FBNetV5's segmentation and detection maps, which the
    classification loops have no labels for) adds ``aux_weight`` times a fixed random linear probe of its map,
    so every parameter gets a gradient to compare. ``batch`` should be at least 4: deep presets reach 1x1 maps,
    where a batch of 2 leaves batch norm two values per channel and float32 differences are amplified.
    ``float64`` runs both backends in double precision (JAX under ``jax.enable_x64``): where train-mode batch
    norm on 2x2 maps makes float32 gradients ill-conditioned, it separates a real mismatch from rounding.

    Returns ``loss`` (torch / jax), ``loss_diff``, ``train_diff`` (max abs difference of every head's train-mode
    output), ``stats_diff`` (running statistics after the step, relative to each tensor's scale when above 1),
    ``grad_diff`` (largest difference of a parameter's gradient relative to that gradient's max abs value,
    floored at 1e-3 of the largest gradient anywhere), ``grad_worst`` (the parameter it was found on),
    ``grad_scale`` (that largest gradient), ``grad_missing`` (parameters without a gradient in one backend
    only) and ``step_diff`` (max abs difference of the parameters after the update: ``lr`` times the gradient
    difference, so bound it by ``lr * grad_diff * grad_scale`` plus float32 rounding of the weights).
    """
    import jax
    import torch
    from flax import nnx

    rng = np.random.default_rng(seed)
    torch_model, jax_model = _paired_models(arch, seed, rng, torch_device)
    dtype = np.float64 if float64 else np.float32
    x = rng.standard_normal((batch, *arch.input_shape)).astype(dtype)
    y = rng.integers(0, arch.output_shapes[arch.outputs[0][0]][0], batch)
    probes = {head: rng.standard_normal((batch, *shape)).astype(dtype)
              for head, shape in arch.output_shapes.items() if len(shape) > 1}
    if float64:
        torch_model.double()
    with _plain_float32():
        torch_model.train()
        out = torch_model(torch.from_numpy(x).to(torch_device))
        loss = train_loss(out, torch.from_numpy(y).to(torch_device), aux_weight,
                          {k: torch.from_numpy(v).to(torch_device) for k, v in probes.items()})
        optimizer = torch.optim.SGD(torch_model.parameters(), lr=lr, momentum=0.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch_grads = {k: p.grad.detach().cpu().numpy() for k, p in torch_model.named_parameters()
                       if p.grad is not None}
        optimizer.step()
    torch_out = _as_dict(out)
    with jax.enable_x64(True) if float64 else contextlib.nullcontext():
        if float64:
            nnx.update(jax_model, jax.tree.map(lambda v: v.astype(np.float64) if v.dtype == np.float32 else v,
                                               nnx.state(jax_model)))
        jax_loss, jax_out, jax_grads = _jax_sgd_step(jax_model, x, y, probes, aux_weight, lr)
    scale = max((float(np.max(np.abs(g), initial=0.0)) for g in torch_grads.values()), default=0.0)
    floor = max(scale * 1e-3, np.finfo(dtype).tiny)
    grad_diffs = {k: float(np.max(np.abs(g - jax_grads[k]), initial=0.0))
                  / max(float(np.max(np.abs(g), initial=0.0)), floor)
                  for k, g in torch_grads.items() if k in jax_grads}
    worst = max(grad_diffs, key=grad_diffs.__getitem__, default="")
    # A parameter torch gives no gradient (unused by the loss) must have an all-zero JAX gradient.
    missing = sorted(k for k, g in jax_grads.items() if k not in torch_grads and np.any(g))
    missing += sorted(k for k in torch_grads if k not in jax_grads)
    return {"loss": {"torch": float(loss.detach()), "jax": jax_loss},
            "loss_diff": abs(float(loss.detach()) - jax_loss), "train_diff": _max_diff(torch_out, jax_out),
            "stats_diff": _state_diff(jax_model, torch_model, (nnx.BatchStat,), relative=True),
            "grad_diff": grad_diffs.get(worst, 0.0), "grad_worst": worst, "grad_scale": scale, "grad_missing": missing,
            "step_diff": _state_diff(jax_model, torch_model, (nnx.Param,))}


def train_loss(out: Any, y: Any, aux_weight: float, probes: dict[str, Any]) -> Any:
    """``check_train_step``'s loss for torch tensors or JAX arrays: cross-entropy of the main head, plus
    ``aux_weight`` times the cross-entropy of every other ``(batch, classes)`` head and the mean probe product
    ``sum(out * probe) / batch`` of every dense head in ``probes``."""
    if hasattr(y, "detach"):
        import torch

        def ce(logits: Any) -> Any:
            return torch.nn.functional.cross_entropy(logits, y)
    else:
        import optax

        def ce(logits: Any) -> Any:
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    if not isinstance(out, dict):
        return ce(out)
    from nas.backends.training import MAIN_HEAD

    loss = ce(out[MAIN_HEAD])
    for head, value in out.items():
        if head != MAIN_HEAD:
            term = (value * probes[head]).sum() / value.shape[0] if head in probes else ce(value)
            loss = loss + aux_weight * term
    return loss


def _jax_sgd_step(model: Any, x: np.ndarray, y: np.ndarray, probes: dict[str, np.ndarray], aux_weight: float,
                  lr: float) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Loss, train-mode outputs and gradients (by torch key) of one compiled step on ``model``, which is left
    holding the weights after ``optax.sgd(lr)`` and the updated running statistics (as ``make_steps`` does)."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import nnx

    from nas.backends.jax import torch_state

    model.train()
    graphdef = nnx.graphdef(model)
    params, rest = nnx.state(model, nnx.Param), nnx.state(model, nnx.Not(nnx.Param))
    tx = optax.sgd(lr)

    def loss_fn(params: Any, rest: Any) -> tuple[Any, Any]:
        net = nnx.merge(graphdef, params, rest, copy=True)
        out = net(jnp.asarray(x))
        return train_loss(out, jnp.asarray(y), aux_weight, probes), (out, nnx.state(net, nnx.Not(nnx.Param)))

    @jax.jit
    def step(params: Any, rest: Any) -> Any:
        (loss, (out, rest)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, rest)
        updates, _ = tx.update(grads, tx.init(params), params)
        return loss, out, grads, optax.apply_updates(params, updates), rest

    with jax.default_matmul_precision("highest"):
        loss, out, grads, params, rest = step(params, rest)
    grad_state = torch_state(nnx.merge(graphdef, grads, rest))
    names = {f"layers.{path[1]}.{path[-1]}" for path, v in nnx.iter_graph(model) if isinstance(v, nnx.Param)}
    nnx.update(model, params, rest)
    return float(loss), _as_dict(out), {k: v for k, v in grad_state.items() if k in names}


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
                assert r[key] < self.atol, (name, key, r[key])


def _whole_params(arch) -> int:
    """Learnable scalars of the whole graph, every head included (what a built module holds)."""
    cost = arch_cost(arch)
    return int(cost.get("params_with_aux", cost["params"]))
