"""A user's mistake: one clear line naming what is wrong and the valid choices, exit 2, no traceback."""

import json
import subprocess
import sys

import pytest

from nas.cli.config import group_options
from nas.cli.main import main
from nas.core.errors import UserError
from nas.core.space import SPACES
from nas.searchers import SEARCHERS
from nas.testing.skips import NEEDS_NO_GPU

SPACE_CHOICES = ", ".join(SPACES.names())
SEARCHER_CHOICES = ", ".join(group_options("searcher"))


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "nas.cli.main", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["search", "space=nope"], f"unknown space 'nope'; valid choices: {SPACE_CHOICES}"),
    (["search", "searcher=nope"], f"unknown searcher 'nope'; valid choices: {SEARCHER_CHOICES}"),
    (["search", "evaluator=nope"], "unknown evaluator 'nope'; valid choices: chain, cost, proxy, tabular, train"),
    (["search", "evaluator=proxy", "evaluator.proxies=[synflow,bogus]"], "unknown proxy 'bogus'; valid choices:"),
    (["search", "evaluator=proxy", "evaluator.batch_size=0"], "evaluator.batch_size must be a positive integer"),
    (["search", "evaluator=proxy", "evaluator.backend=jax", "evaluator.proxies=[snip]"],
     "proxy 'snip' has no jax implementation"),
    (["search", "searcher.warm_start=zc_bogus"], "searcher.warm_start: unknown proxy 'zc_bogus'; valid choices:"),
    (["search", "searcher=nasnet_rl", "searcher.warm_start=zc_synflow"], "this searcher has no warm start"),
    (["search", "searcher.warm_start=zc_synflow", "searcher.warm_start_pool=0"],
     "searcher.warm_start_pool must be a positive integer"),
    (["search", "dataset=nope"], "unknown dataset 'nope'; valid choices:"),
    (["search", "runner=nope"], "unknown runner 'nope'; valid choices: local, ray"),
    (["search", "backend=tensorflow"], "unknown backend 'tensorflow'; valid choices: torch, jax"),
    (["search", "budget.trials"], "malformed override 'budget.trials'"),
    (["search", "searcher=optuna", "searcher.pruner=bogus"], "bad option for searcher 'optuna': unknown optuna pruner"),
    (["search", "budget.trialz=3"], "unknown setting 'budget.trialz'"),
    (["search", "budget.trials=many"], "budget.trials must be a non-negative integer"),
    (["search", "evaluator=tabular"], "evaluator.table=<path to nb201_combined.csv>"),
    (["search", "evaluator=tabular", "evaluator.table=/no/such.csv"], "table file not found: /no/such.csv"),
    (["search", "dataset=mnist"], "dataset.root must be set"),
    (["search", "dataset=mnist", "dataset.root=/no/such/dir"], "/no/such/dir"),
    (["search", "resume=/no/such/run"], "not a run directory"),
    (["show", "/no/such.json"], "no such file or published architecture"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["search", "evaluator.device=tpu"], "unknown device 'tpu'"),
])
def test_user_errors_are_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where runs/ would be created
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "a bad command left a run directory behind"


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    ('{"space": "nb201"}', "lacks version, decisions"),
    ('{"space": "nasbench999", "version": 1, "decisions": {}}', "unknown space 'nasbench999'"),
    ('{"space": "nb201", "version": 7, "decisions": {}}', "version 7"),
    ('{"space": "nb201", "version": 1, "decisions": {"edge_1_0": "conv_9x9"}}', "edge_1_0"),
    ('[1, 2]', "must be a JSON object"),
])
def test_bad_genotype_files(tmp_path, content, message, capsys, monkeypatch):
    path = tmp_path / "arch.json"
    path.write_text(content)
    monkeypatch.chdir(tmp_path)
    for command in (["show", str(path)], ["train", str(path)], ["export", str(path), "format=json"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, command
        assert [p.name for p in tmp_path.iterdir()] == ["arch.json"], command


def test_config_groups_match_the_registries():
    assert group_options("space") == SPACES.names()
    assert set(group_options("searcher")) <= set(SEARCHERS.names())


def test_no_traceback_in_a_real_process():
    out = run_cli("search", "space=nope")
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: unknown space 'nope'; valid choices: {SPACE_CHOICES}"


def test_genotype_from_another_space_version(tmp_path, capsys):
    import nas

    g = nas.space("nb201").sample(0).to_json()
    g["version"] = 0
    path = tmp_path / "old.json"
    path.write_text(json.dumps(g))
    assert main(["show", str(path)]) == 2
    assert "version 0; this build reads version 1" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason=f"{NEEDS_NO_GPU}: this machine has CUDA")
@pytest.mark.parametrize("args, message", [
    (["search", "evaluator.device=cuda"], "device 'cuda' asked for, but torch sees no CUDA device here"),
    (["search", "backend=jax", "evaluator.device=gpu"], "device 'gpu': JAX has no gpu backend here"),
    (["search", "space=fbnetv5", "searcher.device=cuda"], "device 'cuda' asked for, but torch sees no CUDA"),
])
def test_absent_gpu_is_one_line(args, message, capsys, tmp_path):
    assert main([*args, f"run_dir={tmp_path / 'run'}"]) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_gpu_is_not_checked_on_the_driver_of_a_ray_run():
    """With runner=ray the trials run on workers, which may have GPUs the driver machine lacks."""
    from nas.cli.config import compose
    from nas.runner.run import check_config

    check_config(compose(["runner=ray", "evaluator.device=cuda:7"]))
    if not __import__("torch").cuda.is_available():
        with pytest.raises(UserError, match="no CUDA device"):
            check_config(compose(["evaluator.device=cuda:7"]))


@pytest.mark.parametrize("args", [
    ["evaluator.proxies=[nope]"], ["evaluator.batch_size=0"], ["evaluator.backend=jax", "evaluator.proxies=[fisher]"],
])
def test_bad_proxy_options_stop_before_the_run_directory(args, capsys, tmp_path):
    assert main(["search", "evaluator=proxy", *args, f"run_dir={tmp_path / 'run'}"]) == 2
    assert not (tmp_path / "run").exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
