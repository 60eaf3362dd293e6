"""Several objectives: pareto.json is the non-dominated set; hard constraints reject before evaluation."""

import json

import pytest

from nas.cli.config import compose
from nas.core.pareto import dominates
from nas.runner.journal import read_events
from nas.runner.run import search


def config(table, run_dir, *extra):
    return compose(["evaluator=tabular", f"evaluator.table={table}", "budget.trials=40", f"run_dir={run_dir}",
                    *extra])


@pytest.mark.parametrize("searcher", ["evolution", "optuna", "random"])
def test_pareto_json_is_non_dominated(synthetic_nb201_table, tmp_path, searcher):
    run_dir = tmp_path / searcher
    search(config(synthetic_nb201_table, run_dir, f"searcher={searcher}", "objectives=[valid_accuracy:max,params:min]"),
           progress=False)
    data = json.loads((run_dir / "pareto.json").read_text())
    assert data["objectives"] == ["valid_accuracy:max", "params:min"]
    finished = [e for e in read_events(run_dir / "trials.jsonl") if e["event"] == "finished"]

    def vec(m):
        return (m["valid_accuracy"], -m["params"])

    front = [vec(f["metrics"]) for f in data["front"]]
    assert front and all(not dominates(vec(e["metrics"]), p) for e in finished for p in front)
    front_trials = {f["trial"] for f in data["front"]}
    for e in finished:  # every other trial is dominated by (or equal to) a front member
        if e["trial"] not in front_trials:
            assert any(dominates(p, vec(e["metrics"])) or p == vec(e["metrics"]) for p in front)
    assert (run_dir / "pareto.png").is_file() and "Pareto front" in (run_dir / "report.md").read_text()


def test_constraints_reject_before_evaluation(synthetic_nb201_table, tmp_path):
    run_dir = tmp_path / "c"
    summary = search(config(synthetic_nb201_table, run_dir, "constraints.params_max=300000"), progress=False)
    assert len(summary.results) == 40
    assert all(r.metrics["params"] <= 300_000 for r in summary.results)
    events = read_events(run_dir / "trials.jsonl")
    rejected = [e for e in events if e["event"] == "rejected"]
    assert rejected and all(e["reason"].startswith("constraint: params") for e in rejected)
    assert not any(e["event"] == "started" and e["fingerprint"] in {r["fingerprint"] for r in rejected}
                   for e in events)


def test_bad_objective_and_constraint(synthetic_nb201_table, tmp_path):
    from nas.core import UserError

    with pytest.raises(UserError, match="mode must be max or min"):
        search(config(synthetic_nb201_table, tmp_path / "a", "objective=valid_accuracy:up"), progress=False)
    with pytest.raises(UserError, match="constraints.params_max must be a number"):
        search(config(synthetic_nb201_table, tmp_path / "b", "constraints.params_max=lots"), progress=False)


def test_macs_budget_reaches_the_scaling_searcher_and_rejects_larger_candidates(tmp_path):
    import nas

    space = nas.space("resnet_rs", preset="small")
    costs = sorted(nas.cost(space.sample(s))["macs"] for s in range(30))
    budget = costs[len(costs) // 2]
    config = compose(["space=resnet_rs", "searcher=scaling", "evaluator=cost", "objective=macs:max",
                      f"budget.macs={budget}", "budget.trials=4", f"run_dir={tmp_path / 'r'}"])
    summary = search(config, progress=False)
    assert summary.results and all(r.metrics["macs"] <= budget for r in summary.results)
    from nas.runner.run import build_searcher, build_space

    assert build_searcher(config, build_space(config)).max_macs == budget
