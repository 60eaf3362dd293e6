"""`nas export` of trained models (onnx, pt2, flax), `nas.create_model`, and their bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import nas
from nas.cli.main import main
from nas.export import export_model, inference_model, load_flax
from nas.training.weights import save_weights

SMALL = nas.space("nb201", preset="small").sample(seed=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A training directory of a small NB201 cell (1 epoch on digits at 16 px)."""
    root = tmp_path_factory.mktemp("trained")
    arch = root / "small.json"
    arch.write_text(json.dumps(SMALL.to_json()))
    assert main(["train", str(arch), f"out={root / 'run'}", "recipe.epochs=1", "recipe.batch_size=128",
                 "dataset.resolution=16"]) == 0
    return root / "run"


def _images(n: int = 5) -> np.ndarray:
    from nas.data.base import load_dataset

    return load_dataset("digits", resolution=16).test_x[:n]


def _exported(capsys) -> str:
    return capsys.readouterr().out.strip().split("exported: ")[-1]


def test_onnx_and_pt2_give_the_trained_predictions(trained, tmp_path, capsys) -> None:
    import onnxruntime

    model = nas.create_model(run=trained)
    x = _images()
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    assert main(["export", str(trained), "format=onnx", f"out={tmp_path / 'm.onnx'}"]) == 0
    printed = capsys.readouterr()
    assert "check: onnxruntime_max_abs_diff" in printed.out and "warning" not in printed.err
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    assert [o.name for o in session.get_outputs()] == ["logits"]
    got = session.run(None, {"input": x})[0]
    assert np.abs(got - expected).max() <= 1e-4
    assert main(["export", str(trained), "format=pt2", f"out={tmp_path / 'm.pt2'}"]) == 0
    program = torch.export.load(str(tmp_path / "m.pt2")).module()
    assert np.abs(program(torch.from_numpy(x)).detach().numpy() - expected).max() <= 1e-4
    # the untrained network answers differently: the export really carries the trained weights
    fresh = nas.build(nas.load(str(trained / "arch.json"))).eval()
    with torch.no_grad():
        assert np.abs(fresh(torch.from_numpy(x)).numpy() - expected).max() > 1e-2


def test_flax_export_loads_in_one_call_and_matches(trained, tmp_path, capsys) -> None:
    import jax.numpy as jnp

    assert main(["export", str(trained), "format=flax", f"out={tmp_path / 'flax'}"]) == 0
    network = load_flax(tmp_path / "flax")
    same = nas.create_model(run=tmp_path / "flax", backend="jax")
    x = _images()
    with torch.no_grad():
        expected = nas.create_model(run=trained)(torch.from_numpy(x)).numpy()
    assert np.abs(np.asarray(network(jnp.asarray(x))) - expected).max() <= 1e-4
    assert np.abs(np.asarray(same(jnp.asarray(x))) - expected).max() <= 1e-4


