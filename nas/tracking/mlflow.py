"""MLflow runs (``logger=mlflow``): one parent run per search, one nested run per trial.

The parent run (named after the run directory, tagged ``nas.run_dir``) has the resolved config as params
(flattened: ``searcher.population_size``), the search curve as metrics (``search/<metric>``,
``search/best_<metric>`` against the step) and, when the search ends, ``best.json``/``pareto.json``,
``report.md`` and the plots as artifacts. Each trial is a nested run ``trial-<id>``: the genotype's decisions
as params (the genotype JSON in the tag ``nas.genotype``), its per-epoch reports as ``epoch/<metric>`` against
the epoch, its final metrics, and its state (complete -> FINISHED, failed -> FAILED, pruned -> KILLED).

The store is ``logger.mlflow.tracking_uri``, by default a local file store in ``<run_dir>/mlruns`` (MLflow keeps
that backend in maintenance mode and asks for ``MLFLOW_ALLOW_FILE_STORE=true``, which is set for it). MLflow's
usage telemetry is off unless ``MLFLOW_DISABLE_TELEMETRY`` is set otherwise. On resume the parent run is found
again by its tag; trials whose nested run ended are not logged again, a nested run a kill left running is
deleted and logged anew, and curve points already in the parent's metric history are not written twice. A kill
can cut the file store mid-append (an empty metric file, a last line without its newline), which MLflow's readers
refuse for the whole experiment: before reading it back, the resume trims what the kill cut in this search's own
runs (``repair_file_store``), so the lost points are logged again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from nas.core.errors import UserError
from nas.core.result import TrialState
from nas.tracking.base import RunInfo, Tracker, TrialRecord, flat, require

STATUS = {TrialState.COMPLETE: "FINISHED", TrialState.FAILED: "FAILED", TrialState.PRUNED: "KILLED"}
ENDED = set(STATUS.values())
ARTIFACTS = ("best.json", "pareto.json", "report.md", "progress.png", "pareto.png", "cost_vs_accuracy.png")
BATCH = 100  # MLflow's limit of params (and tags) per log_batch
PARAM_LENGTH = 6000  # MLflow's limit of a param value's length
TAG_LENGTH = 8000


def _key(name: str) -> str:
    """A metric or param name MLflow accepts (letters, digits, ``_-./ :``)."""
    return re.sub(r"[^\w\-./ :]", "_", name)


def _chunks(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for k in range(0, len(items), size):
        yield items[k:k + size]


def _tag(run: Path, name: str) -> str:
    try:
        return (run / "tags" / name).read_text()
    except OSError:
        return ""


def repair_file_store(experiment: Path, run_key: str) -> list[Path]:
    """Trim what a kill cut mid-append in one search's runs of an MLflow file store; the files changed.

    The file store appends one ``timestamp value step`` line per metric point; a kill between the file's creation
    and its write leaves it empty, one inside the write leaves a last line without its newline, and MLflow then
    refuses to read any run of the experiment. Only the search's parent run (tag ``nas.run_key``) and its nested
    runs are touched, never another search's runs in a shared store. Written by hand: MLflow offers no repair.
    """
    runs = [d for d in experiment.iterdir() if d.is_dir()] if experiment.is_dir() else []
    parents = {d.name for d in runs if _tag(d, "nas.run_key") == run_key}
    changed = []
    for run in runs:
        if run.name not in parents and _tag(run, "mlflow.parentRunId") not in parents:
            continue
        for metric in sorted(p for p in (run / "metrics").rglob("*") if p.is_file()):
            data = metric.read_bytes()
            if data.endswith(b"\n"):
                continue
            kept = data[:data.rfind(b"\n") + 1]
            if kept:
                metric.write_bytes(kept)
            else:
                metric.unlink()
            changed.append(metric)
    return changed


class MlflowTracker(Tracker):
    """Logs the search to an MLflow tracking store."""

    name = "mlflow"

    def __init__(self, tracking_uri: str | None = None, experiment: str = "nas") -> None:
        if tracking_uri is not None and (not isinstance(tracking_uri, str) or not tracking_uri):
            raise ValueError(f"logger.mlflow.tracking_uri must be a URI or null, got {tracking_uri!r}")
        if not isinstance(experiment, str) or not experiment:
            raise ValueError(f"logger.mlflow.experiment must be a name, got {experiment!r}")
        require("mlflow", self.name, "mlflow-skinny")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self._parent: str | None = None

    def _client(self, uri: str) -> Any:
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        try:
            return MlflowClient(tracking_uri=uri)
        except MlflowException as exc:
            schemes = re.search(r"Supported URI schemes are: \[([^\]]*)\]", str(exc))
            names = [n.strip(" '") for n in schemes.group(1).split(",")] if schemes else []
            detail = (f"unsupported URI scheme; MLflow supports {', '.join(n for n in names if n)} (or a path)"
                      if schemes else str(exc).strip().splitlines()[0])
            raise UserError(f"logger.mlflow.tracking_uri={uri}: {detail}") from None

    def check(self) -> None:
        if self.tracking_uri is not None:
            self._client(self.tracking_uri)

    def start(self, run: RunInfo) -> None:
        uri = self.tracking_uri or (run.run_dir.resolve() / "mlruns").as_uri()
        self.client = client = self._client(uri)
        found = client.get_experiment_by_name(self.experiment)
        self._experiment = found.experiment_id if found else client.create_experiment(self.experiment)
        run_key = hashlib.sha256(str(run.run_dir.resolve()).encode()).hexdigest()[:16]
        if found and uri.startswith("file:"):
            repair_file_store(Path(url2pathname(urlparse(uri).path)) / self._experiment, run_key)
        parents = client.search_runs([self._experiment], f"tags.`nas.run_key` = '{run_key}'", max_results=1)
        self._done: set[int] = set()
        self._points: set[tuple[str, int]] = set()
        if parents:
            self._parent = parents[0].info.run_id
            client.update_run(self._parent, status="RUNNING")
            self._reopen(run)
            return
        self._parent = client.create_run(self._experiment, run_name=run.run_dir.name,
                                         tags={"nas.run_key": run_key, "nas.run_dir": str(run.run_dir.resolve())}
                                         ).info.run_id
        from mlflow.entities import Param

        params = [Param(_key(k), self._text(v)[:PARAM_LENGTH]) for k, v in flat(run.config).items()]
        for chunk in _chunks(params):
            client.log_batch(self._parent, params=chunk)

    @staticmethod
    def _text(value: Any) -> str:
        return value if isinstance(value, str) else json.dumps(value)

    def _reopen(self, run: RunInfo) -> None:
        """What an earlier session logged: ended nested runs, and the parent's curve points."""
        token = None
        while True:
            page = self.client.search_runs([self._experiment], f"tags.`mlflow.parentRunId` = '{self._parent}'",
                                           max_results=1000, page_token=token)
            for nested in page:
                trial = nested.data.tags.get("nas.trial", "")
                if nested.info.status in ENDED and trial.isdigit():
                    self._done.add(int(trial))
                else:  # a kill cut it off mid-way (before its tags, even): log it again whole
                    self.client.delete_run(nested.info.run_id)
            token = page.token
            if not token:
                break
        for metric, _ in run.objectives.items():
            for key in (f"search/{metric}", f"search/best_{metric}"):
                self._points.update((key, m.step) for m in self.client.get_metric_history(self._parent, key))

    def has(self, trial: int) -> bool:
        return trial in self._done

    def trial(self, record: TrialRecord) -> None:
        from mlflow.entities import Metric, Param, RunTag

        result = record.result
        stamp = int((result.finished or time.time()) * 1000)
        curve = [Metric(key, value, stamp, record.step) for key, value in record.curve.items()
                 if (key, record.step) not in self._points]
        if curve:
            self.client.log_batch(self._parent, metrics=curve)
            self._points.update((m.key, m.step) for m in curve)
        if result.trial in self._done:
            return
        genotype = json.dumps(result.genotype.to_json(), separators=(",", ":"))
        # create_run writes each of its tags with a lookup of the run (slow in the file store): only the two that
        # find the run again on resume go there, the others in the batch
        nested = self.client.create_run(self._experiment, start_time=int(result.started * 1000) or None,
                                        tags={"mlflow.parentRunId": self._parent, "nas.trial": str(result.trial)},
                                        run_name=f"trial-{result.trial}").info.run_id
        tags = {"nas.state": result.state.value, "nas.fingerprint": result.fingerprint, "nas.worker": result.worker,
                **{f"nas.tag.{k}": str(v) for k, v in result.tags.items()}}
        if len(genotype) <= TAG_LENGTH:
            tags["nas.genotype"] = genotype
        else:
            self.client.log_text(nested, genotype, "genotype.json")
        if result.error:
            tags["nas.error"] = result.error[:TAG_LENGTH]
        metrics = [Metric(_key(f"epoch/{k}"), float(v), stamp, epoch)
                   for epoch, values in record.epochs for k, v in values.items()]
        metrics += [Metric(_key(k), float(v), stamp, 0) for k, v in result.metrics.items()]
        params = [Param(_key(k), self._text(v)[:PARAM_LENGTH]) for k, v in result.genotype.values.items()]
        tag_list = [RunTag(k, v) for k, v in tags.items()]
        for k in range(0, max(len(metrics), len(params), len(tag_list)), BATCH):
            self.client.log_batch(nested, metrics=metrics[k:k + BATCH], params=params[k:k + BATCH],
                                  tags=tag_list[k:k + BATCH])
        self.client.set_terminated(nested, STATUS[result.state], end_time=stamp)
        self._done.add(result.trial)

    def finish(self, run_dir: Path) -> None:
        for name in ARTIFACTS:
            if (run_dir / name).is_file():
                self.client.log_artifact(self._parent, str(run_dir / name))

    def close(self, completed: bool) -> None:
        if self._parent is not None:
            self.client.set_terminated(self._parent, "FINISHED" if completed else "KILLED")
