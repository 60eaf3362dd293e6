"""``searcher=optuna``: any sampler or pruner class by ``_target_``, a stored study, and its resume."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import optuna
import pytest

from nas.cli.config import compose
from nas.cli.main import main
from nas.core.errors import UserError
from nas.runner.journal import read_events, replay
from nas.runner.run import resume, search
from nas.searchers.optuna_search import OptunaSearcher, absolute_storage, resolve_class, suggest
from nas.testing.dummy import DummySpace

FAST = ["searcher=optuna", "space.preset=small", "evaluator=cost", "objective=params:min"]


def _storage(spec: str) -> optuna.storages.BaseStorage | str:
    """How Optuna's own API (and optuna-dashboard) opens what ``searcher.storage`` names."""
    if "://" in spec:
        return spec
    return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(spec))


def _finished(run_dir):
    return replay(read_events(run_dir / "trials.jsonl"))[0]


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("target,cls", [("optuna.samplers.CmaEsSampler", optuna.samplers.CmaEsSampler),
                                        ("optuna.samplers.QMCSampler", optuna.samplers.QMCSampler),
                                        ("tpe", optuna.samplers.TPESampler)])
def test_sampler_by_target_with_its_keyword_arguments(target, cls):
    config = compose([*FAST, f"searcher.sampler._target_={target}", "+searcher.sampler.seed=7"])
    assert config["searcher"]["sampler"] == {"_target_": target, "seed": 7}
    searcher = OptunaSearcher(**{k: v for k, v in config["searcher"].items() if k != "name"
                                 and not k.startswith("warm_start")})
    searcher.setup(DummySpace(), seed=0)
    assert type(searcher.study.sampler) is cls
    plain = optuna.create_study(sampler=cls(seed=7))  # the keyword seed=7, not the run's seed 0, reached it
    expected = [suggest(plain.ask(), DummySpace().spec()) for _ in range(3)]
    assert [searcher.ask().values for _ in range(3)] == expected


def test_keyword_arguments_reach_the_sampler_and_pruner():
    searcher = OptunaSearcher(sampler={"_target_": "optuna.samplers.TPESampler", "n_startup_trials": 3,
                                       "n_ei_candidates": 5},
                              pruner={"_target_": "optuna.pruners.PatientPruner", "patience": 2,
                                      "wrapped_pruner": {"_target_": "optuna.pruners.PercentilePruner",
                                                         "percentile": 30.0}})
    searcher.setup(DummySpace(), seed=0)
    sampler, pruner = searcher.study.sampler, searcher.study.pruner
    assert (sampler._n_startup_trials, sampler._n_ei_candidates) == (3, 5)
    assert isinstance(pruner, optuna.pruners.PatientPruner) and pruner._patience == 2
    assert isinstance(pruner._wrapped_pruner, optuna.pruners.PercentilePruner)
    assert pruner._wrapped_pruner._percentile == 30.0


def test_short_names_stay_aliases_with_their_settings():
    searcher = OptunaSearcher(sampler="cmaes", startup_trials=4, pruner="none")
    searcher.setup(DummySpace(), seed=0)
    assert isinstance(searcher.study.sampler, optuna.samplers.CmaEsSampler)
    assert searcher.study.sampler._n_startup_trials == 4
    assert isinstance(searcher.study.pruner, optuna.pruners.NopPruner)
    median = OptunaSearcher(pruner={"_target_": "median"}, pruner_startup_trials=2)
    median.setup(DummySpace(), seed=0)
    assert median.study.pruner._n_startup_trials == 2


@pytest.mark.parametrize("name", ["os.system", "optuna.samplers._tpe.sampler.TPESampler", "optuna.samplers.np",
                                  "optuna.samplers.nsgaii.np.random.RandomState", "optunax.samplers.TPESampler",
                                  "optuna.samplers.TPESampler.__init__"])
def test_targets_outside_optunas_samplers_and_pruners_are_refused(name):
    with pytest.raises(ValueError, match="is not a class under"):
        resolve_class(name)