def test_untrained_export_warns(tmp_path, capsys) -> None:
    assert main(["export", "nb201-best-cifar10", "format=pt2", f"out={tmp_path / 'u.pt2'}"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: nb201-best-cifar10 has no trained weights") and err.count("\n") == 1


def test_inference_exports_leave_auxiliary_heads_out() -> None:
    genotype = nas.space("nasnet", filters=8, cells_per_stack=1, aux_head=True,
                         input_shape=[3, 32, 32]).sample(seed=0)
    full = nas.build(genotype)
    assert set(full.arch.output_shapes) == {"logits", "aux_logits"}
    model = inference_model(genotype)
    assert model.heads == ["logits"]
    assert not any(n.name.startswith("aux") for n in model.arch.nodes)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.module(x), full.eval()(x)["logits"])


def test_multitask_heads_and_task_selection(tmp_path) -> None:
    genotype = nas.space("fbnetv5", preset="cpu").sample(seed=0)
    heads = inference_model(genotype).heads
    assert heads[:2] == ["logits", "seg"] and all(h.startswith("det.") for h in heads[2:])
    seg = inference_model(genotype, task="seg")
    assert seg.heads == ["seg"] and list(seg.arch.output_shapes) == ["seg"]
    assert len(seg.arch.nodes) < len(inference_model(genotype).arch.nodes)  # the detection head is pruned
    with pytest.raises(nas.UserError, match="task='depth' is not a head of this network; valid: det, logits, seg"):
        inference_model(genotype, task="depth")
    path, model = export_model(genotype, "pt2", tmp_path / "det.pt2", task="det")
    assert len(model.heads) == 9 and path.exists()


def test_weights_of_another_architecture_name_the_tensor(trained, tmp_path, capsys) -> None:
    other = nas.space("nb201", preset="small", channels=16).sample(seed=3)
    (tmp_path / "other.json").write_text(json.dumps(other.to_json()))
    weights = str(trained / "model.safetensors")
    assert main(["export", str(tmp_path / "other.json"), "format=pt2", f"weights={weights}"]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {weights} does not fit this architecture: tensor 'layers.stem/conv.weight' has shape "
                   "[8, 1, 3, 3], the architecture needs [16, 3, 3, 3]\n")
    with pytest.raises(nas.UserError, match="does not fit this architecture"):
        nas.create_model(other, pretrained=weights)


def test_missing_corrupt_weights_unknown_format(trained, tmp_path, capsys) -> None:
    assert main(["export", str(trained), "format=pt2", f"weights={tmp_path / 'none.safetensors'}"]) == 2
    assert "no weights file" in capsys.readouterr().err
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    assert main(["export", str(trained), "format=pt2", f"weights={bad}", f"out={tmp_path / 'x.pt2'}"]) == 2
    assert "is not a readable safetensors file" in capsys.readouterr().err
    assert not (tmp_path / "x.pt2").exists()
    assert main(["export", str(trained), "format=torchscript"]) == 2
    assert "unknown format 'torchscript'; valid choices: flax, json, onnx, pt2" in capsys.readouterr().err


def test_create_model_and_list_models(tmp_path) -> None:
    assert "nasnet-a-mobile" in nas.list_models() and nas.list_models("resnet-rs-5*") == ["resnet-rs-50",
                                                                                          "resnet-rs-50-i160"]
    model = nas.create_model("nb201_best_cifar10", num_classes=7)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    save_weights(model, tmp_path / "w.safetensors")
    again = nas.create_model("nb201-best-cifar10", num_classes=7, pretrained=tmp_path / "w.safetensors")
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))
    with pytest.raises(nas.UserError, match="exactly one"):
        nas.create_model()


def test_a_multitask_network_trains_and_exports_one_task(tmp_path, capsys) -> None:
    genotype = nas.space("fbnetv5", preset="cpu").sample(seed=0)
    arch = tmp_path / "fbnetv5.json"
    arch.write_text(json.dumps(genotype.to_json()))
    out = tmp_path / "cls"
    common = ["recipe.epochs=1", "recipe.max_steps_per_epoch=2", "dataset.resolution=32"]
    assert main(["train", str(arch), f"out={out}", *common]) == 2
    err = capsys.readouterr().err
    assert "several task heads (det, logits, seg); nas train trains one classifier: pass task=<head>" in err
    assert not out.exists()
    assert main(["train", str(arch), f"out={out}", "task=seg", *common]) == 2
    assert "task=seg: nas train trains classifiers (one head of shape [classes]); seg gives [10, 16, 16]" in \
        capsys.readouterr().err
    assert main(["train", str(arch), f"out={out}", "task=logits", *common]) == 0
    capsys.readouterr()
    assert main(["export", str(out), "format=pt2", f"out={tmp_path / 'cls.pt2'}"]) == 0
    assert "outputs: logits; weights: trained" in capsys.readouterr().out
    program = torch.export.load(str(tmp_path / "cls.pt2")).module()
    x = torch.from_numpy(_images_at(32))
    with torch.no_grad():
        assert torch.allclose(program(x), nas.create_model(run=out)(x), atol=1e-5)
    assert main(["export", str(out), "format=pt2", "task=seg"]) == 2
    assert "was trained for task=logits; it has no weights for task=seg" in capsys.readouterr().err


def _images_at(resolution: int) -> np.ndarray:
    from nas.data.base import load_dataset

    return load_dataset("digits", resolution=resolution).test_x[:4]
