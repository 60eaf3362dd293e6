"""The append-only JSONL journal of a run: one event per line, flushed and fsynced.

Events: ``started`` (trial, genotype, fingerprint, seed), ``reported`` (trial, epoch, metrics),
``finished`` (a ``Result``'s fields), ``retried`` (trial, attempt, reason: its worker process or node was
lost and it is run again), ``rejected`` (a genotype over a constraint). Resume replays it; a line cut short by
a kill is ignored.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState


class Journal:
    """Writes events to ``trials.jsonl``; each ``append`` is durable when it returns, and is then handed to the
    listeners (``subscribe``), e.g. the run's experiment trackers."""

    def __init__(self, path: str | Path) -> None:
        """Open for appending; a torn last line (a write cut short) is ended first, so that the next event
        starts a line of its own instead of being glued to the fragment (and lost with it)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open("rb") as handle:
                handle.seek(-1, os.SEEK_END)
                torn = handle.read(1) != b"\n"
        self._handle = self.path.open("a", encoding="utf-8")
        if torn:
            self._handle.write("\n")
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(event)`` with every event appended from now on, after it is on disk."""
        self._listeners.append(listener)

    def append(self, event: str, **fields: Any) -> None:
        record = {"event": event, "time": time.time(), **fields}
        self._handle.write(json.dumps(record, sort_keys=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        for listener in self._listeners:
            listener(record)

    def finished(self, result: Result) -> None:
        self.append("finished", **result.to_json())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_events(path: str | Path) -> list[dict[str, Any]]:
    """All complete events of a journal (a torn last line from a kill is skipped)."""
    events = []
    file = Path(path)
    if not file.exists():
        return events
    with file.open(encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return events


def replay(events: list[dict[str, Any]]) -> tuple[list[Result], dict[int, dict[str, Any]]]:
    """(finished results in finishing order, started-but-unfinished trials by id)."""
    finished: dict[int, Result] = {}
    started: dict[int, dict[str, Any]] = {}
    for event in events:
        kind = event.get("event")
        if kind == "started":
            started[int(event["trial"])] = event
        elif kind == "finished":
            trial = int(event["trial"])
            if trial not in finished:
                finished[trial] = Result.from_json(event)
    pending = {t: e for t, e in started.items() if t not in finished}
    return list(finished.values()), pending


def told_sequence(events: list[dict[str, Any]]) -> list[tuple[Genotype, Result]]:
    """What the searcher was told, in order: each finished trial, each duplicate proposal answered with an
    earlier trial's result (``duplicate`` events) and each proposal a constraint rejected (``rejected``), as
    (proposed genotype, result) pairs; ``Searcher.recover`` replays them as asks and tells. A duplicate of a trial
    still running (several workers) was told nothing and is not replayed."""
    finished: dict[int, Result] = {}
    told: list[tuple[Genotype, Result]] = []
    for event in events:
        kind = event.get("event")
        if kind == "finished":
            trial = int(event["trial"])
            if trial not in finished:
                finished[trial] = Result.from_json(event)
                told.append((finished[trial].genotype, finished[trial]))
        elif kind == "duplicate" and event.get("of_trial") in finished:
            told.append((Genotype.from_json(event["genotype"]), finished[event["of_trial"]]))
        elif kind == "rejected":
            genotype = Genotype.from_json(event["genotype"])
            told.append((genotype, Result(trial=-1, genotype=genotype, state=TrialState.FAILED,
                                          error=str(event.get("reason", "")))))
    return told
