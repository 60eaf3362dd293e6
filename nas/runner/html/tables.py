"""The tables of ``report.html``: trials (sortable), the run's config, the Pareto front, and the searchers' own
tables read from their files (BossNAS block ratings, FBNetV5 keep probabilities)."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from nas.core.result import Result
from nas.runner.html.rundata import RunData, read_json
from nas.runner.report import SHOWN_METRICS


def fmt(value: Any) -> str:
    """A number as the report shows it: thousands separated, two decimals below 1000."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}" if abs(value) < 0.01 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def cell(value: Any, numeric: bool | None = None) -> str:
    """A ``<td>`` whose ``data-v`` holds the raw value the sorter compares."""
    raw = "" if value is None else str(value)
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool) if numeric is None else numeric
    css = " class=num" if numeric else ""
    return f'<td{css} data-v="{escape(raw)}">{escape(fmt(value))}</td>'


def table(headers: Sequence[str], rows: Iterable[str], css: str = "sortable", caption: str = "") -> str:
    """A table with clickable (sortable) headers; ``rows`` are ready ``<tr>`` strings."""
    head = "".join(f"<th title=\"sort by {escape(h)}\">{escape(h)}</th>" for h in headers)
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return f"<table class=\"{css}\">{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def metric_columns(run: RunData) -> list[str]:
    """The objectives first, then the usual metrics, then any other metric a trial reported."""
    objectives = [o.metric for o in getattr(run.objective, "objectives", (run.objective,))]
    seen = {m for r in run.results for m in r.metrics}
    rest = [m for m in SHOWN_METRICS if m in seen] + sorted(seen - set(SHOWN_METRICS))
    return objectives + [m for m in rest if m not in objectives]


