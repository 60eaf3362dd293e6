"""Experiment tracking (``logger=``): TensorBoard and MLflow records read back with their own readers, each told
trial logged exactly once, also across a resume after the trackers lost points."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nas.cli.config import compose
from nas.cli.main import main
from nas.core.errors import UserError
from nas.runner.journal import read_events
from nas.runner.run import search
from nas.testing.skips import require_extra

MlflowClient = require_extra("mlflow", "tracking").MlflowClient
event_accumulator = require_extra("tensorboard.backend.event_processing.event_accumulator", "tracking")
EventAccumulator, SCALARS = event_accumulator.EventAccumulator, event_accumulator.SCALARS

BOTH = "logger=[tensorboard,mlflow]"


def run(table: Path, run_dir: Path, *extra: str):
    return search(compose(["evaluator=tabular", f"evaluator.table={table}", "searcher=random", f"run_dir={run_dir}",
                           *extra]), progress=False)


def finished(run_dir: Path) -> list[dict]:
    return [e for e in read_events(run_dir / "trials.jsonl") if e["event"] == "finished"]  # [] before it exists


def curve(values: list[float]) -> list[float]:
    return [max(values[:k + 1]) for k in range(len(values))]


def same_points(actual: list[tuple[int, float]], expected: list[tuple[int, float]]) -> bool:
    """Same steps in the same order, values equal to float32 precision (TensorBoard stores float32)."""
    return [step for step, _ in actual] == [step for step, _ in expected] and \
        [value for _, value in actual] == pytest.approx([value for _, value in expected], rel=1e-6)


def tb_scalars(path: Path) -> dict[str, list[tuple[int, float]]]:
    accumulator = EventAccumulator(str(path), size_guidance={SCALARS: 0})
    accumulator.Reload()
    return {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()[SCALARS]}


def mlflow_runs(run_dir: Path):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # the runs' local file store (set by the search when it ran here)
    client = MlflowClient(tracking_uri=(run_dir / "mlruns").resolve().as_uri())
    experiment = client.get_experiment_by_name("nas").experiment_id
    runs = client.search_runs([experiment], max_results=1000)
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    return client, parents[0], nested


def test_tensorboard_curve_trials_and_hparams(nb201_table, tmp_path):
    run_dir = tmp_path / "tb"
    run(nb201_table, run_dir, "budget.trials=6", "logger=tensorboard")
    events = finished(run_dir)
    accuracy = [e["metrics"]["valid_accuracy"] for e in events]
    scalars = tb_scalars(run_dir / "tensorboard")
    assert same_points(scalars["search/valid_accuracy"], list(enumerate(accuracy, start=1)))
    assert same_points(scalars["search/best_valid_accuracy"], list(enumerate(curve(accuracy), start=1)))
    trials = sorted(p.name for p in (run_dir / "tensorboard" / "trials").iterdir())
    assert trials == [f"trial-{e['trial']:05d}" for e in sorted(events, key=lambda e: e["trial"])]
    event = events[2]
    trial_dir = run_dir / "tensorboard" / "trials" / f"trial-{event['trial']:05d}"
    assert same_points(tb_scalars(trial_dir)["test_accuracy"], [(0, event["metrics"]["test_accuracy"])])
    from tensorboard.plugins.hparams import plugin_data_pb2

    accumulator = EventAccumulator(str(trial_dir))
    accumulator.Reload()
    content = accumulator.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert {k: v.string_value for k, v in start.hparams.items()} == \
        {**event["genotype"]["decisions"], "state": "complete"}
    assert not (run_dir / ".tensorboard-partial").exists()


def test_mlflow_parent_nested_runs_and_artifacts(nb201_table, tmp_path):
    run_dir = tmp_path / "ml"
    run(nb201_table, run_dir, "budget.trials=5", "logger=mlflow", "seed=4")
    client, parent, nested = mlflow_runs(run_dir)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "ml"
    assert parent.data.params["searcher.name"] == "random" and parent.data.params["seed"] == "4"
    assert parent.data.params["evaluator.table"] == str(nb201_table)
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best.json", "report.md", "progress.png"} <= artifacts
    events = {e["trial"]: e for e in finished(run_dir)}
    assert sorted(int(r.data.tags["nas.trial"]) for r in nested) == sorted(events)
    for r in nested:
        event = events[int(r.data.tags["nas.trial"])]
        assert r.info.status == "FINISHED" and r.data.tags["nas.state"] == "complete"
        assert r.data.params == event["genotype"]["decisions"]
        assert json.loads(r.data.tags["nas.genotype"]) == event["genotype"]
        assert r.data.metrics == pytest.approx(event["metrics"])
    history = client.get_metric_history(parent.info.run_id, "search/best_valid_accuracy")
    accuracy = [e["metrics"]["valid_accuracy"] for e in finished(run_dir)]
    assert same_points([(m.step, m.value) for m in history], list(enumerate(curve(accuracy), start=1)))


def test_resume_logs_what_a_kill_lost_and_nothing_twice(nb201_table, tmp_path, capsys):
    """A kill after trials were journalled but before the trackers wrote them: the resume logs the missing ones
    (and a nested run the kill left half-written) exactly once, and continues the steps."""
    run_dir = tmp_path / "r"
    run(nb201_table, run_dir, "budget.trials=5", BOTH)
    events = finished(run_dir)
    # what the trackers would hold after a kill: TensorBoard's curve file was cut mid-record (its last points
    # lost) and the last two trial runs were never renamed into place,
    tb = run_dir / "tensorboard"
    (curve_file,) = tb.glob("events.*")
    with curve_file.open("r+b") as handle:
        handle.truncate(curve_file.stat().st_size - 150)
    kept = tb_scalars(tb)["search/valid_accuracy"]
    assert 0 < len(kept) < 5
    for event in events[-2:]:
        shutil.rmtree(tb / "trials" / f"trial-{event['trial']:05d}")
    (tb.parent / ".tensorboard-partial" / "trial-00099").mkdir(parents=True)  # a trial run cut off mid-write
    # MLflow lost the last trial and was cut off while writing the one before.
    client, parent, nested = mlflow_runs(run_dir)
    by_trial = {int(r.data.tags["nas.trial"]): r.info.run_id for r in nested}
    client.delete_run(by_trial[events[-1]["trial"]])
    client.update_run(by_trial[events[-2]["trial"]], status="RUNNING")
    client.set_terminated(parent.info.run_id, "KILLED")
    # and the kill cut the file store mid-append: an empty metric file in the nested run it cut off, the parent's
    # last curve point without its newline (MLflow's readers refuse the whole experiment until both are trimmed)
    (cut_run,) = (run_dir / "mlruns").glob(f"*/{by_trial[events[-2]['trial']]}")
    (cut_run / "metrics" / "train_accuracy").write_bytes(b"")
    (cut_run / "tags" / "nas.trial").write_bytes(b"")  # cut even before its trial tag was written
    (parent_dir,) = (run_dir / "mlruns").glob(f"*/{parent.info.run_id}")
    points = parent_dir / "metrics" / "search" / "valid_accuracy"
    points.write_bytes(points.read_bytes()[:-4])
    with pytest.raises(ValueError, match="malformed"):
        mlflow_runs(run_dir)

    assert main(["search", f"resume={run_dir}", "budget.trials=8"]) == 0
    assert "stopped" not in capsys.readouterr().err  # no tracker was dropped
    events = finished(run_dir)
    assert len(events) == 8
    accuracy = [e["metrics"]["valid_accuracy"] for e in events]
    scalars = tb_scalars(tb)
    assert same_points(scalars["search/valid_accuracy"], list(enumerate(accuracy, start=1)))
    assert same_points(scalars["search/best_valid_accuracy"], list(enumerate(curve(accuracy), start=1)))
    assert sorted(p.name for p in (tb / "trials").iterdir()) == sorted(f"trial-{e['trial']:05d}" for e in events)
    assert not (tb.parent / ".tensorboard-partial").exists()
    client, parent, nested = mlflow_runs(run_dir)
    assert parent.info.status == "FINISHED"
    assert sorted(int(r.data.tags["nas.trial"]) for r in nested) == sorted(e["trial"] for e in events)
    assert all(r.info.status == "FINISHED" for r in nested)
    history = client.get_metric_history(parent.info.run_id, "search/valid_accuracy")
    assert same_points([(m.step, m.value) for m in history], list(enumerate(accuracy, start=1)))


def test_train_evaluator_per_epoch_metrics(tmp_path):
    run_dir = tmp_path / "train"
    search(compose(["space=nb201", "space.preset=small", "searcher=random", "evaluator.epochs=2",
                    "evaluator.max_steps_per_epoch=2", "budget.trials=2", f"run_dir={run_dir}", BOTH]),
           progress=False)
    reports = [e for e in read_events(run_dir / "trials.jsonl") if e["event"] == "reported"]
    assert len(reports) == 4
    client, _, nested = mlflow_runs(run_dir)
    runs = {int(r.data.tags["nas.trial"]): r.info.run_id for r in nested}
    for trial in runs:
        mine = [(e["epoch"], e["metrics"]) for e in reports if e["trial"] == trial]
        for metric in ("train_loss", "valid_accuracy"):
            expected = [(epoch, metrics[metric]) for epoch, metrics in mine]
            tb = tb_scalars(run_dir / "tensorboard" / "trials" / f"trial-{trial:05d}")[f"epoch/{metric}"]
            assert same_points(tb, expected)
            history = client.get_metric_history(runs[trial], f"epoch/{metric}")
            assert same_points(sorted((m.step, m.value) for m in history), expected)


def test_bad_logger_choices_are_one_line_errors(nb201_table, tmp_path, capsys):
    for override, message in (("logger=wandb", "unknown logger 'wandb'; valid choices: mlflow, none, tensorboard"),
                              ("logger=tensorboard,mlflow", "logger=[tensorboard,mlflow]"),
                              ("logger.mlflow.experiment=x", "unknown setting 'logger.mlflow.experiment'")):
        with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
            compose([override])
    run_dir = tmp_path / "bad"
    code = main(["search", "evaluator=tabular", f"evaluator.table={nb201_table}", "logger=mlflow",
                 "logger.mlflow.tracking_uri=nosuch://x", f"run_dir={run_dir}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith("error: logger.mlflow.tracking_uri=nosuch://x: unsupported URI scheme; MLflow supports ")
    assert "http, https" in err[0]
    assert not run_dir.exists()


def test_missing_extra_names_it(nb201_table, tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    run_dir = tmp_path / "missing"
    code = main(["search", "evaluator=tabular", f"evaluator.table={nb201_table}", BOTH, f"run_dir={run_dir}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["error: logger=mlflow needs the 'tracking' extra: pip install 'nas-engine[tracking]' "
                                 "(it brings 'mlflow-skinny')"]
    assert not run_dir.exists()


def assert_tracked_once(run_dir: Path) -> None:
    """TensorBoard and MLflow hold every told trial of the journal once: curve steps 1..N in journal order, one
    trial run each, and each trial's per-epoch reports of its last attempt."""
    events, reports = [], {}
    for event in read_events(run_dir / "trials.jsonl"):
        if event["event"] == "started":
            reports[event["trial"]] = {}
        elif event["event"] == "reported":
            reports[event["trial"]][event["epoch"]] = event["metrics"]
        elif event["event"] == "finished":
            events.append(event)
    accuracy = [e["metrics"]["valid_accuracy"] for e in events]
    tb = run_dir / "tensorboard"
    assert same_points(tb_scalars(tb)["search/best_valid_accuracy"], list(enumerate(curve(accuracy), start=1)))
    assert sorted(p.name for p in (tb / "trials").iterdir()) == sorted(f"trial-{e['trial']:05d}" for e in events)
    client, parent, nested = mlflow_runs(run_dir)
    history = client.get_metric_history(parent.info.run_id, "search/valid_accuracy")
    assert same_points([(m.step, m.value) for m in history], list(enumerate(accuracy, start=1)))
    runs = {int(r.data.tags["nas.trial"]): r for r in nested}
    assert len(runs) == len(nested) and sorted(runs) == sorted(e["trial"] for e in events)
    for event in events:
        expected = sorted((epoch, m["valid_accuracy"]) for epoch, m in reports[event["trial"]].items())
        scalars = tb_scalars(tb / "trials" / f"trial-{event['trial']:05d}")
        assert same_points(scalars.get("epoch/valid_accuracy", []), expected)
        mlflow = client.get_metric_history(runs[event["trial"]].info.run_id, "epoch/valid_accuracy")
        assert same_points(sorted((m.step, m.value) for m in mlflow), expected)
    assert parent.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in nested)


