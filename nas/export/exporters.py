"""Write a model a user can take elsewhere: the architecture, and trained weights when the source has them.

Formats: ``json`` (the genotype and its card), ``onnx`` (``torch.onnx.export(..., dynamo=True)``, the
torch.export-based exporter, checked with onnxruntime; the TorchScript-based exporter only as a fallback that
says it is one), ``pt2`` (``torch.export`` ExportedProgram, loadable with plain ``torch.export.load``) and
``flax`` (the Flax NNX network's variables, msgpack, beside ``arch.json``; ``nas.create_model(run=<dir>,
backend="jax")`` loads it). TorchScript is not offered: ``torch.jit.trace`` is deprecated in torch 2.13.

Inference exports leave auxiliary (training-only) heads out and name their outputs after the heads;
``task=`` keeps one head or head group (FBNetV5: ``logits``, ``seg``, ``det``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core import extras
from nas.core.cost import arch_cost, is_aux_head
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.registry import Registry
from nas.spaces.resolve import space_of

EXPORTERS: Registry[Callable[..., Path]] = Registry("export format")
SUFFIX = {"json": ".json", "onnx": ".onnx", "pt2": ".pt2", "flax": ""}
CHECK_ATOL = 1e-4
FORMAT_EXTRA = {"onnx": "export", "flax": "jax"}  # format -> the optional extra it needs (nas.core.extras)


def check_export(fmt: str, out: str | Path | None = None) -> None:
    """Refuse, before anything is written or loaded, an unknown format, a format whose optional extra is not
    installed, and an ``out`` that cannot hold the format (``flax`` writes a folder)."""
    if fmt not in EXPORTERS:
        raise UserError(f"unknown format {fmt!r}; valid choices: {', '.join(EXPORTERS.names())}")
    if fmt in FORMAT_EXTRA:
        extras.check(FORMAT_EXTRA[fmt], f"format={fmt}")
    if fmt == "flax" and out is not None and Path(out).suffix:
        raise UserError(f"format=flax writes a folder; out={out} looks like a file")


def card(genotype: Genotype) -> dict[str, Any]:
    """The genotype with its readable form, cost and shapes (what ``arch.json`` files hold)."""
    space = space_of(genotype)
    arch = space.decode(genotype)
    return {"genotype": genotype.to_json(), "fingerprint": genotype.fingerprint(),
            "description": space.describe(genotype), "cost": arch_cost(arch),
            "input_shape": list(arch.input_shape), "outputs": {k: list(v) for k, v in arch.output_shapes.items()}}


def inference_heads(arch: ArchSpec, task: str | None = None) -> list[str]:
    """The heads an inference export keeps: every non-auxiliary head, or those of ``task`` (a head name or
    the prefix of a head group such as ``det``)."""
    heads = [h for h, _ in arch.outputs if not is_aux_head(arch, h)]
    if task is None:
        return heads
    chosen = [h for h in heads if h == task or h.startswith(task + ".")]
    if not chosen:
        groups = sorted({h.split(".")[0] for h in heads})
        raise UserError(f"task={task!r} is not a head of this network; valid: {', '.join(groups)}")
    return chosen


def prune_outputs(arch: ArchSpec, heads: Sequence[str]) -> ArchSpec:
    """``arch`` with only ``heads`` as outputs and only the nodes they read (node names unchanged, so the
    weights of the whole network load by name)."""
    outputs = tuple((h, n) for h, n in arch.outputs if h in heads)
    needed, stack = set(), [n for _, n in outputs]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(arch.node(name).inputs)
    roles = tuple((h, r) for h, r in arch.roles if h in heads)
    return ArchSpec(tuple(n for n in arch.nodes if n.name in needed), arch.inputs, outputs, roles)


def task_arch(arch: ArchSpec, task: str | None) -> ArchSpec:
    """The network trained for ``task``: its heads plus the auxiliary ones (the whole network without a task).
    A network with several task heads needs one: ``nas train`` trains a single classifier."""
    if task is None:
        return arch
    heads = inference_heads(arch, task) + [h for h, _ in arch.outputs if is_aux_head(arch, h)]
    return prune_outputs(arch, heads)


def single_task(arch: ArchSpec, task: str | None) -> ArchSpec:
    """The network ``nas train`` trains: one classification head (``task=`` picks it among several)."""
    heads = [h for h, _ in arch.outputs if not is_aux_head(arch, h)]
    if task is None and len(heads) > 1:
        groups = sorted({h.split(".")[0] for h in heads})
        raise UserError(f"this network has several task heads ({', '.join(groups)}); nas train trains one "
                        "classifier: pass task=<head>, e.g. task=logits")
    pruned = task_arch(arch, task)
    main = [h for h, _ in pruned.outputs if not is_aux_head(pruned, h)]
    shapes = pruned.output_shapes
    if len(main) != 1 or len(shapes[main[0]]) != 1:
        raise UserError(f"task={task}: nas train trains classifiers (one head of shape [classes]); "
                        + ", ".join(f"{h} gives {list(shapes[h])}" for h in main))
    return pruned


@dataclass
class InferenceModel:
    """A torch network ready to export: eval mode, outputs as a tuple in ``heads`` order."""

    module: Any
    arch: ArchSpec
    heads: list[str]
    trained: bool
    checks: dict[str, float] = field(default_factory=dict)


def inference_model(genotype: Genotype, weights: Path | None = None, seed: int = 0,
                    task: str | None = None) -> InferenceModel:
    """The inference network of ``genotype`` with ``weights`` (checked against the whole network, auxiliary
    heads included) or a fresh initialisation under ``seed``."""
    import torch
    from torch import nn

    from nas.backends.torch import build
    from nas.training.weights import load_weights

    arch = space_of(genotype).decode(genotype)
    heads = inference_heads(arch, task)
    full = build(task_arch(arch, task), seed=seed)
    if weights is not None:
        load_weights(full, weights)
    pruned = prune_outputs(arch, heads)
    network = build(pruned, seed=seed)
    state = full.state_dict()
    network.load_state_dict({k: state[k] for k in network.state_dict()})

    class Heads(nn.Module):
        """``forward(input)`` -> the kept heads as a tuple (a single tensor for one head)."""

        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, input: torch.Tensor) -> Any:  # noqa: A002  (the ONNX input's name)
            out = self.network(input)
            if not isinstance(out, dict):
                return out
            values = tuple(out[h] for h in heads)
            return values[0] if len(values) == 1 else values

    return InferenceModel(Heads().eval(), pruned, heads, weights is not None)


def _example(arch: ArchSpec, batch: int = 2, seed: int = 0):
    import torch

    shape = tuple(arch.input_shape)
    if any(d is None for d in shape):
        raise UserError(f"the architecture's input {list(shape)} has free sizes; fix them (e.g. a resolution "
                        "macro or a published variant with its resolution) before exporting")
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *shape, generator=gen)


def _as_list(out: Any) -> list[Any]:
    return list(out) if isinstance(out, tuple | list) else [out]


def _max_diff(a: Sequence[Any], b: Sequence[Any]) -> float:
    import numpy as np

    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)), initial=0.0)) for x, y in zip(a, b))


def _batch_dim():
    import torch

    return torch.export.Dim("batch", min=1, max=65536)


@EXPORTERS.register("json")
def export_json(model: InferenceModel, genotype: Genotype, out: Path) -> Path:
    """The genotype plus its card (cost, shapes, readable form)."""
    out.write_text(json.dumps(card(genotype), indent=2) + "\n")
    return out


@contextlib.contextmanager
def _quiet_onnx() -> Iterator[None]:
    """Silence torch's own chatter during an ONNX export: the registry's notes on torchvision ops it skips
    (torchvision is not a dependency) and a FutureWarning raised inside torch's pytree code."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


