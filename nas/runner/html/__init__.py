"""``report.html``: the run as one self-contained page (config, trials, curves, Pareto front, architecture
drawings, the searcher's own tables), rewritten while a search runs and rebuilt by ``nas report``."""

from nas.runner.html.page import REFRESH_SECONDS, REPORT_FILE, write_html_report

__all__ = ["REFRESH_SECONDS", "REPORT_FILE", "write_html_report"]
