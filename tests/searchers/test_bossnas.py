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

from nas.core.errors import UserError
from nas.searchers.base import SEARCHERS, Drive
from nas.searchers.bossnas import selection
from nas.searchers.bossnas._supernet import SupernetConfig
from nas.searchers.bossnas._training import (
    Siamese,
    byol_loss,
    ema_momentum,
    ensemble_target,
    sample_paths,
    train_step,
)
from nas.spaces.hytra.encoding import block_candidates

TINY_MACRO = {"widths": [16, 32, 64, 128], "stem_width": 8}
TINY_OPTIONS = {"steps_per_block": 3, "batch_size": 4, "rating_samples": 4, "bn_batch": 4, "neck_hidden": 16,
                "neck_dim": 8, "checkpoint_every": 2, "log_every": 1, "prefixes": "greedy", "strategy": "greedy"}


def test_ema_momentum_goes_from_base_to_one_on_a_cosine():
    assert ema_momentum(0.99, 0, 100) == pytest.approx(0.99)
    assert ema_momentum(0.99, 50, 100) == pytest.approx(0.995)
    assert ema_momentum(0.99, 100, 100) == pytest.approx(1.0)
    values = [ema_momentum(0.99, s, 40) for s in range(41)]
    assert values == sorted(values)


def test_loss_is_minus_two_cosine():
    gen = torch.Generator().manual_seed(0)
    p, t = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    expected = -2 * torch.nn.functional.cosine_similarity(p, t, dim=1).mean()
    assert float(byol_loss(p, t)) == pytest.approx(float(expected), abs=1e-6)
    assert float(byol_loss(p, 3 * p)) == pytest.approx(-2.0, abs=1e-6)
    assert float(byol_loss(p, -p)) == pytest.approx(2.0, abs=1e-6)


def test_ensemble_target_is_the_mean_of_normalised_path_projections():
    gen = torch.Generator().manual_seed(1)
    projections = [torch.randn(6, 4, generator=gen) * (k + 1) for k in range(4)]
    manual = sum(p / p.norm(dim=1, keepdim=True) for p in projections) / 4
    assert torch.allclose(ensemble_target(projections), manual, atol=1e-6)


def _tiny_cfg() -> SupernetConfig:
    return SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32))


def test_train_step_trains_every_path_toward_the_ensemble_of_all_sampled_paths():
    torch.manual_seed(0)
    model = Siamese(_tiny_cfg(), 16, 8).train()
    paths = sample_paths(block_candidates(0, 0, "executable"), 4, random.Random(0))
    assert len(set(paths)) == 4
    gen = torch.Generator().manual_seed(2)
    views_a = [torch.randn(4, 1, 32, 32, generator=gen) for _ in paths]
    views_b = [torch.randn(4, 1, 32, 32, generator=gen) for _ in paths]
    with torch.no_grad():
        embed_t = lambda x, p: model.embed(model.target, model.target_necks[0], x, [], 0, p)
        t_a = ensemble_target([embed_t(views_a[i], p) for i, p in enumerate(paths)])
        t_b = ensemble_target([embed_t(views_b[i], p) for i, p in enumerate(paths)])
        losses = []
        for i, p in enumerate(paths):
            q = lambda x, p=p: model.predictors[0](model.embed(model.online, model.online_necks[0], x, [], 0, p))
            losses.append(float(byol_loss(q(views_a[i]), t_b) + byol_loss(q(views_b[i]), t_a)))
    got = train_step(model, 0, [], paths, views_a, views_b)
    assert got == pytest.approx(sum(losses) / 4, abs=1e-5)
    assert all(p.grad is None for p in model.target.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.predictors[0].parameters())


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

    with pytest.raises(UserError, match="space=hytra"):
        cls().setup(DummySpace())


def _drive(run_dir: Path, logs: list[str]) -> Drive:
    return Drive(run_dir=run_dir, config={"dataset": {"name": "digits", "resolution": 32}}, budget=2, results=[],
                 evaluator_spec={}, evaluate=None, record=None, report=None, log=logs.append)


def _options(**changes):
    from nas.searchers.bossnas.searcher import BossNAS

    return {**BossNAS(**{**TINY_OPTIONS, **changes}).options}


