"""``report.html``: one self-contained page (inline CSS, JS and SVG; nothing fetched) built from a run directory,
written atomically (a temporary file renamed over the old page) so a browser never reads half a page."""

from __future__ import annotations

import os
from html import escape
from pathlib import Path

from nas.core.result import TrialState
from nas.runner.html import charts, drawings, tables
from nas.runner.html.assets import CSS, JS
from nas.runner.html.rundata import RunData, load_run

REPORT_FILE = "report.html"
REFRESH_SECONDS = 30  # a page of a running search reloads itself this often (the runner rewrites it as often)


def status(run: RunData, live: bool) -> tuple[str, str]:
    """(css class, sentence): running (the runner is writing the page), finished, or stopped before the end.

    The runner writes ``report.md`` only when a search ends, so a journal newer than ``report.md`` (or no
    ``report.md``) means the search was stopped and can be resumed."""
    done = f"{len(run.results)} trials finished"
    if live:
        running = f", {len(run.running)} running" if run.running else ""
        return "running", f"Search in progress: {done}{running}; this page reloads every {REFRESH_SECONDS} s."
    report, journal = run.file("report.md"), run.file("trials.jsonl")
    if report.is_file() and (not journal.is_file() or report.stat().st_mtime >= journal.stat().st_mtime):
        return "finished", f"Search finished: {done}."
    return "stopped", (f"Search stopped before its end: {done}; continue it with "
                       f"nas search resume={run.run_dir}")


def summary(run: RunData) -> str:
    counts = {s: sum(r.state is s for r in run.results) for s in TrialState}
    objectives = [f"{o.metric} ({o.mode})" for o in getattr(run.objective, "objectives", (run.objective,))]
    space = run.space
    items = [("trials", f"{len(run.results)} of budget {run.budget} ("
                        + (", ".join(f"{n} {s.value}" for s, n in counts.items() if n) or "none yet") + ")"),
             ("objective" + ("s" if len(objectives) > 1 else ""), ", ".join(objectives)),
             ("space", f"{space.name} v{space.version}, preset {space.preset}, size {space.size() or 'infinite'}"),
             ("searcher / evaluator", f"{run.config['searcher']['name']} / {run.config['evaluator']['name']}"),
             ("seed", str(run.config["seed"])), ("wall time", f"{run.seconds:.1f} s (first to last journal event)")]
    if run.best is not None:
        value = run.best.metrics.get(run.objective.metric)
        items.append(("best", f"trial {run.best.trial}, {run.objective.metric} = {tables.fmt(value)}"))
    return "<ul class=summary>" + "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in items) + "</ul>"


def architectures(run: RunData) -> str:
    parts = []
    for result in tables.found_trials(run):
        tags = ", ".join(f"{k}={v}" for k, v in sorted(result.tags.items()))
        role = "; ".join(part for part in ("best trial" if result is run.best else "", tags) if part)
        parts.append(f"<h3>Trial {result.trial} ({escape(role)})</h3>"
                     f"<p><code>{escape(run.space.describe(result.genotype))}</code> "
                     f"(fingerprint {escape(result.fingerprint)})</p>"
                     + drawings.architecture(run.space, result.genotype))
    return "".join(parts) or "<p>No complete trial yet.</p>"


def render(run: RunData, live: bool = False) -> str:
    """The whole page as HTML text; ``live`` adds the self-reload of a running search."""
    config = run.config
    title = f"Search report: {run.space.name} / {config['searcher']['name']} / {config['evaluator']['name']}"
    css_class, sentence = status(run, live)
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if live else ""
    body = [f"<h1>{escape(title)}</h1>", f'<p class="status {css_class}">{escape(sentence)}</p>', summary(run),
            "<h2>Best architecture</h2>", architectures(run)]
    plots = charts.charts(run)
    if plots:
        body += ["<h2>Search curve</h2><div class=charts>", *plots, "</div>"]
    if run.front is not None:
        names = ", ".join(f"{o.metric}:{o.mode}" for o in run.objective.objectives)
        body += [f"<h2>Pareto front ({len(run.front)} trials; objectives {escape(names)})</h2>"]
        chart = charts.pareto_chart(run)
        body += [chart or "", tables.pareto_table(run)]
    own = tables.searcher_tables(run)
    if own is not None:
        body += [f"<h2>{escape(own[0])}</h2>", own[1]]
    body += [f"<h2>Trials ({len(run.results)})</h2>",
             "<p>Click a column header to sort; the best trial is shaded"
             + (", the Pareto front marked red" if run.front is not None else "") + ".</p>",
             tables.trial_table(run), "<h2>Config</h2>", tables.config_table(config)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{refresh}'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>\n" + "\n".join(body)
            + f"\n<script>{JS}</script></body></html>\n")


def write_html_report(run_dir: str | Path, live: bool = False, redraw: bool = False) -> Path:
    """Build ``report.html`` of a run directory and put it in place atomically; returns its path. ``redraw``
    draws the run's PNG plots from the journal first (the runner draws them itself when a search ends)."""
    run = load_run(run_dir)
    if redraw:
        charts.write_plots(run)
    path = run.file(REPORT_FILE)
    temporary = path.with_name(f".{REPORT_FILE}.{os.getpid()}.tmp")
    try:
        temporary.write_text(render(run, live), encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path