def trial_table(run: RunData) -> str:
    """One row per finished trial, in trial order; the best trial and the Pareto front are marked."""
    metrics = metric_columns(run)
    tagged = any(r.tags for r in run.results)
    front = {r.trial for r in run.front or ()}
    best = run.best.trial if run.best is not None else None
    headers = ["trial", "state", *(["tags"] if tagged else []), *metrics, "seconds", "architecture"]
    rows = []
    for r in sorted(run.results, key=lambda r: r.trial):
        marks = [c for c, on in (("best", r.trial == best), ("front", r.trial in front)) if on]
        css = f' class="{" ".join(marks)}"' if marks else ""
        state = f'<td data-v="{r.state.value}" title="{escape(r.error)}">{r.state.value}</td>'
        tags = [cell(", ".join(f"{k}={v}" for k, v in sorted(r.tags.items())), False)] if tagged else []
        rows.append(f'<tr data-trial="{r.trial}"{css}>{cell(r.trial)}{state}{"".join(tags)}'
                    + "".join(cell(r.metrics.get(m)) for m in metrics)
                    + f"{cell(round(r.seconds, 2))}{cell(run.space.describe(r.genotype), False)}</tr>")
    return table(headers, rows, "sortable trials")


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested config as dotted ``key = value`` pairs (the form overrides take)."""
    if isinstance(value, dict) and value:
        out = []
        for key, inner in value.items():
            out += flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return out
    return [(prefix, value)]


def config_table(config: dict[str, Any]) -> str:
    """The resolved config as ``key = value`` rows (values as JSON)."""
    import json

    rows = [f'<tr>{cell(k, False)}<td data-v="{escape(json.dumps(v))}"><code>{escape(json.dumps(v))}</code></td></tr>'
            for k, v in flatten(config)]
    return table(["key", "value"], rows, "sortable config")


def pareto_table(run: RunData) -> str:
    metrics = [o.metric for o in run.objective.objectives]
    rows = [f'<tr data-trial="{r.trial}">{cell(r.trial)}' + "".join(cell(r.metrics.get(m)) for m in metrics)
            + f"{cell(run.space.describe(r.genotype), False)}</tr>" for r in run.front or ()]
    return table(["trial", *metrics, "architecture"], rows, "sortable pareto")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def bossnas_tables(run: RunData) -> str | None:
    """BossNAS: the found architecture and the gates (``bossnas.json``), each block's ratings
    (``ratings_block<k>.csv``: distance to the population center per start level, lower is better)."""
    blocks = sorted(run.run_dir.glob("ratings_block*.csv"), key=lambda p: int(p.stem.removeprefix("ratings_block")))
    choice = read_json(run.file("bossnas.json"))
    if not blocks and choice is None:
        return None
    parts = []
    if isinstance(choice, dict):
        found = " | ".join("".join(str(t) for t in path) for path in choice.get("found", []))
        gates = "passed" if choice.get("gates_passed") else "failed (see docs/searchers/bossnas.md)"
        parts.append(f"<p>Found ({escape(str(choice.get('strategy')))}): paths <code>{escape(found)}</code> = "
                     f"<code>{escape(str(choice.get('architecture')))}</code>; collapse gates {gates}.</p>")
    chosen = [tuple(str(t) for t in p) for p in (choice or {}).get("found", [])] if isinstance(choice, dict) else []
    for path in blocks:
        k = int(path.stem.removeprefix("ratings_block"))
        pick = "".join(chosen[k]) if k < len(chosen) else None
        rows = []
        for row in _csv_rows(path):
            css = ' class="best"' if row["path"] == pick else ""
            rows.append(f"<tr{css}>{cell(_number(row['start_level']))}{cell(_number(row['rank']))}"
                        f"{cell(row['path'], False)}{cell(_number(row['score']))}</tr>")
        parts.append(f"<details{' open' if k == 0 else ''}><summary>Block {k + 1} ratings ({len(rows)} paths)"
                     f"</summary>" + table(["start level", "rank", "path", "score"], rows, "sortable ratings")
                     + "</details>")
    return "".join(parts)


def fbnetv5_tables(run: RunData) -> str | None:
    """FBNetV5: every gated block's keep probability per task (``keep_probs.csv``); '-' where the block does not
    reach the task's head."""
    path = run.file("keep_probs.csv")
    if not path.is_file():
        return None
    rows = _csv_rows(path)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    blocks: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = blocks.setdefault(r["block"], {"stage": r["stage"], "path": r["path"]})
        entry[r["task"]] = float(r["keep_prob"]) if r["reaches_task"] == "1" else None
    out = []
    for label, entry in blocks.items():
        probs = "".join(
            '<td data-v="">-</td>' if entry[t] is None else
            f'<td class=num data-v="{entry[t]}" style="background:rgba(42,157,75,{entry[t] * 0.6:.2f})">'
            f"{entry[t]:.2f}</td>" for t in tasks)
        out.append(f"<tr>{cell(label, False)}{cell(_number(entry['stage']))}{cell(_number(entry['path']))}{probs}</tr>")
    return table(["block", "stage", "path", *tasks], out, "sortable keep-probs",
                 "Keep probability of each gated block per task after the search")


SEARCHER_TABLES = {"bossnas": ("BossNAS block ratings", bossnas_tables),
                   "fbnetv5": ("FBNetV5 keep probabilities", fbnetv5_tables)}


def searcher_tables(run: RunData) -> tuple[str, str] | None:
    """(title, HTML) of the run's searcher's own tables, when it has some and has written them."""
    entry = SEARCHER_TABLES.get(str(run.config["searcher"]["name"]))
    if entry is None:
        return None
    html = entry[1](run)
    return None if html is None else (entry[0], html)


def found_trials(run: RunData) -> list[Result]:
    """The architectures to draw: the best trial, then every other trial a searcher marked ``role=found``
    (FBNetV5 finds one per task)."""
    out = [run.best] if run.best is not None else []
    out += [r for r in sorted(run.results, key=lambda r: r.trial)
            if r.ok and r.tags.get("role") == "found" and r not in out]
    return out
