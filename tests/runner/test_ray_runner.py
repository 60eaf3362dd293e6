"""runner=ray: trials on distinct Ray workers, a worker killed mid-trial is retried, nothing is lost.

Every Ray socket stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=disabled, no
dashboard), and each test stops what it started.
"""

import os
import signal
import subprocess
import threading
import time

import pytest

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: every socket on 127.0.0.1
os.environ["RAY_AUTH_MODE"] = "disabled"
pytest.importorskip("ray")

from nas.cli.config import compose  # noqa: E402
from nas.runner.journal import read_events  # noqa: E402
from nas.runner.run import search  # noqa: E402


def ray_workers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "ray::evaluate_job"], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def killer(stop: threading.Event, killed: list[int]) -> None:
    """Kill the first Ray worker seen running a trial (once)."""
    while not stop.is_set() and not killed:
        pids = ray_workers()
        if pids:
            time.sleep(0.5)  # let it get into the trial
            try:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def test_local_cluster_retries_a_killed_worker(tmp_path):
    run_dir = tmp_path / "run"
    config = compose(["space.preset=small", "evaluator.epochs=2", "runner=ray", "runner.num_cpus=2",
                      "budget.trials=6", "searcher=random", f"run_dir={run_dir}"])
    stop, killed = threading.Event(), []
    thread = threading.Thread(target=killer, args=(stop, killed), daemon=True)
    thread.start()
    try:
        summary = search(config, progress=False)
    finally:
        stop.set()
        thread.join()
    assert killed, "no Ray worker was seen running a trial"
    finished = [e for e in read_events(run_dir / "trials.jsonl") if e["event"] == "finished"]
    assert len(finished) == 6 and len({e["trial"] for e in finished}) == 6
    assert all(e["state"] == "complete" for e in finished)  # the killed trial was retried, not lost
    assert len({e["worker"] for e in finished}) >= 2  # trials ran on distinct worker processes
    assert summary.best is not None
    import ray

    assert not ray.is_initialized()  # the runner stopped the cluster it started
