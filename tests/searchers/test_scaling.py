"""The scaling searcher: depth-first vs width-first by epoch regime, the MAC budget, slow resolution growth."""

from __future__ import annotations

import math

import pytest

from nas.core.cost import arch_cost
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.runner.plots import FILENAME, cost_points, envelope, write_cost_accuracy_plot
from nas.searchers.base import Objective
from nas.searchers.scaling import ScalingSearcher
from nas.spaces.nb201 import NB201Space
from nas.spaces.scaling.resnet_rs import ResNetRSSpace


def _space() -> ResNetRSSpace:
    """The ImageNet grid up to RS-200 (MACs only, nothing is trained; short to decode)."""
    return ResNetRSSpace(depths=[50, 101, 152, 200])


def _drive(searcher: ScalingSearcher, n: int, score=None) -> list[Genotype]:
    """Ask/tell ``n`` times; the proxy score grows with log MACs unless ``score`` is given."""
    asked = []
    for t in range(n):
        g = searcher.ask()
        if g is None:
            break
        asked.append(g)
        value = score(g) if score else math.log(searcher.macs(g))
        searcher.tell(g, Result(trial=t, genotype=g, state=TrialState.COMPLETE, metrics={"valid_accuracy": value}))
    return asked


def _make(**options) -> ScalingSearcher:
    searcher = ScalingSearcher(**options)
    searcher.setup(_space(), 0, Objective("valid_accuracy", "max"))
    return searcher


def _steps(g: Genotype) -> tuple[int, int, int]:
    spec = _space().spec()
    return tuple(spec[label].options.index(g[label]) for label in ("depth", "width_mult", "resolution"))


def test_regime_from_epochs() -> None:
    assert ScalingSearcher(epochs=350).regime == "long"
    assert ScalingSearcher(epochs=10).regime == "short" and ScalingSearcher().regime == "short"
    assert ScalingSearcher(epochs=10, epochs_regime="long").regime == "long"
    with pytest.raises(ValueError):
        ScalingSearcher(epochs_regime="forever")


def _axes_stepped(asked: list[Genotype]) -> list[str]:
    """Which axis each proposal stepped up, relative to the previous one."""
    names = ("depth", "width", "resolution")
    out = []
    for a, b in zip(asked, asked[1:]):
        diff = [y - x for x, y in zip(_steps(a), _steps(b))]
        out.append(names[diff.index(1)] if sorted(diff) == [0, 0, 1] else "other")
    return out


def test_long_training_scales_depth_first() -> None:
    asked = _drive(_make(epochs=350), 12)
    assert _steps(asked[0]) == (0, 0, 0)
    assert _axes_stepped(asked)[:3] == ["depth"] * 3  # 50 -> 101 -> 152 -> 200 while accuracy improves
    assert _axes_stepped(asked)[3] == "width"


def test_short_training_scales_width_first() -> None:
    asked = _drive(_make(epochs=10), 12)
    assert _axes_stepped(asked)[:4] == ["width"] * 4  # x0.25 -> ... -> x2.0
    assert _axes_stepped(asked)[4] == "depth"


def test_a_step_that_does_not_pay_turns_the_walk() -> None:
    """Deeper than 101 scores worse: the long-regime walk goes wider from RS-101 instead."""
    searcher = _make(epochs=350)
    asked = _drive(searcher, 6, score=lambda g: math.log(searcher.macs(g)) - 100 * (g["depth"] > 101))
    assert [_steps(g) for g in asked[:4]] == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (1, 1, 0)]


def test_resolution_grows_more_slowly_than_depth_and_width() -> None:
    for regime in ("long", "short"):
        asked = _drive(_make(epochs_regime=regime), 25)
        for g in asked:
            depth, width, res = _steps(g)
            assert 2 * res <= depth + width
        assert any(_steps(g)[2] > 0 for g in asked)  # it does grow, just later


def test_mac_budget_is_respected_and_reached() -> None:
    budget = 5e9
    searcher = _make(epochs=350, max_macs=budget)
    asked = _drive(searcher, 30)
    macs = [searcher.macs(g) for g in asked]
    assert all(m <= budget for m in macs)
    assert max(macs) > 0.5 * budget


def test_ranking_follows_the_told_accuracy() -> None:
    """A proxy that prefers wide, shallow nets pulls a long-regime walk towards width anyway."""
    searcher = _make(epochs=350)
    asked = _drive(searcher, 15, score=lambda g: g["width_mult"] - g["depth"] / 1000)
    assert max(_steps(g)[1] for g in asked) >= 3
    rows = searcher.trajectory()
    assert rows[0]["score"] == max(r["score"] for r in rows) and "macs" in rows[0]


def test_space_without_axes_falls_back_to_sampling() -> None:
    searcher = ScalingSearcher()
    searcher.setup(NB201Space(), 0, Objective())
    asked = _drive(searcher, 6, score=lambda g: 1.0)
    assert len(asked) == 6 and searcher.order == []


def test_nothing_within_budget_returns_none() -> None:
    searcher = _make(max_macs=1.0)
    assert searcher.ask() is None


def test_cost_accuracy_plot(tmp_path) -> None:
    space = ResNetRSSpace(preset="small")
    results = []
    for t in range(4):
        g = space.sample(t)
        metrics = {"valid_accuracy": 50.0 + t, **arch_cost(space.decode(g))}
        results.append(Result(trial=t, genotype=g, state=TrialState.COMPLETE, metrics=metrics))
    objective = Objective("valid_accuracy", "max")
    points = cost_points(results, objective)
    assert len(points) == 4 and points == sorted(points)
    front = envelope(points)
    assert all(b[1] > a[1] for a, b in zip(front, front[1:]))
    assert write_cost_accuracy_plot(tmp_path, results, objective) == tmp_path / FILENAME
    assert (tmp_path / FILENAME).stat().st_size > 1000
    assert write_cost_accuracy_plot(tmp_path, [], objective) is None


def test_config_group_builds_the_searcher() -> None:
    from nas.cli.config import compose
    from nas.runner.run import build_searcher

    config = compose(["space=resnet_rs", "searcher=scaling", "searcher.max_macs=5e6", "searcher.epochs=350"])
    searcher = build_searcher(config, ResNetRSSpace(preset="small"))
    assert isinstance(searcher, ScalingSearcher) and searcher.max_macs == 5e6 and searcher.regime == "long"
    assert searcher.order == ["depth", "width", "resolution"]


def test_past_the_walk_new_points_keep_resolution_behind_first() -> None:
    """The CPU grid has 5 points with 2 x resolution step <= depth + width steps: those come first."""
    searcher = ScalingSearcher()
    searcher.setup(ResNetRSSpace(preset="small"), 0, Objective())
    asked = _drive(searcher, 8)
    points = [searcher.point_of(g) for g in asked]
    assert all(searcher.lagging(p) for p in points[:5]) and not searcher.lagging(points[5])
    assert len(set(points)) == 8