def test_killed_block_resumes_from_its_checkpoint_with_the_same_ratings(tmp_path, monkeypatch):
    from nas.searchers.bossnas import _search
    from nas.spaces.hytra.space import HyTraSpace

    torch.set_num_threads(1)
    few = lambda block, start, variant: block_candidates(block, start, variant)[:6]  # rate 6 paths, not 51
    monkeypatch.setattr(_search, "block_candidates", few)
    data = _search.load_dataset("digits", resolution=32)
    monkeypatch.setattr(_search, "load_dataset", lambda name, **options: data)
    space = HyTraSpace(preset="cpu", input_shape=[1, 32, 32], **TINY_MACRO)
    options = _options()
    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    straight_dir.mkdir()
    killed_dir.mkdir()
    straight = _search._Search(space, 0, options, _drive(straight_dir, []))
    straight.train_block(0)

    calls = {"n": 0}
    real_step = _search.train_step

    def dying_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(_search, "train_step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        _search._Search(space, 0, options, _drive(killed_dir, [])).train_block(0)
    monkeypatch.setattr(_search, "train_step", real_step)
    logs: list[str] = []
    resumed = _search._Search(space, 0, options, _drive(killed_dir, logs))
    assert resumed.restore() and (resumed.block, resumed.step) == (0, 2)
    assert any("resuming" in line for line in logs)
    resumed.train_block(0)
    assert (resumed.block, resumed.step) == (1, 0)
    a, b = straight.tables[0], resumed.tables[0]
    assert a.entries == b.entries and len(a.entries) == 6
    np.testing.assert_allclose(a.pred1, b.pred1, atol=1e-5)
    np.testing.assert_allclose(a.target2, b.target2, atol=1e-5)
    assert (killed_dir / "supernet.pt").exists() and (killed_dir / "ratings_block0.csv").exists()


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
    assert found["strategy"] == "dp" and len(found["found"]) == 16
    assert found["dp"]["summed_pooled_score"] <= found["greedy"]["summed_pooled_score"] + 1e-9
    assert found["evolution"]["summed_score"] is not None
    assert results[0].genotype == summary.space.from_tokens(found["found"])
    for k in range(4):
        assert (run_dir / f"ratings_block{k}.csv").exists() and (run_dir / f"ratings_block{k}.md").exists()
    assert (run_dir / "supernet.pt").exists() and (run_dir / "best.json").exists()


@pytest.mark.parametrize("zero", [True, False])
def test_zero_init_residual_option_sets_the_last_bn_of_every_op(zero):
    """Released ops start as the identity (last BN gamma 0); the option turns that off for short searches."""
    cfg = SupernetConfig((16, 32, 64, 128), 8, 8, (1, 32, 32), zero_init_residual=zero)
    model = Siamese(cfg, 16, 8)
    gammas = [m.weight for m in model.online.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    zeroed = sum(1 for g in gammas if not g.detach().any())
    ops = len(model.online.ops)
    assert zeroed == (ops if zero else 0) and ops > 0


def test_lars_step_matches_the_trust_ratio_formula_and_excludes_bn_and_bias():
    from nas.searchers.bossnas._lars import LARS

    gen = torch.Generator().manual_seed(3)
    w = torch.nn.Parameter(torch.randn(8, 4, generator=gen))
    b = torch.nn.Parameter(torch.randn(8, generator=gen))
    w.grad, b.grad = 100.0 * torch.randn(8, 4, generator=gen), torch.randn(8, generator=gen)
    w0, b0, gw, gb = w.detach().clone(), b.detach().clone(), w.grad.clone(), b.grad.clone()
    opt = LARS([{"params": [w]}, {"params": [b], "weight_decay": 0.0, "exclude": True}], lr=2.0, momentum=0.9,
               weight_decay=1e-4, eta=0.001)
    opt.step()
    trust = 0.001 * w0.norm() / (gw.norm() + 1e-4 * w0.norm())
    assert torch.allclose(w.detach(), w0 - 2.0 * trust * (gw + 1e-4 * w0), atol=1e-6)
    assert torch.allclose(b.detach(), b0 - 2.0 * gb, atol=1e-6)
    # the step is bounded by lr * eta of the weight norm, however large the gradient
    assert float((w.detach() - w0).norm()) <= 2.0 * 0.001 * float(w0.norm()) * 1.0001
    opt.step()  # momentum: the second step adds 0.9 of the first
    assert float((w.detach() - w0).norm()) > 2.0 * 0.001 * float(w0.norm())


def test_optimizer_options_are_checked():
    cls = SEARCHERS.get("bossnas")
    with pytest.raises(UserError, match="optimizer must be lars or sgd"):
        cls(optimizer="adam")
    with pytest.raises(UserError, match="lars_eta must be positive"):
        cls(optimizer="lars", lars_eta=0)
    assert cls(optimizer="lars").options["optimizer"] == "lars"


def test_collapse_measures_how_alike_the_predictions_of_an_entry_are():
    rng = np.random.default_rng(0)
    unit = lambda a: a / np.linalg.norm(a, axis=-1, keepdims=True)  # noqa: E731
    spread = unit(rng.standard_normal((3, 16, 8)))
    same = np.repeat(unit(rng.standard_normal((3, 1, 8))), 16, axis=1)
    targets = rng.standard_normal((3, 16, 8))
    entries = [(0, (1, 1, 1, 1)), (0, (1, 1, 1, 2)), (0, (1, 1, 2, 2))]
    collapsed = selection.EmbeddingTable(0, entries, same, same, targets, targets)
    healthy = selection.EmbeddingTable(0, entries, spread, spread, targets, targets)
    assert collapsed.collapse() == pytest.approx(1.0) and collapsed.collapse() > selection.COLLAPSED
    assert healthy.collapse() < 0.6
