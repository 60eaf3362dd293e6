"""What a tracker receives and the contract it keeps: one record per told trial, exactly once per run.

A tracker is fed from the journal (``nas.tracking.feed``): a trial is logged when its ``finished`` event is
written, with the per-epoch reports journalled before it. On resume the feed replays the journal and asks each
tracker, from its own store, whether it already holds a trial (``has``), so nothing is logged twice and what a
kill cut off is logged then.
"""

from __future__ import annotations

import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas.core.extras import MissingExtraError, message
from nas.core.result import Result

EXTRA = "tracking"


def require(module: str, logger: str, package: str) -> None:
    """Check that ``module`` is installed for ``logger=<logger>`` (without importing it: that is slow), or one line
    naming the ``package`` and the extra that installs it."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(f"{message(f'logger={logger}', EXTRA)} (it brings {package!r})")


@dataclass(frozen=True)
class RunInfo:
    """The search a tracker logs: its directory, resolved config and objective metrics (name -> max|min)."""

    run_dir: Path
    config: Mapping[str, Any]
    objectives: Mapping[str, str]


@dataclass(frozen=True)
class TrialRecord:
    """One told trial: its position in the search (``step``, 1 = first told), result, per-epoch reports and the
    search curve at that step (``search/<metric>`` and ``search/best_<metric>``, absent where undefined)."""

    step: int
    result: Result
    epochs: tuple[tuple[int, Mapping[str, float]], ...] = ()
    curve: Mapping[str, float] = field(default_factory=dict)


class Tracker(ABC):
    """An experiment tracker (TensorBoard, MLflow) fed with told trials."""

    name: str = ""

    def check(self) -> None:
        """Refuse a bad option (e.g. an unknown tracking URI scheme) before the run directory is made."""

    @abstractmethod
    def start(self, run: RunInfo) -> None:
        """Open (or, on resume, reopen) the tracker's records of this search."""

    def has(self, trial: int) -> bool:
        """Whether the trial was fully logged by an earlier session of this run (asked on resume only)."""
        return False

    @abstractmethod
    def trial(self, record: TrialRecord) -> None:
        """Log one told trial; parts already logged before a kill are not logged again."""

    def finish(self, run_dir: Path) -> None:
        """The search has ended: attach its outputs (best, pareto, report)."""

    def close(self, completed: bool) -> None:
        """Release files and connections; ``completed`` is False when the search was interrupted."""


def flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flat(value, name + "."))
        else:
            out[name] = value
    return out
