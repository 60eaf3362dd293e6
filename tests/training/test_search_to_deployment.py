"""The README's chain "From search to a deployed model", with fast settings: search -> nas train -> nas export
(onnx, pt2) -> the exported models answer as the trained one and reach its test accuracy."""

from __future__ import annotations

import json

import numpy as np
import torch

import nas
from nas.cli.main import main
from nas.data.base import load_dataset


def test_search_train_export_deploy(tmp_path, capsys) -> None:
    import onnxruntime

    run, model_dir = tmp_path / "demo", tmp_path / "demo-model"
    assert main(["search", "space.preset=small", "budget.trials=2", "evaluator.epochs=1",
                 "evaluator.max_steps_per_epoch=2", f"run_dir={run}"]) == 0
    assert main(["train", str(run), "recipe.epochs=2", f"out={model_dir}"]) == 0
    assert json.loads((model_dir / "arch.json").read_text())["genotype"] == \
        json.loads((run / "best.json").read_text())["genotype"]
    capsys.readouterr()
    exported = {}
    for fmt in ("onnx", "pt2"):
        assert main(["export", str(model_dir), f"format={fmt}"]) == 0
        exported[fmt] = capsys.readouterr().out.strip().split("exported: ")[-1]
    data = load_dataset("digits")
    trained = nas.create_model(run=model_dir)
    with torch.no_grad():
        expected = trained(torch.from_numpy(data.test_x)).numpy()
    session = onnxruntime.InferenceSession(exported["onnx"])
    from_onnx = session.run(["logits"], {"input": data.test_x})[0]
    from_pt2 = torch.export.load(exported["pt2"]).module()(torch.from_numpy(data.test_x)).detach().numpy()
    assert np.abs(from_onnx - expected).max() <= 1e-4
    assert np.abs(from_pt2 - expected).max() <= 1e-4
    final = [json.loads(x) for x in (model_dir / "metrics.jsonl").read_text().splitlines()][-1]
    accuracy = 100.0 * float((from_onnx.argmax(1) == data.test_y).mean())
    assert accuracy == 100.0 * float((expected.argmax(1) == data.test_y).mean())
    assert accuracy > 50.0 and final["valid_accuracy"] > 50.0
