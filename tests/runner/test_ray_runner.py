"""runner=ray: trials on distinct Ray workers, a worker killed mid-trial is retried, nothing is lost.

Every Ray socket stays on 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, RAY_AUTH_MODE=disabled, no
dashboard), and each test stops what it started. The runner starts its local cluster from this process, so
the cluster's processes (GCS, raylet, workers) are this process's descendants: the killer looks only among
them and never touches a Ray worker of another cluster on the machine.
"""

import os
import threading
import time

from nas.testing.skips import require_extra

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # before Ray is imported: every socket on 127.0.0.1
os.environ["RAY_AUTH_MODE"] = "disabled"
require_extra("ray", "ray")
psutil = require_extra("psutil", "ray")

from nas.cli.config import compose  # noqa: E402
from nas.runner.journal import read_events  # noqa: E402
from nas.runner.run import search  # noqa: E402


def own_trial_workers() -> list:
    """Ray workers running a trial that descend from this process (the cluster this test started)."""
    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "ray::evaluate_job" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def killer(stop: threading.Event, killed: list[int]) -> None:
    """Kill the first of our own Ray workers seen running a trial (once)."""
    while not stop.is_set() and not killed:
        workers = own_trial_workers()
        if workers:
            time.sleep(0.5)  # let it get into the trial
            try:
                workers[0].kill()
                killed.append(workers[0].pid)
            except psutil.Error:
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
    workers = {e["worker"] for e in finished}
    assert len(workers) >= 2  # trials ran on distinct worker processes
    assert all(int(w.rsplit(":", 1)[1]) != killed[0] for w in workers)  # the killed worker finished nothing
    assert summary.best is not None
    import ray

    assert not ray.is_initialized()  # the runner stopped the cluster it started


def test_ray_retries_a_trial_whose_worker_died_then_fails_one_that_always_dies(tmp_path):
    """Trial 1's worker kills itself once (retried), trial 3's every time (failed past max_retries), trial 4
    raises (failed, not retried): the budget is met, each trial is journalled once, each retry as ``retried``."""
    import nas.testing.faults  # noqa: F401  (registers _faulty; Ray workers import it through the executor)
    from nas.testing.faults import killed_pids

    run_dir, marks = tmp_path / "run", tmp_path / "marks"
    marks.mkdir()
    config = compose(["space=nb201", "space.preset=small", "runner=ray", "runner.num_cpus=2", "runner.max_retries=1",
                      "budget.trials=6", "searcher=random", f"run_dir={run_dir}"])
    config["evaluator"] = {"name": "_faulty", "faults": {1: "kill_once", 3: "kill", 4: "raise"}, "marks": str(marks),
                           "seconds": 0.2}
    search(config, progress=False)
    events = read_events(run_dir / "trials.jsonl")
    finished = {e["trial"]: e for e in events if e["event"] == "finished"}
    assert len([e for e in events if e["event"] == "finished"]) == 6 and sorted(finished) == list(range(6))
    assert sorted(e["trial"] for e in events if e["event"] == "started") == list(range(6))
    assert finished[1]["state"] == "complete" and int(finished[1]["worker"].rsplit(":", 1)[1]) != killed_pids(marks)[1]
    assert finished[3]["state"] == "failed" and finished[3]["error"].startswith("WorkerCrashedError")
    assert finished[3]["error"].endswith("(2 attempts)")
    retried = [(e["trial"], e["attempt"]) for e in events if e["event"] == "retried"]  # journalled by the runner
    assert sorted(retried) == [(1, 1), (3, 1)]
    assert all(e["reason"].startswith("WorkerCrashedError") for e in events if e["event"] == "retried")
    assert (finished[4]["state"], finished[4]["error"]) == ("failed", "RuntimeError: candidate 4 crashed")
    assert all(finished[t]["state"] == "complete" for t in (0, 2, 5))
    import ray

    assert not ray.is_initialized()