TRAIN = ["space=nb201", "space.preset=small", "evaluator.epochs=2", "evaluator.max_steps_per_epoch=3",
         "searcher=random", "seed=3", BOTH]


@pytest.mark.slow
def test_workers_kill_and_resume_logs_each_point_once(tmp_path):
    """runner.workers=2: the driver logs; kill -9 the search mid-way, resume it, every point is there once."""
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas.cli.main", "search", *TRAIN, "runner.workers=2", "budget.trials=8",
           f"run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(finished(run_dir)) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= len(finished(run_dir)) < 8, "the search should have been killed mid-way"
    out = subprocess.run([sys.executable, "-m", "nas.cli.main", "search", f"resume={run_dir}"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert len(finished(run_dir)) == 8
    assert_tracked_once(run_dir)


@pytest.mark.slow
def test_ray_runner_logs_from_the_driver_and_resumes(tmp_path):
    """runner=ray: per-epoch reports come back with each trial and are logged by the driver; a resume to a
    larger budget continues the steps without a point twice."""
    require_extra("ray", "ray")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    run_dir = tmp_path / "ray"
    search(compose([*TRAIN, "runner=ray", "runner.num_cpus=2", "budget.trials=4", f"run_dir={run_dir}"]),
           progress=False)
    assert_tracked_once(run_dir)
    assert main(["search", f"resume={run_dir}", "budget.trials=6"]) == 0
    assert len(finished(run_dir)) == 6
    assert_tracked_once(run_dir)


def test_a_resumed_curve_file_sorts_after_the_earlier_one(tmp_path):
    """TensorBoard reads event files in name order: a resume in the same second and process as the earlier file
    (whose writer counter may sort after the new one as text, 9 > 10) must still come after it."""
    from torch.utils.tensorboard import SummaryWriter

    from nas.tracking import RunInfo
    from nas.tracking.tensorboard import TensorBoardTracker

    root = tmp_path / "tensorboard"
    with SummaryWriter(str(root)) as earlier:
        earlier.add_scalar("search/valid_accuracy", 1.0, 1)
    (first,) = root.glob("events.*")
    stamp = int(time.time()) + 1  # an earlier file stamped with the second the resume starts in
    parts = first.name.split(".")
    parts[3], parts[-1] = f"{stamp:010d}", "9"
    first.rename(root / ".".join(parts))
    tracker = TensorBoardTracker()
    tracker.start(RunInfo(tmp_path, {}, {"valid_accuracy": "max"}))
    tracker._writer.add_scalar("search/valid_accuracy", 2.0, 2)
    tracker._writer.close()
    names = sorted(p.name for p in root.glob("events.*"))
    assert names[0] == ".".join(parts) and len(names) == 2
    assert tb_scalars(root)["search/valid_accuracy"] == [(1, 1.0), (2, 2.0)]
