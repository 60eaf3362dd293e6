"""Feed a run's trackers from its journal: each told trial once, in a background thread.

The journal is the source of truth (``nas.runner.journal``; this package imports nothing of the runner).
``Tracking.attach`` first replays the events already in it (a resume),
asking each tracker whether it holds a trial already, then subscribes to new events. A ``finished`` event
becomes a ``TrialRecord`` with the per-epoch ``reported`` events of that trial's last attempt and the search
curve at its step (its position among told trials, so steps continue across a resume). The trackers' writes run
in one worker thread, so a slow store (an MLflow server) does not hold the search up; a tracker that fails is
dropped with a one-line warning and the search goes on (a later ``resume=`` logs what it missed).
"""

from __future__ import annotations

import math
import queue
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.core.result import Result
from nas.tracking.base import RunInfo, Tracker, TrialRecord

_STOP = object()


class Tracking:
    """The trackers of one search, fed from its journal on the driver."""

    def __init__(self, trackers: Sequence[Tracker], run: RunInfo,
                 warn: Callable[[str], None] | None = None) -> None:
        self.trackers = list(trackers)
        self.run = run
        self._warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
        self._epochs: dict[int, dict[int, dict[str, float]]] = {}
        self._told: set[int] = set()
        self._best: dict[str, float] = {}
        self._step = 0
        self._queue: queue.Queue[Any] = queue.Queue()
        self._failed: set[int] = set()  # id() of trackers that raised
        self._thread = threading.Thread(target=self._work, name="nas-tracking", daemon=True)
        self._thread.start()
        self._queue.put(("start", None))

    def attach(self, events: Sequence[Mapping[str, Any]],
               subscribe: Callable[[Callable[[dict[str, Any]], None]], None]) -> None:
        """Replay the journal's ``events`` so far (what an earlier session told), then follow new ones
        (``subscribe`` is the journal's)."""
        for event in events:
            self._on_event(event, replayed=True)
        subscribe(self._on_event)

    def finish(self, run_dir: Path) -> None:
        """The search's outputs are written: hand them to the trackers."""
        self._queue.put(("finish", run_dir))

    def close(self, completed: bool) -> None:
        """Wait for the logged trials to be written and close the trackers; an interrupted search drops what is
        still queued (a resume logs it)."""
        if not completed:
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
        self._queue.put(("close", completed))
        self._queue.put(_STOP)
        self._thread.join()

    def _on_event(self, event: Mapping[str, Any], replayed: bool = False) -> None:
        kind = event.get("event")
        if kind == "started":
            self._epochs.pop(int(event["trial"]), None)  # a re-run trial reports its epochs again
        elif kind == "reported":
            self._epochs.setdefault(int(event["trial"]), {})[int(event["epoch"])] = dict(event["metrics"])
        elif kind == "finished" and int(event["trial"]) not in self._told:
            result = Result.from_json(event)
            self._told.add(result.trial)
            self._step += 1
            epochs = tuple(sorted(self._epochs.pop(result.trial, {}).items()))
            record = TrialRecord(self._step, result, epochs, self._curve(result))
            self._queue.put(("trial", (record, replayed)))

    def _curve(self, result: Result) -> dict[str, float]:
        curve: dict[str, float] = {}
        for metric, mode in self.run.objectives.items():
            value = result.metrics.get(metric)
            if result.ok and value is not None and not math.isnan(value):
                curve[f"search/{metric}"] = float(value)
                best = self._best.get(metric)
                if best is None or (value > best if mode == "max" else value < best):
                    self._best[metric] = float(value)
            if metric in self._best:
                curve[f"search/best_{metric}"] = self._best[metric]
        return curve

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            kind, payload = item
            for tracker in self.trackers:
                if id(tracker) in self._failed:
                    continue
                try:
                    self._apply(tracker, kind, payload)
                except Exception as exc:  # a tracker's failure must not end the search
                    self._failed.add(id(tracker))
                    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                    self._warn(f"warning: logger={tracker.name} stopped ({type(exc).__name__}: {text[:300]}); "
                               "the journal keeps every trial, and a resume= of this run logs what it missed")

    def _apply(self, tracker: Tracker, kind: str, payload: Any) -> None:
        if kind == "start":
            tracker.start(self.run)
        elif kind == "trial":
            record, replayed = payload
            if not (replayed and tracker.has(record.result.trial)):
                tracker.trial(record)
        elif kind == "finish":
            tracker.finish(payload)
        elif kind == "close":
            tracker.close(payload)
