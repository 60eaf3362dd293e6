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

    def __init__(self, budget: int, objective: Objective, already: int = 0, stream: TextIO | None = None,
                 enabled: bool = True) -> None:
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
        eta = (time.time() - self.start) / fresh * (self.budget - done)
        value = result.metrics.get(self.objective.metric)
        shown = f"{self.objective.metric}={value:.2f}" if value is not None else result.state.value
        best = max((self.objective.score(r) for r in results), default=float("-inf"))
        best_value = best if self.objective.mode == "max" else -best
        width = len(str(self.budget))
        line = (f"[{done:>{width}}/{self.budget}] trial {result.trial:<{width}} {result.state.value:<8} {shown:<26}"
                f" best {best_value:.2f}   {result.seconds:.1f}s   eta {_duration(eta)}")
        if result.error:
            line += f"   ({result.error})"
        print(line, file=self.stream, flush=True)
