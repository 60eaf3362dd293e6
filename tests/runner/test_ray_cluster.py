"""runner=ray against a real external cluster: ``ray start --head`` on loopback, ``nas search`` joins it.

Every Ray socket stays on 127.0.0.1: the env below is set for ``ray start`` and for the search (without
it Ray may advertise the machine's external address and a connect can hang), the head is checked to
advertise 127.0.0.1 and to answer ``ray status`` before anything connects, and every subprocess has a
hard timeout. The head runs with ``--block`` in its own temp dir and is stopped by signalling that one
process (it takes its raylet and workers down with it); ``ray stop`` is not used because it stops every
Ray process on the machine, including clusters this test did not start.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from nas.testing.skips import require_extra

require_extra("ray", "ray")
psutil = require_extra("psutil", "ray")

from nas.runner.journal import read_events, replay  # noqa: E402

pytestmark = pytest.mark.slow

ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
       "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "OMP_NUM_THREADS": "1"}
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def head():
    """A Ray head on 127.0.0.1:<free port> with 2 CPUs; yields (address, head process)."""
    port = free_port()
    temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
    log = Path(temp) / "head.log"
    env = {**os.environ, **ENV}
    with log.open("w") as out:
        proc = subprocess.Popen([RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
                                 "--num-cpus=2", "--include-dashboard=false", f"--temp-dir={temp}", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None, f"ray start exited: {log.read_text()[-2000:]}"
            assert time.time() < deadline, f"ray start did not come up: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        text = log.read_text()
        assert "Local node IP: 127.0.0.1" in text, text[-2000:]
        while True:  # the autoscaler's status lags the start by a few seconds
            status = subprocess.run([RAY, "status", f"--address=127.0.0.1:{port}"], capture_output=True, text=True,
                                    env=env, timeout=60)
            if status.returncode == 0 and "2.0 CPU" in status.stdout:
                break
            assert time.time() < deadline + 60, status.stdout + status.stderr
            time.sleep(1)
        yield f"127.0.0.1:{port}", proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(temp, ignore_errors=True)


def nas_search(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli.main", "search", *args], capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=timeout)


def trial_workers(head_proc: subprocess.Popen) -> list:
    """Ray workers of *this* cluster that are running a trial (descendants of the head process)."""
    try:
        children = psutil.Process(head_proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "ray::evaluate_job" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def test_search_on_an_external_cluster_uses_distinct_workers_and_survives_a_killed_worker(
        head, synthetic_nb201_table, tmp_path):
    address, head_proc = head
    run_dir = tmp_path / "tabular"
    done = nas_search(["space=nb201", "runner=ray", f"runner.address={address}", "evaluator=tabular",
                       f"evaluator.table={synthetic_nb201_table}", "searcher=random", "budget.trials=12",
                       f"run_dir={run_dir}"])
    assert done.returncode == 0, done.stderr[-3000:]
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending and len(results) == 12 and all(r.ok for r in results)
    assert len({r.worker for r in results}) >= 2  # trials ran in parallel on distinct worker processes
    assert json.loads((run_dir / "best.json").read_text())["metrics"]["valid_accuracy"] > 0

    run_dir = tmp_path / "train"
    stop, killed = threading.Event(), []

    def killer() -> None:
        while not stop.is_set() and not killed:
            workers = trial_workers(head_proc)
            if workers:
                time.sleep(0.5)  # let it get into the trial
                try:
                    workers[0].kill()
                    killed.append(workers[0].pid)
                except psutil.Error:
                    pass
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        done = nas_search(["space=nb201", "space.preset=small", "runner=ray", f"runner.address={address}",
                           "evaluator.epochs=2", "evaluator.max_steps_per_epoch=8", "searcher=random",
                           "budget.trials=4", f"run_dir={run_dir}"])
    finally:
        stop.set()
        thread.join()
    assert done.returncode == 0, done.stderr[-3000:]
    assert killed, "no Ray worker of the cluster was seen running a trial"
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending and len(results) == 4 and all(r.ok for r in results)  # the killed trial was retried
    assert len({r.worker for r in results}) >= 2
