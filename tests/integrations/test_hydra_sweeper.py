"""The Hydra sweeper ``hydra/sweeper=nas``: its parameter mapping, its loop over a launcher (in process), and the
example script ``examples/hydra_sweeper/train.py`` run as a user runs it (a subprocess, basic and joblib)."""

from __future__ import annotations

import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn, JobStatus

from nas.integrations.hydra_sweeper import SweepError, SweepOptions, run_sweep, searched_params

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hydra_sweeper"
PARAMS = {"model.depth": "range(1,9)", "model.width": "choice(8,16,32,64,128,256)",
          "model.activation": "choice(relu,gelu,tanh,sigmoid)"}


def example_loss():
    spec = importlib.util.spec_from_file_location("hydra_sweeper_example", EXAMPLE / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.loss


class CallLauncher:
    """A launcher that runs each job as a call of ``fn(values)`` here, and returns what Hydra's launchers do."""

    def __init__(self, fn):
        self.fn, self.batches, self.values = fn, [], []

    def launch(self, job_overrides, initial_job_idx):
        self.batches.append((initial_job_idx, [list(o) for o in job_overrides]))
        returns = []
        for overrides in job_overrides:
            values = {o.get_key_element(): o.value() for o in OverridesParser.create().parse_overrides(overrides)}
            job = JobReturn(overrides=list(overrides))
            try:
                job.return_value, job.status = self.fn(values), JobStatus.COMPLETED
                self.values.append(job.return_value)
            except Exception as exc:  # noqa: BLE001 - as run_job records a task's exception
                job.return_value, job.status = exc, JobStatus.FAILED
            returns.append(job)
        return returns

    @property
    def jobs(self):
        return [job for _, batch in self.batches for job in batch]


def architecture_loss(values):
    loss = example_loss()
    return loss(values["model.depth"], values["model.width"], values["model.activation"], values.get("optim.lr", 0.003))


def results_of(sweep_dir):
    return yaml.safe_load((Path(sweep_dir) / "optimization_results.yaml").read_text())


def test_the_sweep_maps_to_decisions_and_back():
    searched = searched_params(["lr=tag(log,interval(0.0001,0.1))", "name='a b,c'", "epochs=3",
                                "layers=range(2,10,2)", "units=int(interval(4,64))", "act=relu,gelu", "one=choice(7)"],
                               {"act": "choice(tanh,relu)", "drop": "interval(0.0,0.5)"})
    decisions = {d.label: d for d in searched.space.spec().decisions}
    assert set(decisions) == {"lr", "layers", "units", "act", "drop"}
    assert searched.space.distributions["layers"].low == 2 and searched.space.distributions["layers"].high == 8
    assert searched.space.distributions["lr"].log and searched.space.distributions["units"].high == 64
    assert searched.space.distributions["act"].choices == ("relu", "gelu")  # the command line replaced params
    assert searched.fixed == ["name='a b,c'", "epochs=3", "one=7"]
    for seed in range(20):
        genotype = searched.space.sample(seed)
        overrides = searched.overrides(genotype)
        parsed = {o.get_key_element(): o.value() for o in OverridesParser.create().parse_overrides(overrides)}
        assert parsed["name"] == "a b,c" and parsed["epochs"] == 3 and parsed["one"] == 7
        assert parsed["layers"] in (2, 4, 6, 8) and 4 <= parsed["units"] <= 64 and isinstance(parsed["units"], int)
        assert 1e-4 <= parsed["lr"] <= 0.1 and 0.0 <= parsed["drop"] <= 0.5 and parsed["act"] in ("relu", "gelu")
        assert searched.values_of(genotype) == {k: parsed[k] for k in ("lr", "layers", "units", "act", "drop")}


def test_evolution_finds_the_optimum_of_the_example(tmp_path):
    found = []
    for seed in range(3):
        launcher = CallLauncher(architecture_loss)
        run_sweep(SweepOptions(seed=seed, n_trials=60, params=PARAMS), [], launcher, tmp_path / str(seed))
        results = results_of(tmp_path / str(seed))
        assert len(launcher.jobs) == results["n_trials"] == 60 and results["n_failed"] == 0
        assert len({tuple(job) for job in launcher.jobs}) == 60  # a repeated proposal is not run again
        assert results["best_value"] == min(launcher.values)
        found.append(results["best_params"])
    assert found == [{"model.depth": 4, "model.width": 64, "model.activation": "gelu"}] * 3


def test_evolution_beats_random_on_the_example(tmp_path):
    def sweep(searcher, seed):
        run_sweep(SweepOptions(searcher=searcher, seed=seed, n_trials=40, params=PARAMS), [],
                  CallLauncher(architecture_loss), tmp_path / f"{searcher}{seed}")
        return results_of(tmp_path / f"{searcher}{seed}")["best_value"]

    evolution, random = ([sweep(searcher, seed) for seed in range(10)] for searcher in ("evolution", "random"))
    assert sum(v == 0.0 for v in evolution) > sum(v == 0.0 for v in random) + 2
    assert sum(evolution) < sum(random)


def test_batches_of_n_jobs_go_to_the_launcher(tmp_path):
    launcher = CallLauncher(architecture_loss)
    run_sweep(SweepOptions(searcher="random", seed=0, n_trials=7, n_jobs=3, direction="maximize", params=PARAMS),
              [], launcher, tmp_path)
    assert [(start, len(batch)) for start, batch in launcher.batches] == [(0, 3), (3, 3), (6, 1)]
    results = results_of(tmp_path)
    assert results["best_value"] == max(launcher.values) and results["direction"] == "maximize"


def test_a_small_space_is_exhausted_not_repeated(tmp_path):
    launcher = CallLauncher(lambda v: float(v["a"] * 10 + v["b"]))
    run_sweep(SweepOptions(seed=1, n_trials=50), ["a=1,2", "b=range(0,2)"], launcher, tmp_path)
    assert sorted(launcher.jobs) == [["a=1", "b=0"], ["a=1", "b=1"], ["a=2", "b=0"], ["a=2", "b=1"]]
    assert results_of(tmp_path)["best_value"] == 10.0 and results_of(tmp_path)["n_trials"] == 4


def test_failed_jobs_are_failed_trials(tmp_path):
    def flaky(values):
        if values["x"] % 3 == 0:
            raise RuntimeError("diverged")
        return math.nan if values["x"] == 4 else float(values["x"])

    run_sweep(SweepOptions(searcher="random", seed=0, n_trials=10), ["x=range(0,10)"], CallLauncher(flaky), tmp_path)
    results = results_of(tmp_path)
    assert results["n_failed"] == 5 and results["best_value"] == 1.0 and results["best_params"] == {"x": 1}
    with pytest.raises(SweepError, match="none of the 3 trials returned a number; the first: RuntimeError: diverged"):
        run_sweep(SweepOptions(n_trials=3), ["x=range(0,10,3)"], CallLauncher(flaky), tmp_path / "none")
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize("options, arguments, message", [
    (SweepOptions(searcher="tpe"), ["x=1,2"], "unknown searcher 'tpe'; valid choices: evolution"),
    (SweepOptions(direction="up"), ["x=1,2"], "direction must be minimize or maximize"),
    (SweepOptions(n_trials=0), ["x=1,2"], "n_trials and n_jobs must be at least 1"),
    (SweepOptions(), ["x=1", "y=choice(3)"], "nothing to search"),
    (SweepOptions(), ["x=glob(*)"], "not supported by the nas sweeper"),
    (SweepOptions(), ["x=interval(2,1)"], "an interval needs start < end"),
    (SweepOptions(), ["x=range(3,3)"], "the range is empty"),
])
def test_a_bad_sweep_is_refused_before_any_job(tmp_path, options, arguments, message):
    launcher = CallLauncher(lambda v: 0.0)
    with pytest.raises(SweepError, match=message):
        run_sweep(options, arguments, launcher, tmp_path / "sweep")
    assert launcher.batches == [] and not (tmp_path / "sweep").exists()


def run_example(tmp_path, *args):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(EXAMPLE / "train.py"), "-m", "hydra/sweeper=nas",
                           f"hydra.sweep.dir={tmp_path / 'sweep'}", *args], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=600)


