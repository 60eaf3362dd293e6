"""Run-directory plots beyond search progress: the objective against compute (MACs) of every trial.

The scaling searcher's accuracy-vs-FLOPs curve is this plot: each trial is a point, the best trial
per cost so far (the upper envelope) is drawn as a step line, so a run shows what each step up in
depth, width or resolution bought.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from nas.core.result import Result
from nas.runner.figures import finish, new_axes, save_png
from nas.searchers.base import Objective

FILENAME = "cost_vs_accuracy.png"


def cost_points(results: list[Result], objective: Objective) -> list[tuple[float, float]]:
    """(MACs, objective value) of every finished trial reporting both, sorted by MACs."""
    points = []
    for r in results:
        macs, value = r.metrics.get("macs"), r.metrics.get(objective.metric)
        if r.ok and macs is not None and value is not None and math.isfinite(float(value)):
            points.append((float(macs), float(value)))
    return sorted(points)


def envelope(points: list[tuple[float, float]], mode: str = "max") -> list[tuple[float, float]]:
    """The best value reached at or below each cost (the cost/accuracy frontier)."""
    out: list[tuple[float, float]] = []
    for macs, value in points:
        if not out or (value > out[-1][1] if mode == "max" else value < out[-1][1]):
            out.append((macs, value))
    return out


def cost_accuracy_figure(results: list[Result], objective: Objective) -> Any | None:
    """Objective vs MACs (log axis) with the frontier, as a labelled figure; None if nothing to plot."""
    points = cost_points(results, objective)
    if not points:
        return None
    fig, ax = new_axes()
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=16, alpha=0.7, label="trial")
    front = envelope(points, objective.mode)
    if len(front) > 1:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="C3", label="frontier")
    if min(p[0] for p in points) > 0:
        ax.set_xscale("log")
    return finish(fig, ax, "MACs per example (FLOPs / 2)", objective.metric, "objective vs compute",
                  legend="lower right")


def write_cost_accuracy_plot(run_dir: Path, results: list[Result], objective: Objective) -> Path | None:
    """``cost_vs_accuracy.png``: objective vs MACs (log axis) with the frontier; None if nothing to plot."""
    fig = cost_accuracy_figure(results, objective)
    return None if fig is None else save_png(fig, Path(run_dir) / FILENAME)
