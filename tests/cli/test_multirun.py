"""`nas search -m`: sweeps expanded with Hydra's override grammar, one run directory per job, a summary;
`--cfg job|hydra|all`, `--info`, and Hydra's launchers (basic; joblib: `hydra/launcher=joblib`, `sweep.jobs=N`)."""

import csv
import json
import os

import pytest
import yaml

from nas.cli.config import compose
from nas.cli.main import main

COST = ["evaluator=cost", "objective=params:min", "space.preset=small", "budget.trials=3"]


def rows_of(sweep_dir):
    with open(sweep_dir / "summary.csv") as f:
        return list(csv.DictReader(f))


def test_two_by_two_sweep(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    assert main(["search", "-m", "searcher=random,evolution", "seed=0,1", *COST, f"sweep_dir={sweep}"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == f"sweep: {sweep}"
    rows = rows_of(sweep)
    assert [r["job"] for r in rows] == ["0", "1", "2", "3"]
    assert all(r["state"] == "complete" and r["trials"] == "3" for r in rows)
    seen = set()
    for row in rows:
        run_dir = sweep / row["run dir"].rsplit("/", 1)[-1]
        assert str(run_dir) == row["run dir"] and (run_dir / "trials.jsonl").is_file()
        config = json.loads((run_dir / "config.json").read_text())
        assert row["overrides"] == f"searcher={config['searcher']['name']} seed={config['seed']}"
        best = json.loads((run_dir / "best.json").read_text())
        assert float(row["best objective"]) == pytest.approx(best["metrics"]["params"], rel=1e-5)
        seen.add((config["searcher"]["name"], config["seed"]))
    assert seen == {("random", 0), ("random", 1), ("evolution", 0), ("evolution", 1)}
    assert len([p for p in sweep.iterdir() if p.is_dir()]) == 4
    assert "| job | overrides | best objective | trials | state | run dir |" in (sweep / "summary.md").read_text()


def test_cfg_job_prints_the_composed_config(capsys):
    overrides = ["searcher=random", "evaluator=cost", "seed=3", "budget.trials=7"]
    assert main(["search", *overrides, "--cfg", "job"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == compose(overrides)


def test_cfg_job_of_a_sweep_prints_each_job(capsys):
    assert main(["search", "-m", "seed=range(0,3)", "evaluator=cost", "--cfg", "job"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert docs == [compose(["evaluator=cost", f"seed={k}"]) for k in range(3)]


def test_cfg_hydra_prints_hydras_config(capsys):
    assert main(["search", "evaluator=cost", "--cfg", "hydra"]) == 0
    hydra = yaml.safe_load(capsys.readouterr().out)["hydra"]
    assert hydra["launcher"]["_target_"].endswith("BasicLauncher") and hydra["output_subdir"] is None
    assert hydra["sweep"]["dir"].startswith("${runs_root}/sweep-") and hydra["job"]["chdir"] is False
    assert hydra["overrides"]["task"] == ["evaluator=cost"]


def test_cfg_hydra_of_a_sweep_shows_its_launcher(tmp_path, capsys):
    printed = []
    for launcher in (["sweep.jobs=3"], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]):
        assert main(["search", "-m", "seed=0,1", *launcher, f"sweep_dir={tmp_path}", "--cfg", "hydra"]) == 0
        printed.append(yaml.safe_load(capsys.readouterr().out)["hydra"])
    assert printed[0]["launcher"] == printed[1]["launcher"]
    assert printed[0]["launcher"]["n_jobs"] == 3 and "JoblibLauncher" in printed[0]["launcher"]["_target_"]
    assert printed[0]["sweep"]["dir"] == str(tmp_path)
    assert main(["search", "-m", "seed=0,1", "evaluator=cost", "--cfg", "all"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert "hydra" in docs[0] and docs[1:] == [compose(["evaluator=cost", f"seed={k}"]) for k in range(2)]


def test_info_lists_the_groups(capsys):
    assert main(["search", "--info"]) == 0
    out = capsys.readouterr().out
    assert "searcher" in out and "evolution*" in out and "tabular" in out
    assert "hydra/launcher: basic*, joblib" in out


@pytest.mark.parametrize("args, message", [
    (["seed=0,1", "searcher.population_size=4,x"], "job 1 "),
    (["seed=0,1", "budget.trials=2,0"], "budget.trials must be at least 1"),
    (["searcher=random,nosuch"], "unknown searcher 'nosuch'"),
    (["seed=range(0,0)"], "expands to no jobs"),
    (["seed=0,1", "run_dir=x"], "run_dir= does not apply to a sweep"),
    (["seed=0,1", "hydra/launcher=nosuch"], "unknown hydra/launcher 'nosuch'; valid choices: basic, joblib"),
    (["seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=x"], "bad value for hydra.launcher.n_jobs"),
    (["seed=0,1", "hydra.launcher.nosuch=1"], "unknown setting 'hydra.launcher.nosuch'"),
    (["seed=0,1", "hydra.run.dir=x"], "`nas search` does not use hydra.run.dir"),
    (["seed=0,1", "sweep.jobs=2", "hydra/launcher=basic"], "both choose how jobs run"),
    (["seed=0,1", "sweep.jobs=0"], "sweep.jobs must be an integer >= 1"),
])
def test_a_bad_job_writes_nothing(tmp_path, capsys, args, message):
    sweep = tmp_path / "sweep"
    assert main(["search", "-m", "evaluator=cost", "budget.trials=1", *args, f"sweep_dir={sweep}",
                 f"runs_root={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert list(tmp_path.iterdir()) == []


def test_hydra_settings_need_a_sweep(tmp_path, capsys):
    assert main(["search", "evaluator=cost", "hydra/launcher=joblib", f"runs_root={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert err == "error: hydra/launcher=joblib: Hydra's settings apply to a sweep (nas search -m ...)\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # worker processes import torch and the package: the heaviest test of the file
def test_joblib_launcher_matches_the_basic_one(tmp_path, capsys):
    args = ["search", "-m", "searcher=random", "seed=0,1", *COST]
    assert main([*args, f"sweep_dir={tmp_path / 'seq'}"]) == 0
    assert main([*args, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={tmp_path / 'par'}"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"sweep: {tmp_path / 'par'}"
    seq, par = rows_of(tmp_path / "seq"), rows_of(tmp_path / "par")
    assert len(par) == 2
    for a, b in zip(seq, par):
        assert {k: v for k, v in a.items() if k != "run dir"} == {k: v for k, v in b.items() if k != "run dir"}
        assert b["run dir"] == a["run dir"].replace(str(tmp_path / "seq"), str(tmp_path / "par"))
        journals = [(tmp_path / d / a["run dir"].rsplit("/", 1)[-1] / "trials.jsonl") for d in ("seq", "par")]
        genotypes = [[json.loads(line)["genotype"] for line in j.read_text().splitlines()
                      if json.loads(line)["event"] == "finished"] for j in journals]
        assert genotypes[0] == genotypes[1]
        pids = [{json.loads(line)["worker"].rsplit(":", 1)[-1] for line in j.read_text().splitlines()
                 if json.loads(line)["event"] == "finished"} for j in journals]
        assert pids[0] == {str(os.getpid())} and str(os.getpid()) not in pids[1]  # worker processes ran them
        for pid in pids[1]:  # and they were stopped when the sweep ended
            with pytest.raises(ProcessLookupError):
                os.kill(int(pid), 0)