@EXPORTERS.register("onnx")
def export_onnx(model: InferenceModel, genotype: Genotype, out: Path) -> Path:
    """An ONNX model (dynamic batch, outputs named after the heads), compared with torch in onnxruntime."""
    import numpy as np
    import onnxruntime
    import torch

    example = _example(model.arch)
    with torch.no_grad(), _quiet_onnx():
        reference = [t.numpy() for t in _as_list(model.module(example))]
        try:
            program = torch.onnx.export(model.module, (example,), dynamo=True, input_names=["input"],
                                        output_names=model.heads, verbose=False, optimize=True,
                                        dynamic_shapes={"input": {0: _batch_dim()}})
            program.save(str(out))
        except Exception as exc:  # the dynamo exporter cannot lower some graph: say so, use the old one
            print(f"warning: the torch.export-based ONNX exporter failed ({exc.__class__.__name__}); "
                  "using the TorchScript-based fallback exporter", flush=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                torch.onnx.export(model.module, (example,), str(out), dynamo=False, input_names=["input"],
                                  output_names=model.heads, opset_version=18,
                                  dynamic_axes={"input": {0: "batch"}, **{h: {0: "batch"} for h in model.heads}})
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(model.heads, {"input": example.numpy().astype(np.float32)})
    model.checks["onnxruntime_max_abs_diff"] = _max_diff(got, reference)
    return out


@EXPORTERS.register("pt2")
def export_pt2(model: InferenceModel, genotype: Genotype, out: Path) -> Path:
    """A ``torch.export`` ExportedProgram (dynamic batch), saved with ``torch.export.save``."""
    import torch

    example = _example(model.arch)
    with torch.no_grad():
        program = torch.export.export(model.module, (example,), dynamic_shapes={"input": {0: _batch_dim()}})
        torch.export.save(program, str(out))
        loaded = torch.export.load(str(out)).module()
        bigger = _example(model.arch, batch=3, seed=1)
        got = [t.numpy() for t in _as_list(loaded(bigger))]
        reference = [t.numpy() for t in _as_list(model.module(bigger))]
    model.checks["pt2_max_abs_diff"] = _max_diff(got, reference)
    return out


@EXPORTERS.register("flax")
def export_flax(model: InferenceModel, genotype: Genotype, out: Path) -> Path:
    """A folder with ``arch.json`` and ``variables.msgpack`` (the Flax NNX network's parameters and batch
    statistics, converted from the torch weights), compared with torch on an example input."""
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx, serialization

    from nas.training.convert import jax_from_torch

    network = model.module.network
    jax_model = jax_from_torch(network, model.arch)
    jax_model.eval()
    out.mkdir(parents=True, exist_ok=True)
    (out / "arch.json").write_text(json.dumps({**card(genotype), "heads": model.heads}, indent=2) + "\n")
    state = nnx.to_pure_dict(nnx.state(jax_model))
    (out / "variables.msgpack").write_bytes(serialization.msgpack_serialize(state))
    example = _example(model.arch)
    got = jax_model(jnp.asarray(example.numpy()))
    got = [np.asarray(got[h]) for h in model.heads] if isinstance(got, dict) else [np.asarray(got)]
    import torch

    with torch.no_grad():
        reference = [t.numpy() for t in _as_list(model.module(example))]
    model.checks["flax_max_abs_diff"] = _max_diff(got, reference)
    return out


def load_flax(folder: str | Path) -> Any:
    """The Flax NNX network (eval mode) of a ``format=flax`` export folder."""
    from flax import nnx, serialization

    from nas.backends.jax import build

    folder = Path(folder)
    data = json.loads((folder / "arch.json").read_text())
    genotype = Genotype.from_json(data["genotype"])
    arch = prune_outputs(space_of(genotype).decode(genotype), data.get("heads") or [])
    network = build(arch, seed=0)
    state = serialization.msgpack_restore((folder / "variables.msgpack").read_bytes())
    graphdef, current = nnx.split(network)
    nnx.replace_by_pure_dict(current, state)
    network = nnx.merge(graphdef, current)
    network.eval()
    return network


def export_model(genotype: Genotype, fmt: str, out: str | Path, weights: Path | None = None, seed: int = 0,
                 task: str | None = None) -> tuple[Path, InferenceModel]:
    """Export in format ``fmt`` to ``out`` (a file, or a folder that gets ``arch-<fingerprint><suffix>``)."""
    check_export(fmt, out)
    exporter = EXPORTERS.get(fmt)
    model = inference_model(genotype, weights, seed, task)
    path = Path(out)
    if fmt == "flax":
        if path.exists() and any(path.iterdir()):
            path = path / f"flax-{genotype.fingerprint()}"
    elif path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"arch-{genotype.fingerprint()}{SUFFIX[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return exporter(model, genotype, path), model
