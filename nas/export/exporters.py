"""Write a genotype as a file a user can take elsewhere.

``json``: the self-contained genotype (rebuilds the exact network with ``nas.load``/``nas.build``).
``torchscript``: a traced ``torch.jit`` module. ``onnx``: an ONNX graph (batch dimension dynamic).
Weights are those of a fresh build under ``seed`` unless a state dict is given: the search does not
keep trained weights, so export the architecture and train it (``nas train``) for deployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.core.registry import Registry
from nas.spaces.resolve import space_of

EXPORTERS: Registry[Callable[..., Path]] = Registry("export format")


def _card(genotype: Genotype) -> dict[str, Any]:
    space = space_of(genotype)
    arch = space.decode(genotype)
    return {"genotype": genotype.to_json(), "fingerprint": genotype.fingerprint(),
            "description": space.describe(genotype), "cost": arch_cost(arch),
            "input_shape": list(arch.input_shape), "outputs": {k: list(v) for k, v in arch.output_shapes.items()}}


@EXPORTERS.register("json")
def export_json(genotype: Genotype, out: Path, **_: Any) -> Path:
    """The genotype plus its card (cost, shapes, readable form)."""
    out.write_text(json.dumps(_card(genotype), indent=2) + "\n")
    return out


def _torch_model(genotype: Genotype, seed: int, state_dict: Any = None):
    import torch

    from nas.backends.torch import build

    arch = space_of(genotype).decode(genotype)
    model = build(arch, seed=seed)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    model.eval()
    example = torch.randn(2, *arch.input_shape)
    return model, example, arch


@EXPORTERS.register("torchscript")
def export_torchscript(genotype: Genotype, out: Path, seed: int = 0, state_dict: Any = None, **_: Any) -> Path:
    """A traced TorchScript module (eval mode)."""
    import torch

    model, example, _ = _torch_model(genotype, seed, state_dict)
    with torch.no_grad():
        traced = torch.jit.trace(model, example)
    traced.save(str(out))
    return out


@EXPORTERS.register("onnx")
def export_onnx(genotype: Genotype, out: Path, seed: int = 0, state_dict: Any = None, **_: Any) -> Path:
    """An ONNX model with a dynamic batch dimension; one output per head."""
    import torch

    model, example, arch = _torch_model(genotype, seed, state_dict)
    heads = [head for head, _ in arch.outputs]
    axes = {"input": {0: "batch"}, **{h: {0: "batch"} for h in heads}}
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(out), input_names=["input"], output_names=heads,
                          dynamic_axes=axes, dynamo=False, opset_version=17)
    return out


SUFFIX = {"json": ".json", "torchscript": ".pt", "onnx": ".onnx"}


def export_genotype(genotype: Genotype, fmt: str, out: str | Path, **options: Any) -> Path:
    """Export in format ``fmt`` to ``out`` (a file, or a folder that gets ``arch<suffix>``)."""
    exporter = EXPORTERS.get(fmt)
    path = Path(out)
    if path.is_dir() or not path.suffix:
        path.mkdir(parents=True, exist_ok=True)
        path = path / f"arch-{genotype.fingerprint()}{SUFFIX[fmt]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return exporter(genotype, path, **options)
