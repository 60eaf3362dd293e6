"""What a person reads after a run: ``best.json``, ``report.md`` (tables) and ``progress.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from nas.core.result import Result, TrialState
from nas.core.space import SearchSpace
from nas.runner.figures import finish, new_axes, save_png
from nas.searchers.base import Objective

SHOWN_METRICS = ("valid_accuracy", "test_accuracy", "params", "macs", "train_seconds")


def write_best(run_dir: Path, best: Result | None, space: SearchSpace) -> None:
    """``best.json``: the best trial's genotype and metrics (plus its readable form)."""
    if best is None:
        return
    data = {"trial": best.trial, "genotype": best.genotype.to_json(), "fingerprint": best.fingerprint,
            "metrics": dict(best.metrics), "description": space.describe(best.genotype)}
    (run_dir / "best.json").write_text(json.dumps(data, indent=2) + "\n")


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def markdown_table(results: list[Result], objective: Objective, space: SearchSpace, top: int = 10) -> str:
    """The ``top`` trials by objective as a markdown table."""
    ranked = sorted((r for r in results if r.ok), key=objective.score, reverse=True)[:top]
    other_scores = sorted({m for r in ranked for m in r.metrics if m.startswith(("valid_", "test_"))}
                          - {objective.metric, *SHOWN_METRICS})  # e.g. a multitask search's mIoU and mAP
    metrics = [objective.metric] + [m for m in (*other_scores, *SHOWN_METRICS) if m != objective.metric
                                    and any(m in r.metrics for r in ranked)]
    tagged = any(r.tags for r in ranked)
    lines = ["| rank | trial | " + ("tags | " if tagged else "") + " | ".join(metrics) + " | architecture |",
             "|---:|---:|" + ("---|" if tagged else "") + "---:|" * len(metrics) + "---|"]
    for rank, r in enumerate(ranked, start=1):
        cells = [_fmt(r.metrics.get(m)) for m in metrics]
        tags = (", ".join(f"{k}={v}" for k, v in sorted(r.tags.items())) + " | ") if tagged else ""
        lines.append(f"| {rank} | {r.trial} | {tags}" + " | ".join(cells) + f" | `{space.describe(r.genotype)}` |")
    return "\n".join(lines)


def chosen_best(results: list[Result], objective: Objective) -> Result | None:
    """The best trial; when a self-driven searcher marked its answers (tag role=found), the best of those,
    so a baseline (role=random) trained beside them is never reported as the search's result."""
    found = [r for r in results if r.ok and r.tags.get("role") == "found" and objective.metric in r.metrics]
    pool = found or [r for r in results if r.ok and objective.metric in r.metrics]
    return max(pool, key=objective.score, default=None)


def write_report(run_dir: Path, results: list[Result], objective: Objective, space: SearchSpace,
                 config: dict[str, Any], seconds: float, sections: list[tuple[str, str]] | None = None) -> None:
    """``report.md``: what was searched, how it went, the best trials, and any sections the searcher added."""
    counts = {state: sum(r.state is state for r in results) for state in TrialState}
    best = chosen_best(results, objective)
    lines = [
        f"# Search report: {space.name} / {config['searcher']['name']} / {config['evaluator']['name']}",
        "",
        f"- trials: {len(results)} ({', '.join(f'{n} {s.value}' for s, n in counts.items() if n)})",
        f"- objective: {objective.metric} ({objective.mode})",
        f"- space: {space.name} v{space.version}, preset {space.preset}, size {space.size() or 'infinite'}",
        f"- seed: {config['seed']}; wall time: {seconds:.1f} s",
    ]
    phases = config.get("phases") or {}
    if phases:
        lines.append("- backends: " + "; ".join(f"{phase}: {backend}" for phase, backend in phases.items()))
    if best is not None:
        lines += [f"- best: trial {best.trial}, {objective.metric} = {_fmt(best.metrics[objective.metric])}",
                  f"- best architecture: `{space.describe(best.genotype)}`"]
    lines += ["", "## Best trials", "", markdown_table(results, objective, space), ""]
    for title, markdown in sections or ():
        lines += [f"## {title}", "", markdown.strip(), ""]
    lines += ["![progress](progress.png)", ""]
    (run_dir / "report.md").write_text("\n".join(lines))


def progress_figure(results: list[Result], objective: Objective) -> Any:
    """Each trial's objective and the best so far, by finishing order (a labelled figure)."""
    ordered = sorted(results, key=lambda r: r.finished)
    xs, ys, best, best_so_far = [], [], [], -math.inf
    for k, r in enumerate(ordered, start=1):
        score = objective.score(r)
        if math.isfinite(score):
            xs.append(k)
            ys.append(r.metrics[objective.metric])
            best_so_far = max(best_so_far, score)
        best.append(best_so_far if objective.mode == "max" else -best_so_far)
    fig, ax = new_axes()
    ax.scatter(xs, ys, s=14, alpha=0.6, label="trial")
    finite = [(k, b) for k, b in enumerate(best, start=1) if math.isfinite(b)]
    if finite:
        ax.step(*zip(*finite), where="post", color="C3", label="best so far")
    return finish(fig, ax, "finished trials", objective.metric, "search progress")


def write_progress_plot(run_dir: Path, results: list[Result], objective: Objective) -> None:
    """``progress.png``: each trial's objective and the best so far, by trial order."""
    save_png(progress_figure(results, objective), run_dir / "progress.png")
