"""The zero-cost warm start and predictor_evolution's proxy features."""

from __future__ import annotations

import csv

import pytest
from scipy.stats import rankdata

from nas.cli.config import compose
from nas.core.cost import arch_cost
from nas.core.errors import UserError
from nas.core.result import Result, TrialState
from nas.evaluators.tabular import TabularEvaluator
from nas.evaluators.zero_cost import proxy_scores
from nas.evaluators.zero_cost.scorer import ProxyScorer
from nas.runner.run import resume, search
from nas.searchers.base import Objective
from nas.searchers.predictor_evolution import PredictorEvolution
from nas.spaces.nb201 import NB201Space

WARM = ["space=nb201", "space.preset=small", "evaluator=cost", "searcher.warm_start_pool=30",
        "searcher.warm_start_top=5"]


def _run(tmp_path, name, *extra, trials=7, seed=0):
    config = compose([*WARM, f"searcher={name}", "searcher.warm_start=zc_params", f"budget.trials={trials}",
                      f"run_dir={tmp_path / name}", f"seed={seed}", *extra])
    return search(config, progress=False)


def _pool(run_dir):
    with (run_dir / "warm_start.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("name", ["random", "evolution", "optuna", "predictor_evolution"])
def test_the_proxys_best_candidates_come_first(tmp_path, name) -> None:
    summary = _run(tmp_path, name)
    pool = _pool(summary.run_dir)
    assert len(pool) == 30
    params = [float(row["zc_params"]) for row in pool]
    assert params == sorted(params, reverse=True)
    first = [summary.space.describe(r.genotype) for r in sorted(summary.results, key=lambda r: r.trial)][:5]
    assert first == [row["arch"] for row in pool[:5]]
    counted = [arch_cost(summary.space.decode(r.genotype))["params"] for r in sorted(summary.results,
                                                                                   key=lambda r: r.trial)[:5]]
    assert counted == params[:5]


def test_the_pool_is_a_function_of_the_seed_and_resume_does_not_rescore(tmp_path) -> None:
    a = _run(tmp_path / "a", "random", trials=3)
    b = _run(tmp_path / "b", "random", trials=3)
    c = _run(tmp_path / "c", "random", trials=3, seed=1)
    text = (a.run_dir / "warm_start.csv").read_text()
    assert text == (b.run_dir / "warm_start.csv").read_text()
    assert text != (c.run_dir / "warm_start.csv").read_text()
    lines = text.splitlines(keepends=True)  # swap the 4th and 5th best: a resumed run reads the file, never re-scores
    lines[4], lines[5] = lines[5], lines[4]
    (a.run_dir / "warm_start.csv").write_text("".join(lines))
    again = resume(a.run_dir, progress=False, budget=8)
    order = [again.space.describe(r.genotype) for r in sorted(again.results, key=lambda r: r.trial)]
    assert order[:5] == [row["arch"] for row in _pool(a.run_dir)[:5]]
    assert order[3] == _pool(b.run_dir)[4]["arch"] and len(set(order[:5])) == 5


@pytest.mark.parametrize("name", ["random", "evolution", "predictor_evolution"])
def test_a_resumed_warm_started_search_proposes_what_the_uninterrupted_one_did(tmp_path, name) -> None:
    """The warm candidates are handed over before the journal is replayed, so the replayed asks take them in
    the first run's order and the search goes on as if never stopped."""
    straight = _run(tmp_path / "straight", name, trials=9)
    stopped = _run(tmp_path / "stopped", name, trials=3)
    resumed = resume(stopped.run_dir, progress=False, budget=9)

    def order(summary):
        return [summary.space.describe(r.genotype) for r in sorted(summary.results, key=lambda r: r.trial)]

    assert order(resumed) == order(straight)


def test_synflow_on_the_nb201_space(tmp_path) -> None:
    config = compose(["space=nb201", "space.preset=small", "evaluator=cost", "searcher=evolution",
                      "searcher.warm_start=zc_synflow", "searcher.warm_start_pool=8", "searcher.warm_start_top=3",
                      "budget.trials=3", f"run_dir={tmp_path / 'run'}"])
    summary = search(config, progress=False)
    pool = _pool(summary.run_dir)
    scores = [float(row["zc_synflow"]) for row in pool]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1
    assert [summary.space.describe(r.genotype) for r in summary.results] == [row["arch"] for row in pool[:3]]


def test_a_rank_sum_of_proxies(tmp_path) -> None:
    summary = _run(tmp_path, "random", "searcher.warm_start=zc_params+zc_synflow", trials=5)
    pool = _pool(summary.run_dir)
    assert "zc_params+zc_synflow" in pool[0]
    space = summary.space
    genotypes = [space.parse(row["arch"]) for row in pool]
    params = [arch_cost(space.decode(g))["params"] for g in genotypes]
    synflow = [proxy_scores(g, ["synflow"], None)["zc_synflow"] for g in genotypes]
    expected = rankdata(params) + rankdata(synflow)
    assert [float(row["zc_params+zc_synflow"]) for row in pool] == pytest.approx(list(expected))
    assert list(expected) == sorted(expected, reverse=True)
    assert [space.describe(r.genotype) for r in summary.results] == [row["arch"] for row in pool[:5]]


@pytest.mark.parametrize("extra, message", [
    (["searcher=random", "searcher.warm_start=zc_vote+zc_params"], "zc_vote cannot join a rank sum"),
    (["searcher=random", "searcher.warm_start=zc_params+zc_nope"], "unknown proxy 'zc_nope'"),
    (["searcher=nasnet_rl", "+searcher.warm_start=zc_synflow"], "searcher 'nasnet_rl' has no warm start"),
    (["searcher=random", "searcher.warm_start=zc_bogus"], "unknown proxy 'zc_bogus'"),
    (["searcher=random", "searcher.warm_start=zc_synflow", "searcher.warm_start_top=0"],
     "searcher.warm_start_top must be a positive integer"),
    (["searcher=random", "searcher.warm_start=zc_synflow", "searcher.warm_start_pool=20",
      "searcher.warm_start_top=50"], "exceeds"),
])
def test_bad_warm_starts_refuse_before_the_run(tmp_path, extra, message) -> None:
    config = compose(["space=nb201", "evaluator=cost", f"run_dir={tmp_path / 'run'}", *extra])
    with pytest.raises(UserError, match=message):
        search(config, progress=False)
    assert not (tmp_path / "run").exists()


def _proposals(table, features, queries=14):
    space, evaluate = NB201Space(), TabularEvaluator(table=str(table), with_cost=False)
    searcher = PredictorEvolution(init_samples=4, candidates=20, proxy_features=features)
    searcher.setup(space, 0, Objective("valid_accuracy", "max"))
    asked = []
    for trial in range(queries):
        genotype = searcher.ask()
        asked.append(space.describe(genotype))
        searcher.tell(genotype, Result(trial=trial, genotype=genotype, state=TrialState.COMPLETE,
                                       metrics=evaluate(genotype, None)))
    return asked, searcher


def test_proxy_features_are_computed_and_change_the_proposals(nb201_table) -> None:
    plain, _ = _proposals(nb201_table, None)
    featured, searcher = _proposals(nb201_table, ["zc_params", "macs"])
    assert searcher.proxy_features == ("params", "macs")
    assert isinstance(searcher.scorer, ProxyScorer) and searcher.scorer.computed > len(featured)
    assert featured[:4] == plain[:4]  # the random design is the same
    assert featured != plain


def test_bad_proxy_features() -> None:
    with pytest.raises(UserError, match="unknown proxy feature 'bogus'"):
        PredictorEvolution(proxy_features=["bogus"])
    with pytest.raises(UserError, match="unknown proxy feature 'vote'"):
        PredictorEvolution(proxy_features=["vote"])


def test_precomputed_scores_of_the_whole_space_rank_it_and_serve_the_proxy_features(
        tmp_path, synthetic_nb201_table, monkeypatch) -> None:
    """The whole-space warm start of docs/benchmarks.md: a ``warm_start_scores`` CSV of every NB201 isomorphism
    class with a pool larger than the CSV ranks all of it, and ``proxy_features`` looks each candidate's score up
    there: no proxy is computed during the search."""
    import nas.evaluators.zero_cost.scores as scores_module

    space = NB201Space()
    classes: dict[str, str] = {}
    with synthetic_nb201_table.open(newline="") as handle:
        for row in csv.DictReader(handle):
            classes.setdefault(space.canonical(space.parse(row["arch_str"])), row["arch_str"])
    cells = list(classes.values())
    made_up = [cell.count("nor_conv_3x3") * 10_000 - i for i, cell in enumerate(cells)]  # distinct scores
    path = tmp_path / "scores.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "zc_synflow"])
        writer.writerows(zip(cells, made_up))

    def computed(*args, **kwargs):
        raise AssertionError("a proxy was computed although the CSV holds every cell")

    monkeypatch.setattr(scores_module, "proxy_scores", computed)
    config = compose(["space=nb201", "evaluator=tabular", f"evaluator.table={synthetic_nb201_table}",
                      "searcher=predictor_evolution", "searcher.warm_start=zc_synflow",
                      f"searcher.warm_start_scores={path}", "searcher.warm_start_pool=15625",
                      "searcher.warm_start_top=4", "searcher.init_samples=4", "searcher.proxy_features=[synflow]",
                      "budget.trials=8", f"run_dir={tmp_path / 'run'}", "seed=0"])
    summary = search(config, progress=False)
    assert len(cells) == 6466 and len(_pool(summary.run_dir)) == 6466
    best = [cells[i] for i in sorted(range(len(cells)), key=lambda i: -made_up[i])[:4]]
    results = sorted(summary.results, key=lambda r: r.trial)
    assert len(results) == 8
    assert [space.describe(r.genotype) for r in results[:4]] == best
