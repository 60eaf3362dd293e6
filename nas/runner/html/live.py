"""Keeps ``report.html`` current while a search runs: written when the run starts, then again after a finished
trial once enough time has passed since the last write, and a last time, without the self-reload, when the
search ends (after the runner has drawn its plots).

Enough time is ``REFRESH_SECONDS`` (the page reloads itself as often), or nine times what the last write took
when that is longer: a refresh redraws the plots (about a second each on a loaded CPU), and a search must not
spend more than a tenth of its time on its page.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from nas.core.result import Result
from nas.runner.html.page import REFRESH_SECONDS, write_html_report

OVERHEAD = 0.1  # the most of a search's time its refreshes may take


class LiveReport:
    """Call it with each finished trial (``on_result``); ``finish()`` writes the final page."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.due = -float("inf")
        self.warned = False

    def start(self) -> None:
        self._write(live=True)

    def __call__(self, result: Result, results: list[Result]) -> None:
        if time.monotonic() >= self.due:
            self._write(live=True)

    def finish(self) -> None:
        self._write(live=False)

    def _write(self, live: bool) -> None:
        """A page that cannot be written never stops the search: the reason is printed once, and
        ``nas report <run_dir>`` rebuilds the page from the run's files."""
        began = time.monotonic()
        try:
            write_html_report(self.run_dir, live=live, redraw=live)
        except Exception as exc:  # noqa: BLE001 - the search's trials matter more than its page
            if not self.warned:
                print(f"warning: report.html not written ({type(exc).__name__}: {exc}); rebuild it with "
                      f"`nas report {self.run_dir}`", file=sys.stderr, flush=True)
                self.warned = True
        took = time.monotonic() - began
        self.due = time.monotonic() + max(REFRESH_SECONDS, took * (1 - OVERHEAD) / OVERHEAD)
