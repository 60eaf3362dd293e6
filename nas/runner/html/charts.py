"""The run's plots in the page: the PNG files the run writes beside it (search progress, objective vs compute,
Pareto front), inlined as ``data:`` URIs so the page needs no file next to it.

The page inlines the files rather than drawing each figure again as SVG: matplotlib takes about as long per
figure either way (a second or more on a loaded CPU), and the runner draws the PNGs anyway, so a page written at
the end of a search costs no extra drawing. ``write_plots`` (re)draws them from the journal for the refreshes
during a search and for ``nas report``.
"""

from __future__ import annotations

import base64
from html import escape

from nas.runner.figures import save_png
from nas.runner.html.rundata import RunData
from nas.runner.plots import FILENAME as COST_PLOT
from nas.runner.plots import write_cost_accuracy_plot
from nas.runner.report import write_progress_plot

PLOTS = (("progress.png", "Search progress: each trial's objective and the best so far"),
         (COST_PLOT, "Objective vs compute (MACs), with the frontier"))
PARETO_PLOT = "pareto.png"


def write_plots(run: RunData) -> None:
    """Draw the run's PNG plots from its finished trials (nothing before the first one)."""
    if not run.results:
        return
    write_progress_plot(run.run_dir, run.results, run.objective)
    if any("macs" in r.metrics for r in run.results):
        write_cost_accuracy_plot(run.run_dir, run.results, run.objective)
    if run.front is not None:
        from nas.runner.pareto import pareto_figure

        save_png(pareto_figure(run.results, run.front, run.objective), run.file(PARETO_PLOT))


def image(run: RunData, name: str, caption: str) -> str | None:
    """A ``<figure>`` with the PNG ``name`` of the run inlined, or None when the run has no such file."""
    path = run.file(name)
    if not path.is_file():
        return None
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def charts(run: RunData) -> list[str]:
    """The progress and cost plots the run has."""
    return [html for name, caption in PLOTS if (html := image(run, name, caption)) is not None]


def pareto_chart(run: RunData) -> str | None:
    return image(run, PARETO_PLOT, "Pareto front: every trial and the non-dominated ones")
