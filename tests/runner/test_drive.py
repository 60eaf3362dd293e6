"""Self-driven searchers: the runner hands over the loop and journals what the searcher evaluates."""

import json

from nas.cli.config import compose
from nas.core.result import Result, TrialState
from nas.runner.journal import read_events, replay
from nas.runner.run import search
from nas.searchers.base import SEARCHERS, DrivingSearcher


@SEARCHERS.register("_test_driver")
class _Driver(DrivingSearcher):
    """Evaluates two sampled genotypes through the runner and records one evaluated 'elsewhere'."""

    def drive(self, drive):
        drive.log("driver: starting")
        found = drive.evaluate(self.space.sample(self.rng), {"role": "found"})
        drive.evaluate(self.space.sample(self.rng), {"role": "random"})
        outside = Result(trial=-1, genotype=self.space.sample(self.rng), state=TrialState.PRUNED,
                         metrics={"valid_accuracy": 1.0}, epochs=1)
        recorded = drive.record(outside)
        drive.report(recorded.trial, 0, {"valid_accuracy": 1.0})
        baseline = Result(trial=-1, genotype=self.space.sample(self.rng), state=TrialState.COMPLETE,
                          metrics={"valid_accuracy": 100.0}, tags={"role": "random"})
        drive.record(baseline)  # a baseline that beats the answer must not become best.json
        drive.add_report_section("Driver table", "| a | b |\n|---|---|\n| 1 | 2 |")
        assert found.trial == 0 and recorded.trial == 2
        assert len(drive.results) == 4


def test_driving_searcher_trials_are_journalled_and_reported(synthetic_nb201_table, tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = compose(["evaluator=tabular", f"evaluator.table={synthetic_nb201_table}", f"run_dir={run_dir}"])
    config["searcher"] = {"name": "_test_driver"}
    summary = search(config, progress=True)
    err = capsys.readouterr().err
    assert "driver: starting" in err
    assert "[1] trial 0" in err and "(role=found)" in err and "eta" not in err  # no made-up budget or ETA
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending
    assert [r.trial for r in results] == [0, 1, 2, 3]
    assert [r.tags.get("role") for r in results] == ["found", "random", None, "random"]
    assert results[2].state is TrialState.PRUNED
    assert summary.best is not None and summary.best.trial == 0  # the searcher's answer, not a baseline
    best = json.loads((run_dir / "best.json").read_text())
    assert best["trial"] == 0
    report = (run_dir / "report.md").read_text()
    assert "## Driver table" in report and "| 1 | 2 |" in report and "role=found" in report
