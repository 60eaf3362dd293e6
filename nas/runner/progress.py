"""Progress lines while a search runs: trial k/n, its score, the best so far and an ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from nas.core.result import Result
from nas.searchers.base import Objective


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """Prints one line per finished trial to ``stream`` (stderr by default)."""

    def __init__(self, budget: int | None, objective: Objective, already: int = 0, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
        """``budget`` None: the number of trials is the searcher's business (self-driven searchers), so
        lines show the count without a total or an ETA."""
        self.budget = budget
        self.objective = objective
        self.already = already
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.start = time.time()

    def __call__(self, result: Result, results: list[Result]) -> None:
        if not self.enabled:
            return
        done = len(results)
        fresh = max(done - self.already, 1)
        value = result.metrics.get(self.objective.metric)
        if value is None and result.metrics:  # e.g. a segmentation trial of a multitask search: its own metric
            value, metric = next((v, k) for k, v in result.metrics.items())
            shown = f"{metric}={value:.2f}"
        else:
            shown = f"{self.objective.metric}={value:.2f}" if value is not None else result.state.value
        best = max((self.objective.score(r) for r in results), default=float("-inf"))
        best_value = f"{best if self.objective.mode == 'max' else -best:.2f}" if best > float("-inf") else "-"
        if self.budget is None:
            line = (f"[{done}] trial {result.trial:<3} {result.state.value:<8} {shown:<26}"
                    f" best {best_value}   {result.seconds:.1f}s")
        else:
            eta = (time.time() - self.start) / fresh * (self.budget - done)
            width = len(str(self.budget))
            line = (f"[{done:>{width}}/{self.budget}] trial {result.trial:<{width}} {result.state.value:<8}"
                    f" {shown:<26} best {best_value}   {result.seconds:.1f}s   eta {_duration(eta)}")
        if result.tags:
            line += "   (" + ", ".join(f"{k}={v}" for k, v in sorted(result.tags.items())) + ")"
        if result.error:
            line += f"   ({result.error})"
        print(line, file=self.stream, flush=True)
