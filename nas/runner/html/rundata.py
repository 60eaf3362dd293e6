"""Everything ``report.html`` shows, read back from a run directory alone (config, journal, searcher files).

The page is built from the files, not from the runner's memory, so the live refresh during a search and
``nas report <run_dir>`` afterwards (or of a killed run) show the same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import UserError
from nas.core.result import Result
from nas.core.space import SearchSpace
from nas.runner.journal import read_events, replay
from nas.runner.report import chosen_best
from nas.searchers.base import MultiObjective, Objective


@dataclass
class RunData:
    """A run as the report sees it: finished trials in finishing order, those still running, best and front."""

    run_dir: Path
    config: dict[str, Any]
    space: SearchSpace
    objective: Objective | MultiObjective
    results: list[Result]
    running: list[int]
    seconds: float
    best: Result | None
    front: list[Result] | None

    @property
    def budget(self) -> int:
        return int(self.config["budget"]["trials"])

    def file(self, name: str) -> Path:
        return self.run_dir / name


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory; a directory that is not a run, or a corrupt journal, is one ``UserError`` line."""
    from nas.runner.run import objectives_of, read_run_config, run_space

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"not a run directory (no such directory): {run_dir}")
    config = read_run_config(run_dir)
    space = run_space(run_dir, config)
    journal = run_dir / "trials.jsonl"
    try:
        events = read_events(journal)
        if any(not isinstance(e, dict) for e in events):
            raise ValueError("a line is not a JSON object")
        results, pending = replay(events)
        for result in results:
            try:
                space.validate(result.genotype)
            except UserError as exc:
                raise ValueError(f"trial {result.trial}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:  # UnicodeDecodeError and bad genotypes are ValueErrors
        detail = f"an event lacks {exc}" if isinstance(exc, KeyError) else str(exc)
        raise UserError(f"cannot read {journal}: {detail}") from None
    try:
        objective = objectives_of(config)
    except ValueError as exc:
        raise UserError(f"{run_dir / 'config.json'}: bad objective ({exc})") from None
    times = [float(e["time"]) for e in events if isinstance(e.get("time"), (int, float))]
    front = None
    if isinstance(objective, MultiObjective):
        from nas.runner.pareto import pareto_front

        front = pareto_front(results, objective)
    return RunData(run_dir=run_dir, config=config, space=space, objective=objective, results=results,
                   running=sorted(pending), seconds=max(times) - min(times) if times else 0.0,
                   best=chosen_best(results, objective), front=front)


def read_json(path: Path) -> Any | None:
    """A searcher's JSON file, or None when it is absent or unreadable (then its section is left out)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
