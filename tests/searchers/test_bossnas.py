"""BossNAS: EMA schedule, loss, ensemble target, selection over block tables, checkpoint/resume, a tiny search."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.backends.torch.supernets import hytra
from nas.core.errors import UserError
from nas.core.space import SPACES
from nas.searchers.base import SEARCHERS, Drive
from nas.searchers.bossnas import selection
from nas.testing.skips import NEEDS_NO_GPU

TINY_MACRO = {"widths": [16, 32, 64, 128], "stem_width": 8}
TINY_OPTIONS = {"steps_per_block": 3, "batch_size": 4, "rating_samples": 4, "bn_batch": 4, "neck_hidden": 16,
                "neck_dim": 8, "checkpoint_every": 2, "log_every": 1, "prefixes": "greedy", "strategy": "greedy"}


# --- selection over block tables (synthetic tables: a path's first token is its end level) --------

def _end(path):
    return path[0]


def _random_scores(seed: int, blocks: int = 4, levels: int = 4, variants: int = 3) -> list[dict]:
    rng = random.Random(seed)
    tables = []
    for _ in range(blocks):
        scores = {}
        for start in range(levels):
            for end in (start, start + 1):
                if end < levels:
                    for v in range(variants):
                        if rng.random() < 0.8:
                            scores[(start, (end, v))] = rng.uniform(-4, -2)
        tables.append(scores)
    return tables


def _brute_force(tables) -> float:
    best = float("inf")
    options = [sorted(t) for t in tables]
    for chain in itertools.product(*options):
        level, ok = 0, True
        for start, path in chain:
            if start != level:
                ok = False
                break
            level = _end(path)
        if ok:
            best = min(best, sum(t[e] for t, e in zip(tables, chain)))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_dynamic_program_finds_the_true_minimum_and_never_loses_to_greedy(seed):
    tables = _random_scores(seed)
    score, paths = selection.dynamic_program(tables, _end)
    assert score == pytest.approx(_brute_force(tables))
    level, total = 0, 0.0
    for k, path in enumerate(paths):
        total += tables[k][(level, path)]
        level = _end(path)
    assert total == pytest.approx(score)
    try:
        greedy_score, _ = selection.greedy(tables, _end)
    except ValueError:  # the greedy chain may run into a level with no rated path
        return
    assert score <= greedy_score + 1e-12


def _random_embeddings(seed: int, dim: int = 6, samples: int = 5) -> list[selection.EmbeddingTable]:
    rng = np.random.default_rng(seed)
    tables = []
    for k, scores in enumerate(_random_scores(seed, variants=4)):
        entries = sorted(scores)
        n = len(entries)
        unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
        tables.append(selection.EmbeddingTable(k, entries, unit(rng.normal(size=(n, samples, dim))),
                                               unit(rng.normal(size=(n, samples, dim))),
                                               rng.normal(size=(n, samples, dim)), rng.normal(size=(n, samples, dim))))
    return tables


def test_block_scores_are_distances_to_the_center_of_the_same_prefix_population():
    table = _random_embeddings(0)[1]
    scores = selection.block_scores(table)
    entry = table.entries[3]
    rows = [i for i, e in enumerate(table.entries) if e[0] == entry[0]]
    c1, c2 = table.target1[rows].mean(0), table.target2[rows].mean(0)
    i = table.index[entry]
    cos = lambda a, b: (a * b / np.linalg.norm(b, axis=-1, keepdims=True)).sum(-1).mean()
    assert scores[entry] == pytest.approx(-2 * cos(table.pred1[i], c2) - 2 * cos(table.pred2[i], c1))


def _shared_tables(blocks: int = 3, n: int = 24, samples: int = 5, dim: int = 6, seed: int = 0):
    """Random embeddings of the same ``n`` candidates (one shared path each) in every block."""
    rng = np.random.default_rng(seed)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)
    tables, candidates = [], []
    for k in range(blocks):
        entries = [(k, (i,)) for i in range(n)]
        shift = rng.normal(size=(n, 1, dim))  # per-candidate offsets, so candidates differ beyond noise
        tables.append(selection.EmbeddingTable(k, entries, unit(shift + rng.normal(size=(n, samples, dim))),
                                               unit(shift + rng.normal(size=(n, samples, dim))),
                                               shift + rng.normal(size=(n, samples, dim)),
                                               shift + rng.normal(size=(n, samples, dim))))
        candidates.append(entries)
    return tables, candidates


def test_evolved_center_is_the_center_of_its_own_best_rated_fraction():
    tables, candidates = _shared_tables()
    fixed = selection.evolved_center(tables, candidates, top=1.0, iterations=5)
    assert fixed.iterations == 0 and fixed.members == list(range(24))
    for k, t in enumerate(tables):  # top=1: the fixed center of all candidates (the pooled scores)
        np.testing.assert_allclose([fixed.scores[k][e] for e in candidates[k]], t.pooled_scores())
    assert selection.evolved_center(tables, candidates, top=0.25, iterations=0).members == list(range(24))
    moved = selection.evolved_center(tables, candidates, top=0.25, iterations=50)
    assert len(moved.members) == 6 and 1 <= moved.iterations < 50
    per_block = [np.array([moved.scores[k][e] for e in candidates[k]]) for k in range(3)]
    for k, t in enumerate(tables):  # every block is scored against the center of the members
        np.testing.assert_allclose(per_block[k], t.scores_to(moved.members))
    total = np.sum(per_block, axis=0)  # converged: the members are the best 6 against their own center
    assert sorted(np.argsort(total, kind="stable")[:6].tolist()) == moved.members
    pooled_best = set(np.argsort(np.sum([t.pooled_scores() for t in tables], axis=0))[:6].tolist())
    assert pooled_best != set(moved.members)  # on these embeddings the center did move


def test_evolution_improves_over_its_initial_population():
    tables = _random_embeddings(3)
    fixed = selection.evolve(tables, _end, seed=0, population=6, generations=15, fixed_center=True)
    assert fixed.fitness <= fixed.initial_best
    assert fixed.history == sorted(fixed.history, reverse=True)  # elitist under a fixed center
    optimum, _ = selection.dynamic_program([selection.block_scores(t) for t in tables], _end)
    assert fixed.fitness >= optimum - 1e-9
    moving = selection.evolve(tables, _end, seed=0, population=6, generations=10)
    level = 0
    for k, path in enumerate(moving.arch):
        assert (level, path) in tables[k].index
        level = _end(path)


def test_table_round_trips_through_npz(tmp_path):
    table = _random_embeddings(1)[2]
    table.save(tmp_path / "t.npz")
    back = selection.EmbeddingTable.load(tmp_path / "t.npz")
    assert back.entries == table.entries and np.array_equal(back.pred2, table.pred2)


# --- the searcher ------------------------------------------------------------------------------

def test_importing_the_searcher_and_selection_does_not_import_torch():
    code = "import sys, nas.searchers.bossnas.searcher, nas.searchers.bossnas.selection; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bad_options_and_space_are_user_errors():
    cls = SEARCHERS.get("bossnas")
    with pytest.raises(UserError, match="strategy"):
        cls(strategy="best")
    with pytest.raises(UserError, match="prefixes=per_level"):
        cls(strategy="dp")
    with pytest.raises(UserError, match="threads"):
        cls(threads=0)
    with pytest.raises(UserError, match="steps_per_block"):
        cls(steps_per_block=0)
    from nas.testing.dummy import DummySpace

    with pytest.raises(UserError, match="declares blocks"):
        cls().setup(DummySpace())
    with pytest.raises(UserError, match="population"):
        cls(strategy="dp", prefixes="per_level").setup(SPACES.get("nb201")())
    with pytest.raises(UserError, match="optimizer must be one of"):
        cls(optimizer="adam")
    with pytest.raises(UserError, match="lars_eta must be positive"):
        cls(lars_eta=0)
    with pytest.raises(UserError, match="predictor_lr must be positive, got -1"):
        cls(predictor_lr=-1)
    with pytest.raises(UserError, match="lr must be positive, got 'fast'"):
        cls(lr="fast")
    with pytest.raises(UserError, match="min_crop"):
        cls(min_crop=0)
    for bad in (0, 1.5, True, "half"):
        with pytest.raises(UserError, match="center_top must be a fraction"):
            cls(center_top=bad)
    with pytest.raises(UserError, match="center_iterations must be an integer"):
        cls(center_iterations=-1)
    with pytest.raises(UserError, match="center_top/center_iterations/supernets apply"):
        cls(center_top=0.5).setup(SPACES.get("hytra")())
    with pytest.raises(UserError, match="population must be"):
        cls(population=1)
    with pytest.raises(UserError, match="one path in every block"):
        cls(population_seed=3).setup(SPACES.get("hytra")())


def _drive(run_dir: Path, logs: list[str]) -> Drive:
    return Drive(run_dir=run_dir, config={"dataset": {"name": "digits", "resolution": 32}}, budget=2, results=[],
                 evaluator_spec={}, evaluate=None, record=None, report=None, log=logs.append)


def _options(**changes):
    from nas.searchers.bossnas.searcher import BossNAS

    return {**BossNAS(**{**TINY_OPTIONS, **changes}).options}


def test_killed_block_resumes_from_its_checkpoint_with_the_same_ratings(tmp_path, monkeypatch):
    from nas.evaluators.supernet import _trainer
    from nas.searchers.bossnas import _search
    from nas.spaces.hytra.space import HyTraSpace

    torch.set_num_threads(1)
    real_candidates = hytra.Supernet.candidates
    monkeypatch.setattr(hytra.Supernet, "candidates", lambda self, b, s: real_candidates(self, b, s)[:6])  # not 51
    data = _search.load_dataset("digits", resolution=32)
    monkeypatch.setattr(_search, "load_dataset", lambda name, **options: data)
    space = HyTraSpace(preset="cpu", input_shape=[1, 32, 32], **TINY_MACRO)
    options = _options()
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir()
    killed_dir.mkdir()
    straight = _search._Search(space, 0, options, _drive(straight_dir, []))
    straight.train_block(0)

    # killed in the rating, after the last step's gates row but one step past the last checkpoint (step 2)
    real_rate = _trainer.rate_block

    def dying_rate(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(_trainer, "rate_block", dying_rate)
    with pytest.raises(KeyboardInterrupt):
        _search._Search(space, 0, options, _drive(killed_dir, [])).train_block(0)
    monkeypatch.setattr(_trainer, "rate_block", real_rate)
    rows_at_kill = (killed_dir / "collapse.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in rows_at_kill[1:]] == [["0", "1"], ["0", "2"], ["0", "3"]]
    logs: list[str] = []
    resumed = _search._Search(space, 0, options, _drive(killed_dir, logs))
    assert resumed.restore() and (resumed.block, resumed.trainer.step) == (0, 2)
    assert any("resuming" in line for line in logs)
    resumed.train_block(0)
    assert (resumed.block, resumed.trainer.step) == (1, 0)
    a, b = straight.tables[0], resumed.tables[0]
    assert a.entries == b.entries and len(a.entries) == 6
    np.testing.assert_allclose(a.pred1, b.pred1, atol=1e-5)
    np.testing.assert_allclose(a.target2, b.target2, atol=1e-5)
    assert (killed_dir / "supernet.pt").exists() and (killed_dir / "ratings_block0.csv").exists()
    assert straight.gates[0] == pytest.approx(resumed.gates[0], abs=1e-5, nan_ok=True)
    # the gates journal: one row per logged step, then the rating row, none doubled by the kill
    straight_rows = (straight_dir / "collapse.csv").read_text().splitlines()
    assert straight_rows[0].split(",") == list(_trainer.COLLAPSE_COLUMNS)
    assert [r.split(",")[:2] for r in straight_rows[1:]] == [["0", "1"], ["0", "2"], ["0", "3"], ["0", "3"]]
    assert [r.split(",")[:2] for r in (killed_dir / "collapse.csv").read_text().splitlines()] == \
        [r.split(",")[:2] for r in straight_rows]


@pytest.mark.slow
def test_tiny_search_end_to_end(tmp_path):
    from nas.cli.config import compose
    from nas.runner.journal import read_events, replay
    from nas.runner.run import search

    run_dir = tmp_path / "run"
    options = {**TINY_OPTIONS, "prefixes": "per_level", "strategy": "dp"}
    overrides = [f"searcher.{k}={v}" for k, v in options.items()]
    config = compose(["searcher=bossnas", f"run_dir={run_dir}", "dataset.resolution=32", "evaluator.epochs=1",
                      "evaluator.max_steps_per_epoch=2", "evaluator.batch_size=16", "budget.trials=2", *overrides])
    config["space"] = {"name": "hytra", "preset": "cpu", "macro": dict(TINY_MACRO)}
    summary = search(config, progress=False)
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending and [r.tags["role"] for r in results] == ["found", "random"]
    found = json.loads((run_dir / "bossnas.json").read_text())
    assert found["strategy"] == "dp" and len(found["found"]) == 4 and len(found["gates"]) == 4
    assert found["dp"]["summed_pooled_score"] <= found["greedy"]["summed_pooled_score"] + 1e-9
    assert found["evolution"]["summed_score"] is not None
    assert results[0].genotype == summary.space.from_tokens([t for p in found["found"] for t in p])
    assert "BossNAS block ratings" in (run_dir / "report.md").read_text()
    assert (run_dir / "collapse.csv").exists()
    for k in range(4):
        assert (run_dir / f"ratings_block{k}.csv").exists() and (run_dir / f"ratings_block{k}.md").exists()
    assert (run_dir / "supernet.pt").exists() and (run_dir / "best.json").exists()




def _nb201_search(run_dir: Path, **changes):
    from nas.cli.config import compose
    from nas.evaluators.supernet.embeddings import EmbeddingTable
    from nas.runner.run import search

    options = {"steps_per_block": 3, "batch_size": 4, "rating_samples": 8, "bn_batch": 4, "neck_hidden": 16,
               "neck_dim": 8, "log_every": 1, "population": 6, "population_seed": 3, **changes}
    config = compose(["space=nb201", "searcher=bossnas", "evaluator=cost", f"run_dir={run_dir}",
                      "+space.macro.channels=4", "+space.macro.cells_per_stage=1", "+space.macro.input_shape=[1,16,16]",
                      "dataset.resolution=16", "budget.trials=2",
                      *[f"searcher.{k}={v}" for k, v in options.items()]])
    summary = search(config, progress=False)
    if not (run_dir / "ratings_block0.npz").exists():  # several supernets: their tables are in supernet<m>/
        return summary, None
    return summary, [EmbeddingTable.load(run_dir / f"ratings_block{k}.npz") for k in range(3)]


def test_nb201_search_rates_one_population_in_every_block_and_finds_its_best_member(tmp_path):
    """NB201 (one cell in every stage): the same sampled cells are rated in each block; the found cell has the
    least summed pooled score; gates go to collapse.csv, bossnas.json and the report. ``shared_prefix=greedy``
    changes what blocks 2-3 are trained and rated after (not block 1), ``path_sampling=uniform`` what every
    block is trained on."""
    run_dir = tmp_path / "nb"
    summary, tables = _nb201_search(run_dir)
    cells = [path for _, path in tables[0].entries]
    assert len(cells) == 6 and all([p for _, p in t.entries] == cells for t in tables)
    assert [t.entries[0][0] for t in tables] == [0, 0, 1]  # block k starts where block k - 1 ends
    members = np.arange(6)  # the center evolves: twice (default 5, converged) over the best 2 (0.33 of 6)
    for _ in range(5):
        total = np.sum([t.scores_to(members) for t in tables], axis=0)
        members = np.sort(np.argsort(total, kind="stable")[:2])
    total = np.sum([t.scores_to(members) for t in tables], axis=0)
    report = json.loads((run_dir / "bossnas.json").read_text())
    assert report["center"]["members"] == [list(cells[i]) for i in members] and report["center"]["top"] == 0.33
    best = cells[int(np.argmin(total))]
    assert report["found"] == [list(best)] * 3 and report["strategy"] == "population"
    found = [r for r in summary.results if r.tags["role"] == "found"][0]
    assert summary.space.describe(found.genotype) == report["architecture"]
    rows = (run_dir / "collapse.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * (3 + 1)  # 3 logged steps and one rating row per block
    verdict = "Collapse gates passed in every block" if report["gates_passed"] else "Collapse gates failed (they gauge"
    assert verdict in (run_dir / "report.md").read_text()
    # the same population seed rates the same cells
    again = random.Random("bossnas-population/3").sample(
        [tuple(c) for c in itertools.product(range(5), repeat=6)], 6)
    assert cells == again
    _, greedy = _nb201_search(tmp_path / "greedy", shared_prefix="greedy")
    np.testing.assert_allclose(greedy[0].pred1, tables[0].pred1, atol=1e-6)
    assert not np.allclose(greedy[1].pred1, tables[1].pred1, atol=1e-4)
    _, uniform = _nb201_search(tmp_path / "uniform", path_sampling="uniform")
    assert not np.allclose(uniform[0].pred1, tables[0].pred1, atol=1e-4)


def test_nb201_supernets_rank_one_population_and_choose_the_least_sum_of_ranks(tmp_path):
    """``supernets=2``: two supernets (seeds s, s + 1) rate the same population in ``supernet<m>/``; the first is
    the single-supernet run of the same seed, the second differs; the found cell has the least sum of the two
    rankings (each by the summed distance to its own evolved center)."""
    from nas.evaluators.supernet.embeddings import EmbeddingTable

    run_dir = tmp_path / "ens"
    summary, _ = _nb201_search(run_dir, supernets=2)
    _, single = _nb201_search(tmp_path / "one")
    tables = [[EmbeddingTable.load(run_dir / f"supernet{m}" / f"ratings_block{k}.npz") for k in range(3)]
              for m in range(2)]
    for k in range(3):
        np.testing.assert_allclose(tables[0][k].pred1, single[k].pred1, atol=1e-6)
    assert not np.allclose(tables[1][0].pred1, tables[0][0].pred1, atol=1e-4)
    cells = [path for _, path in tables[0][0].entries]
    assert [path for _, path in tables[1][0].entries] == cells
    totals = []
    for member in tables:
        center = selection.evolved_center(member, [t.entries for t in member], 0.33, 5)
        totals.append([sum(center.scores[k][member[k].entries[i]] for k in range(3)) for i in range(len(cells))])
    ranks = np.sum([np.argsort(np.argsort(t)) + 1 for t in totals], axis=0)
    report = json.loads((run_dir / "bossnas.json").read_text())
    assert report["supernets"] == 2 and [m["seed"] for m in report["members"]] == [0, 1]
    np.testing.assert_allclose(report["rank_sum"]["rank_sums"], ranks)
    best = min(range(len(cells)), key=lambda i: (ranks[i], cells[i]))
    assert report["found"] == [list(cells[best])] * 3
    found = [r for r in summary.results if r.tags["role"] == "found"][0]
    assert summary.space.describe(found.genotype) == report["architecture"]
    assert len(report["gates"]) == 6 and (run_dir / "supernet1" / "collapse.csv").exists()
    assert "least sum of its ranks over 2 supernets" in (run_dir / "report.md").read_text()


def test_supernets_are_refused_on_hytra():
    cls = SEARCHERS.get("bossnas")
    from nas.spaces.hytra.space import HyTraSpace

    with pytest.raises(UserError, match="supernets"):
        cls(supernets=2).setup(HyTraSpace(preset="cpu", input_shape=[1, 32, 32], **TINY_MACRO))
    with pytest.raises(UserError, match="supernets must be an integer >= 1"):
        cls(supernets=0)


def test_fair_sampling_is_refused_where_the_supernet_has_none(tmp_path):
    from nas.searchers.bossnas import _search
    from nas.spaces.hytra.space import HyTraSpace

    space = HyTraSpace(preset="cpu", input_shape=[1, 32, 32], **TINY_MACRO)
    with pytest.raises(UserError, match="path_sampling=fair"):
        _search._Search(space, 0, _options(path_sampling="fair"), _drive(tmp_path, []))
    nb201 = SPACES.get("nb201")(channels=4, cells_per_stage=1, input_shape=[1, 32, 32])
    with pytest.raises(UserError, match="paths_per_step applies to uniform"):
        _search._Search(nb201, 0, _options(paths_per_step=2), _drive(tmp_path, []))


def test_device_option_reaches_the_trainer_and_an_absent_device_is_a_user_error(tmp_path):
    from nas.cli.config import compose
    from nas.runner.run import search

    assert SEARCHERS.get("bossnas")(device="cuda").options["device"] == "cuda"
    if torch.cuda.is_available():
        pytest.skip(f"{NEEDS_NO_GPU}: a CUDA device exists here, so the missing-device error cannot be provoked")
    config = compose(["space=nb201", "searcher=bossnas", "evaluator=cost", f"run_dir={tmp_path / 'gpu'}",
                      "searcher.device=cuda"])
    with pytest.raises(UserError, match="cuda"):
        search(config, progress=False)
    assert not (tmp_path / "gpu").exists()
