"""Experiment tracking (``logger=none|tensorboard|mlflow``, several at once): trackers fed by the run's journal.

``build_trackers`` makes the trackers a config names (checking their options and that their packages are
installed, before anything is written); ``Tracking`` (``nas.tracking.feed``) feeds them each told trial once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from nas.core.errors import UserError
from nas.tracking.base import RunInfo, Tracker, TrialRecord
from nas.tracking.feed import Tracking

__all__ = ["LOGGERS", "RunInfo", "Tracker", "Tracking", "TrialRecord", "build_trackers", "tracking"]

LOGGERS = ("tensorboard", "mlflow")


def _tracker_class(name: str) -> type[Tracker]:
    if name == "tensorboard":
        from nas.tracking.tensorboard import TensorBoardTracker

        return TensorBoardTracker
    from nas.tracking.mlflow import MlflowTracker

    return MlflowTracker


def build_trackers(section: Mapping[str, Any] | None) -> list[Tracker]:
    """The trackers of a config's ``logger`` section (``{}`` or None: none), their options checked."""
    if section is not None and not isinstance(section, Mapping):
        raise UserError(f"logger must be a mapping of tracker names to options, got {section!r}")
    trackers = []
    for name, options in (section or {}).items():
        if name not in LOGGERS:
            raise UserError(f"unknown logger {name!r}; valid choices: none, {', '.join(LOGGERS)}")
        cls = _tracker_class(name)
        try:
            tracker = cls(**dict(options or {}))
        except TypeError as exc:
            raise UserError(f"bad option for logger {name!r}: {exc}") from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        tracker.check()
        trackers.append(tracker)
    return trackers


@contextmanager
def tracking(section: Mapping[str, Any] | None, run: RunInfo) -> Iterator[Tracking | None]:
    """The search's ``Tracking`` (None when ``logger=none``), closed on exit: completed when the body ended
    normally, interrupted (queued writes dropped, a resume logs them) when it raised."""
    trackers = build_trackers(section)
    if not trackers:
        yield None
        return
    feed = Tracking(trackers, run)
    completed = False
    try:
        yield feed
        completed = True
    finally:
        feed.close(completed)
