"""`nas search` end to end: the run directory of DESIGN §4, then show and export from it."""

import json

import numpy as np
import pytest

from nas.cli.main import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "run"
    code = main(["search", "space=nb201", "space.preset=small", "evaluator.epochs=1", "budget.trials=3",
                 f"run_dir={path}"])
    assert code == 0
    return path


def test_run_directory_contents(run_dir, capsys):
    for name in ("config.json", "trials.jsonl", "best.json", "report.md", "progress.png"):
        assert (run_dir / name).is_file(), name
    events = [json.loads(line) for line in (run_dir / "trials.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "finished"]
    assert len(finished) == 3
    for e in finished:
        for key in ("trial", "state", "genotype", "fingerprint", "metrics", "worker", "started", "finished"):
            assert key in e
        assert e["state"] == "complete"
        assert {"valid_accuracy", "test_accuracy", "params", "macs"} <= set(e["metrics"])
    assert any(e["event"] == "reported" for e in events)
    best = json.loads((run_dir / "best.json").read_text())
    assert best["metrics"]["valid_accuracy"] == max(e["metrics"]["valid_accuracy"] for e in finished)
    report = (run_dir / "report.md").read_text()
    assert "| rank | trial | valid_accuracy" in report
    assert (run_dir / "progress.png").read_bytes()[:4] == b"\x89PNG"


def test_last_line_is_the_run_dir(tmp_path, capsys):
    path = tmp_path / "r"
    assert main(["search", "space.preset=small", "evaluator=cost", "objective=params:min", "budget.trials=2",
                 f"run_dir={path}"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"run: {path}"


def test_existing_run_dir_is_not_overwritten(run_dir, capsys):
    assert main(["search", "budget.trials=1", f"run_dir={run_dir}"]) == 2
    assert "resume=" in capsys.readouterr().err


def test_show_best(run_dir, capsys):
    assert main(["show", str(run_dir / "best.json")]) == 0
    out = capsys.readouterr().out
    assert "space:        nb201 v1" in out and "params:" in out


def test_export_onnx_matches_torch(run_dir, capsys):
    import onnxruntime
    import torch

    import nas

    assert main(["export", str(run_dir), "format=onnx"]) == 0
    path = capsys.readouterr().out.strip().split("exported: ")[-1]
    assert path.startswith(str(run_dir / "export"))
    genotype = nas.load(run_dir / "best.json")
    model = nas.build(genotype, backend="torch", seed=0).eval()
    x = np.random.default_rng(0).standard_normal((4, *genotype.macro_dict["input_shape"])).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    got = onnxruntime.InferenceSession(path).run(None, {"input": x})[0]
    assert np.abs(got - expected).max() < 1e-4


def test_export_json_and_pt2_of_a_trial(run_dir, tmp_path, capsys):
    import torch

    assert main(["export", str(run_dir), "format=json", "trial=1", f"out={tmp_path / 'a.json'}"]) == 0
    card = json.loads((tmp_path / "a.json").read_text())
    assert card["genotype"]["space"] == "nb201" and card["cost"]["params"] > 0
    assert main(["export", str(tmp_path / "a.json"), "format=pt2", f"out={tmp_path / 'a.pt2'}"]) == 0
    program = torch.export.load(str(tmp_path / "a.pt2")).module()
    assert program(torch.zeros(3, *card["input_shape"])).shape == (3, 10)
    assert main(["export", str(run_dir), "format=json", "trial=999"]) == 2
    assert main(["export", str(run_dir), "format=tflite"]) == 2


def test_proxy_search_reports_zero_cost_metrics(tmp_path, capsys):
    run = tmp_path / "zc"
    assert main(["search", "space.preset=small", "evaluator=proxy", "evaluator.proxies=[synflow,naswot]",
                 "objective=zc_naswot:max", "searcher=random", "budget.trials=2", f"run_dir={run}"]) == 0
    finished = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()
                if json.loads(line)["event"] == "finished"]
    assert len(finished) == 2 and all({"zc_synflow", "zc_naswot"} <= set(e["metrics"]) for e in finished)