def test_a_class_imported_into_optuna_from_elsewhere_is_refused(monkeypatch):
    """Only classes Optuna defines: one that a module of optuna.samplers merely imports is not reachable."""
    import collections

    monkeypatch.setattr(optuna.samplers, "Imported", collections.OrderedDict, raising=False)
    with pytest.raises(ValueError, match="is not a class under"):
        resolve_class("optuna.samplers.Imported")
    assert resolve_class("optuna.samplers.nsgaii.SBXCrossover") is optuna.samplers.nsgaii.SBXCrossover


def test_a_sampler_a_search_runs_with(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["search", *FAST, "budget.trials=4", f"run_dir={run_dir}",
                 "searcher.sampler._target_=optuna.samplers.RandomSampler"]) == 0
    assert len(_finished(run_dir)) == 4


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_the_study_is_stored_where_optuna_opens_it(kind, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = "sqlite:///study.db" if kind == "sqlite" else "study.log"  # relative: kept absolute in config.json
    run_dir = tmp_path / "run"
    search(compose([*FAST, "budget.trials=5", f"run_dir={run_dir}", f"searcher.storage={spec}"]), progress=False)
    stored = json.loads((run_dir / "config.json").read_text())["searcher"]["storage"]
    assert stored == absolute_storage(spec) != spec
    assert stored.endswith(str(tmp_path / ("study.db" if kind == "sqlite" else "study.log")))
    assert optuna.study.get_all_study_names(_storage(stored)) == ["run"]  # named after the run directory
    study = optuna.load_study(study_name="run", storage=_storage(stored))
    results = _finished(run_dir)
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    assert [t.user_attrs["nas_trial"] for t in study.trials] == [r.trial for r in results]
    assert [t.value for t in study.trials] == [r.metrics["params"] for r in results]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_resume_continues_the_same_study_without_doubling(kind, tmp_path, monkeypatch):
    spec = f"sqlite:///{tmp_path}/s.db" if kind == "sqlite" else str(tmp_path / "s.log")
    run_dir = tmp_path / "run"
    search(compose([*FAST, "budget.trials=4", f"run_dir={run_dir}", f"searcher.storage={spec}"]), progress=False)
    monkeypatch.chdir(tmp_path.parent)  # a resume from elsewhere finds the same storage
    resume(run_dir, progress=False, budget=7)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    assert [t.user_attrs["nas_trial"] for t in study.trials] == list(range(7))
    assert [t.value for t in study.trials] == [r.metrics["params"] for r in _finished(run_dir)]
    assert optuna.study.get_all_study_names(_storage(spec)) == ["run"]


def test_resume_after_a_kill_adds_what_the_study_lacks_and_fails_what_was_running(tmp_path, monkeypatch):
    """Killed after the journal recorded trial 3 but before the study was told: trial 3 is added to the study on
    resume, the trial left running is marked failed, and no finished trial is stored twice."""
    spec = str(tmp_path / "s.log")
    run_dir = tmp_path / "run"
    told = OptunaSearcher.tell

    def killed_at_trial_3(self, genotype, result):
        if result.trial == 3:
            raise KeyboardInterrupt
        told(self, genotype, result)

    monkeypatch.setattr(OptunaSearcher, "tell", killed_at_trial_3)
    with pytest.raises(KeyboardInterrupt):
        search(compose([*FAST, "budget.trials=6", f"run_dir={run_dir}", f"searcher.storage={spec}"]),
               progress=False)
    monkeypatch.setattr(OptunaSearcher, "tell", told)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["RUNNING"]
    resume(run_dir, progress=False)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["nas_trial"] for t in complete) == list(range(6))
    assert [t.state.name for t in study.trials].count("FAIL") == 1
    assert study.trials[3].state == optuna.trial.TrialState.FAIL
    by_trial = {r.trial: r.metrics["params"] for r in _finished(run_dir)}
    assert all(t.value == by_trial[t.user_attrs["nas_trial"]] for t in complete)


