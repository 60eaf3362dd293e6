"""Multi-objective output: ``pareto.json`` (the non-dominated trials) and ``pareto.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nas.core.pareto import pareto_indices
from nas.core.result import Result
from nas.core.space import SearchSpace
from nas.runner.figures import finish, new_axes, save_png
from nas.searchers.base import MultiObjective


def pareto_front(results: list[Result], objectives: MultiObjective) -> list[Result]:
    """The complete trials no other complete trial dominates, ordered by the first objective."""
    ok = [r for r in results if r.ok and all(math.isfinite(v) for v in objectives.vector(r))]
    front = [ok[i] for i in pareto_indices([objectives.vector(r) for r in ok])]
    return sorted(front, key=objectives.score, reverse=True)


def write_pareto(run_dir: Path, results: list[Result], objectives: MultiObjective, space: SearchSpace) -> list[Result]:
    """Write ``pareto.json`` and ``pareto.png``; append the front to ``report.md``; return the front."""
    front = pareto_front(results, objectives)
    names = [f"{o.metric}:{o.mode}" for o in objectives.objectives]
    data = {"objectives": names,
            "front": [{"trial": r.trial, "genotype": r.genotype.to_json(), "fingerprint": r.fingerprint,
                       "metrics": dict(r.metrics), "description": space.describe(r.genotype)} for r in front]}
    (run_dir / "pareto.json").write_text(json.dumps(data, indent=2) + "\n")
    save_png(pareto_figure(results, front, objectives), run_dir / "pareto.png")
    metrics = [o.metric for o in objectives.objectives]
    lines = ["", f"## Pareto front ({len(front)} trials; objectives {', '.join(names)})", "",
             "| trial | " + " | ".join(metrics) + " | architecture |", "|---:|" + "---:|" * len(metrics) + "---|"]
    lines += [f"| {r.trial} | " + " | ".join(f"{r.metrics[m]:,.4g}" for m in metrics)
              + f" | `{space.describe(r.genotype)}` |" for r in front]
    with (run_dir / "report.md").open("a") as handle:
        handle.write("\n".join(lines) + "\n\n![pareto](pareto.png)\n")
    return front


def pareto_figure(results: list[Result], front: list[Result], objectives: MultiObjective) -> Any:
    """Every trial and the front, the second objective on x and the first on y (a labelled figure)."""
    x_obj, y_obj = objectives.objectives[1], objectives.objectives[0]
    ok = [r for r in results if r.ok and x_obj.metric in r.metrics and y_obj.metric in r.metrics]
    fig, ax = new_axes((6, 4))
    ax.scatter([r.metrics[x_obj.metric] for r in ok], [r.metrics[y_obj.metric] for r in ok], s=14, alpha=0.5,
               label="trials")
    line = sorted(front, key=lambda r: r.metrics[x_obj.metric])
    ax.plot([r.metrics[x_obj.metric] for r in line], [r.metrics[y_obj.metric] for r in line], "o-", color="C3",
            label="Pareto front")
    if x_obj.metric in ("params", "macs"):
        ax.set_xscale("log")
    return finish(fig, ax, f"{x_obj.metric} ({x_obj.mode})", f"{y_obj.metric} ({y_obj.mode})")
