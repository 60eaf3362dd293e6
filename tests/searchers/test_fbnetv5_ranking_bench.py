"""``benchmarks/fbnetv5_ranking.py``: each stand-alone training is cached and reused, the noise ceiling is printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from nas.cli.config import compose
    from nas.runner.run import search

    run_dir = tmp_path_factory.mktemp("fbnetv5") / "run"
    config = compose(["space=fbnetv5", "searcher=fbnetv5", f"run_dir={run_dir}", "searcher.steps=4",
                      "searcher.warmup=1", "searcher.batch_size=8", "searcher.data.n=32", "searcher.data.valid=8",
                      "searcher.data.size=32", "searcher.final_steps=1", "searcher.final_batch_size=8",
                      "searcher.tasks=[classification]"])
    search(config, progress=False)
    return run_dir


def _main(bench, monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["fbnetv5_ranking.py", *args])
    bench.main()


def test_trainings_are_cached_and_reused_with_the_noise_ceiling(run_dir, tmp_path, monkeypatch, capsys,
                                                                 benchmark_script) -> None:
    bench = benchmark_script("fbnetv5_ranking")
    cache, out = tmp_path / "trained.json", tmp_path / "out.json"
    args = [str(run_dir), "--masks", "3", "--train-seeds", "2", "--final-steps", "2", "--trained", str(cache)]
    _main(bench, monkeypatch, *args, "--out", str(out))
    trained = json.loads(cache.read_text())
    assert len(trained) == 3 * 2 and all(key.endswith(("|2|0", "|2|1")) for key in trained)
    first = json.loads(out.read_text())["tasks"]["classification"]
    data = bench.data_key(bench.load_search(run_dir)[0])
    assert [r["metrics"] for r in first["rows"]] == [
        [trained[bench.train_key(data, "classification", r["mask"], 2, s)] for s in (0, 1)] for r in first["rows"]]
    assert "noise_ceiling_tau" in first and "noise ceiling (training seed 0 vs 1)" in capsys.readouterr().out

    def no_training(*_args, **_kwargs):
        raise AssertionError("a cached training ran again")

    monkeypatch.setattr(bench, "train_task", no_training)
    _main(bench, monkeypatch, *args, "--out", str(out))
    again = json.loads(out.read_text())["tasks"]["classification"]
    assert again["rows"] == first["rows"] and again["kendall_tau"] == first["kendall_tau"]


def test_the_cache_key_names_the_data(benchmark_script) -> None:
    bench = benchmark_script("fbnetv5_ranking")
    keys = {bench.data_key(SimpleNamespace(data_options=options, seed=seed))
            for options, seed in (({"n": 32}, 0), ({"n": 32}, 1), ({"n": 64}, 0))}
    assert len(keys) == 3


def test_a_task_the_run_did_not_search_is_refused(run_dir, monkeypatch, benchmark_script) -> None:
    with pytest.raises(SystemExit, match="not \\['detection'\\]"):
        _main(benchmark_script("fbnetv5_ranking"), monkeypatch, str(run_dir), "--tasks", "detection")


def test_a_count_below_one_is_refused_in_one_line(run_dir, monkeypatch, capsys, benchmark_script) -> None:
    with pytest.raises(SystemExit):
        _main(benchmark_script("fbnetv5_ranking"), monkeypatch, str(run_dir), "--train-seeds", "0")
    assert "--train-seeds must be at least 1, got 0" in capsys.readouterr().err