def test_a_new_run_does_not_join_a_study_that_has_trials(tmp_path):
    spec = str(tmp_path / "s.log")
    search(compose([*FAST, "budget.trials=2", f"run_dir={tmp_path / 'a'}", f"searcher.storage={spec}",
                    "searcher.study_name=shared"]), progress=False)
    with pytest.raises(UserError, match="study 'shared' in .* already holds 2 trials"):
        search(compose([*FAST, "budget.trials=2", f"run_dir={tmp_path / 'b'}", f"searcher.storage={spec}",
                        "searcher.study_name=shared"]), progress=False)
    assert not (tmp_path / "b").exists()


def test_a_resume_with_a_stored_study_does_not_repeat_the_samplers_draws(tmp_path):
    """The stored study's sampler is seeded past the trials it holds: the random sampler's first draws after a
    resume are not the first run's again (the runner's dedup would answer those repeats from its cache, each an
    extra trial of the study)."""
    spec = str(tmp_path / "s.log")
    run_dir = tmp_path / "run"
    search(compose([*FAST, "budget.trials=4", f"run_dir={run_dir}", f"searcher.storage={spec}",
                    "searcher.sampler=random"]), progress=False)
    resume(run_dir, progress=False, budget=8)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    assert [t.user_attrs["nas_trial"] for t in study.trials] == list(range(8))
    assert len({r.genotype.fingerprint() for r in _finished(run_dir)}) == 8


def test_a_resumed_warm_start_does_not_enqueue_its_candidates_twice(tmp_path):
    """The warm-start candidates are enqueued in the stored study once: a resume (which hands them to the searcher
    again) finds them there, and the first trials are still the candidates, in order."""
    spec = str(tmp_path / "s.log")
    run_dir = tmp_path / "run"
    warm = ["searcher.warm_start=zc_params", "searcher.warm_start_pool=20", "searcher.warm_start_top=4"]
    search(compose([*FAST, *warm, "budget.trials=2", f"run_dir={run_dir}", f"searcher.storage={spec}"]),
           progress=False)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 2 + ["WAITING"] * 2
    summary = resume(run_dir, progress=False, budget=6)
    study = optuna.load_study(study_name="run", storage=_storage(spec))
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 6
    with (run_dir / "warm_start.csv").open(newline="") as handle:
        candidates = [row["arch"] for row in csv.DictReader(handle)][:4]
    first = [summary.space.describe(r.genotype) for r in sorted(summary.results, key=lambda r: r.trial)][:4]
    assert first == candidates


def test_the_commands_of_the_docs_run(tmp_path):
    """The ``nas search searcher=optuna ...`` examples of docs/cli.md run as written (shortened by a cost
    evaluator and three trials), and their classes and keyword arguments reach Optuna."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    section = text[text.index("### Optuna: any sampler"):text.index("### The run directory")]
    commands = [" ".join(block.replace("\\\n", " ").split()) for block in
                re.findall(r"^nas search searcher=optuna .*?(?<!\\)$", section, flags=re.M | re.S)]
    assert len(commands) == 2, commands
    for k, command in enumerate(commands):
        run_dir = tmp_path / str(k)
        args = command.split()[2:]
        assert main(["search", *args, "space.preset=small", "evaluator=cost", "objective=params:min",
                     "budget.trials=3", f"run_dir={run_dir}"]) == 0
        assert len(_finished(run_dir)) == 3
        searcher = json.loads((run_dir / "config.json").read_text())["searcher"]
        built = OptunaSearcher(**{k: v for k, v in searcher.items() if k != "name" and not k.startswith("warm")})
        built.setup(DummySpace(), seed=0)
        if k == 0:
            assert isinstance(built.study.sampler, optuna.samplers.CmaEsSampler)
            assert built.study.sampler._n_startup_trials == 5 and built.study.sampler._popsize == 8
        else:
            assert isinstance(built.study.pruner, optuna.pruners.PatientPruner)
            assert isinstance(built.study.pruner._wrapped_pruner, optuna.pruners.MedianPruner)