def test_the_example_script_sweeps_with_evolution(tmp_path):
    done = run_example(tmp_path, "hydra.sweeper.searcher=evolution", "hydra.sweeper.n_trials=10",
                       "hydra.sweeper.seed=0", "+hydra.sweeper.searcher_options.population_size=4",
                       "model.depth=3,4,5", "model.width=choice(32,64)")
    assert done.returncode == 0, done.stderr[-2000:]
    losses = [float(line.rsplit(" ", 1)[1]) for line in done.stdout.splitlines() if ": loss " in line]
    results = results_of(tmp_path / "sweep")
    assert len(losses) == results["n_trials"] == 10 and results["best_value"] == pytest.approx(min(losses), abs=1e-4)
    assert results["searcher"] == "evolution" and set(results["best_params"]) == set(PARAMS)
    jobs = sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert jobs == sorted(str(k) for k in range(10))
    overrides = [yaml.safe_load((tmp_path / "sweep" / j / ".hydra" / "overrides.yaml").read_text()) for j in jobs]
    assert len({tuple(o) for o in overrides}) == 10 and all(len(o) == 3 for o in overrides)
    depths = [[item for item in o if item.startswith("model.depth=")] for o in overrides]
    assert all(len(d) == 1 and d[0] in ("model.depth=3", "model.depth=4", "model.depth=5") for d in depths)


@pytest.mark.slow
def test_the_example_script_finds_the_optimum(tmp_path):
    done = run_example(tmp_path, "hydra.sweeper.searcher=evolution", "hydra.sweeper.n_trials=60",
                       "hydra.sweeper.seed=0")
    assert done.returncode == 0, done.stderr[-2000:]
    results = results_of(tmp_path / "sweep")
    assert results["best_params"] == {"model.depth": 4, "model.width": 64, "model.activation": "gelu"}
    assert results["best_value"] == 0.0 and results["n_trials"] == 60


@pytest.mark.slow
def test_the_example_script_sweeps_through_the_joblib_launcher(tmp_path):
    done = run_example(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=4",
                       "hydra.sweeper.n_trials=8", "hydra.sweeper.searcher=random",
                       "optim.lr=tag(log,interval(0.0001,0.1))")
    assert done.returncode == 0, done.stderr[-2000:]
    results = results_of(tmp_path / "sweep")
    assert results["n_trials"] == 8 and results["n_failed"] == 0 and set(results["best_params"]) == {
        "model.depth", "model.width", "model.activation", "optim.lr"}
    assert "Joblib.Parallel(n_jobs=2" in done.stdout  # Hydra's log
    assert sorted(int(p.name) for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == list(range(8))
