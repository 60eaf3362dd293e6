"""TensorBoard event files under the run directory (``logger=tensorboard``).

``<dir>/`` (default ``<run_dir>/tensorboard``) holds the search curve: ``search/<metric>`` (each told trial's
objective) and ``search/best_<metric>`` (best so far) against the step (1 = first told trial). Each trial is a
run of its own, ``<dir>/trials/trial-<id>``: its per-epoch reports as ``epoch/<metric>`` against the epoch, its
final metrics at step 0, and an HParams session (the genotype's decisions and the state as hyperparameters, the
final metrics as metrics), so TensorBoard's HParams tab shows the whole table of trials.

Exactly once across kills: a trial's run is written in a scratch folder and renamed into place when complete,
and on resume the curve's points already in the event files are read back and not written again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from nas.tracking.base import RunInfo, Tracker, TrialRecord, require

TRIALS = "trials"


def _hparam(value: Any) -> bool | int | float | str:
    return value if isinstance(value, (bool, int, float, str)) else json.dumps(value)


class TensorBoardTracker(Tracker):
    """Writes the search curve and one run per trial as TensorBoard event files."""

    name = "tensorboard"

    def __init__(self, dir: str = "tensorboard") -> None:  # noqa: A002 - the config key
        if not isinstance(dir, str) or not dir:
            raise ValueError(f"logger.tensorboard.dir must be a folder name or path, got {dir!r}")
        require("tensorboard", self.name, "tensorboard")
        self.dir = dir
        self._writer: Any = None

    def start(self, run: RunInfo) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.root = Path(self.dir) if Path(self.dir).is_absolute() else run.run_dir / self.dir
        self.scratch = self.root.parent / f".{self.root.name}-partial"
        shutil.rmtree(self.scratch, ignore_errors=True)  # trial runs a kill cut off: written again
        self._points = self._existing_points()
        self._after_existing_files()
        self._writer = SummaryWriter(str(self.root), max_queue=1000, flush_secs=10)

    def _after_existing_files(self) -> None:
        """Wait (under a second, on resume only) until a new event file sorts after the earlier ones.

        TensorBoard reads a folder's event files in name order, ``events.out.tfevents.<10-digit second>.<host>.
        <pid>.<writer counter>``: a resume within the second of the earlier file, in the same process, could sort
        before it (counter 10 < 9 as text) and TensorBoard would then draw the curve's later steps first."""
        stamps = [int(parts[3]) for p in self.root.glob("events.out.tfevents.*")
                  if len(parts := p.name.split(".")) > 3 and parts[3].isdigit()]
        while stamps and int(time.time()) <= max(stamps):
            time.sleep(0.05)

    def _existing_points(self) -> set[tuple[str, int]]:
        """(tag, step) of the curve points an earlier session wrote (none for a new run)."""
        if not self.root.is_dir() or not any(p.name.startswith("events.") for p in self.root.iterdir()):
            return set()
        from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

        accumulator = EventAccumulator(str(self.root), size_guidance={SCALARS: 0})
        accumulator.Reload()
        return {(tag, event.step) for tag in accumulator.Tags()[SCALARS] for event in accumulator.Scalars(tag)}

    def trial(self, record: TrialRecord) -> None:
        for tag, value in record.curve.items():
            if (tag, record.step) not in self._points:
                self._writer.add_scalar(tag, value, record.step)
                self._points.add((tag, record.step))
        result = record.result
        final = self.root / TRIALS / f"trial-{result.trial:05d}"
        if final.exists():
            return
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        partial = self.scratch / final.name
        shutil.rmtree(partial, ignore_errors=True)
        writer = SummaryWriter(str(partial), max_queue=10_000, flush_secs=3600)
        try:
            for epoch, metrics in record.epochs:
                for key, value in metrics.items():
                    writer.add_scalar(f"epoch/{key}", value, epoch)
            values = {k: float(v) for k, v in result.metrics.items()}
            params = {**{k: _hparam(v) for k, v in result.genotype.values.items()}, "state": result.state.value}
            for summary in hparams(params, values):
                writer.file_writer.add_summary(summary)
            for key, value in values.items():
                writer.add_scalar(key, value, 0)
        finally:
            writer.close()
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, final)

    def close(self, completed: bool) -> None:
        if self._writer is not None:
            self._writer.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
