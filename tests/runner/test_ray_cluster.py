"""runner=ray against a real external cluster: ``ray start --head`` on loopback, ``nas search`` joins it.

Every Ray socket stays on 127.0.0.1: the env below is set for every node and for the search (without it Ray
may advertise the machine's external address and a connect can hang), each node is checked to advertise
127.0.0.1 and ``ray status`` to count its CPUs before anything connects, and every subprocess has a hard
timeout. A second node joins through ``nas.testing.ray_node`` (``ray start --address=127.0.0.1:<port>``
refuses to join on loopback, or swaps in the external address). Each node blocks in its own session and temp
dir and is stopped by signalling that one process (it takes its raylet and workers down with it); ``ray stop``
is not used because it stops every Ray process on the machine, including clusters this test did not start.
"""

import contextlib
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
from collections.abc import Iterator
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
CLI = "import sys; from nas.cli.main import main; sys.exit(main())"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_node(cmd: list[str], address: str, cpus: float, log: Path) -> subprocess.Popen:
    """Run ``cmd`` (a node that blocks) in its own session; return it once the node runs on 127.0.0.1 and
    ``ray status`` shows ``cpus`` in the whole cluster (the autoscaler's status lags a start by a few seconds)."""
    env = {**os.environ, **ENV}
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + 120
        while "Ray runtime started" not in log.read_text():
            assert proc.poll() is None, f"the node exited: {log.read_text()[-2000:]}"
            assert time.time() < deadline, f"the node did not come up: {log.read_text()[-2000:]}"
            time.sleep(0.5)
        text = log.read_text()
        assert "Local node IP: 127.0.0.1" in text, text[-2000:]
        while True:
            status = subprocess.run([RAY, "status", f"--address={address}"], capture_output=True, text=True,
                                    env=env, timeout=60)
            if status.returncode == 0 and f"/{cpus:.1f} CPU" in status.stdout:
                return proc
            assert time.time() < deadline + 60, status.stdout + status.stderr
            time.sleep(1)
    except BaseException:
        stop_node(proc)
        raise


def stop_node(proc: subprocess.Popen) -> None:
    """SIGTERM a ``ray start --block`` process (it takes its raylet and workers down), SIGKILL it if it hangs."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


@contextlib.contextmanager
def cluster(*cpus: int) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A head (``ray start --head``) on 127.0.0.1:<free port> with ``cpus[0]`` CPUs, then one more node joined to
    it per further entry (``python -m nas.testing.ray_node``: ``ray start`` cannot join a node on loopback), each
    in its own temp dir; yields (address, [head process, node processes...]) and stops them, joined nodes first."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    temps: list[str] = []
    try:
        for k, n in enumerate(cpus):
            temp = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths must stay < 108 chars
            temps.append(temp)
            if k == 0:
                cmd = [RAY, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", f"--num-cpus={n}",
                       "--include-dashboard=false", f"--temp-dir={temp}", "--block"]
            else:
                cmd = [sys.executable, "-m", "nas.testing.ray_node", f"--address={address}", f"--num-cpus={n}",
                       f"--temp-dir={temp}"]
            procs.append(start_node(cmd, address, sum(cpus[:k + 1]), Path(temp) / "node.log"))
        yield address, procs
    finally:
        for proc in reversed(procs):
            stop_node(proc)
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture
def head():
    """A Ray head on 127.0.0.1:<free port> with 2 CPUs; yields (address, head process)."""
    with cluster(2) as (address, procs):
        yield address, procs[0]


def nas_search(args: list[str], timeout: int = 300, driver: str = CLI) -> subprocess.CompletedProcess:
    """``nas search <args>`` in a new process; ``driver`` is its Python code (``faults.CLI`` registers ``_faulty``)."""
    return subprocess.run([sys.executable, "-c", driver, "search", *args], capture_output=True, text=True,
                          env={**os.environ, **ENV}, timeout=timeout)


def node_processes(node_proc: subprocess.Popen) -> list:
    """A node's processes: its ``ray start --block`` process and every descendant (raylet, agents, workers)."""
    try:
        root = psutil.Process(node_proc.pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def trial_workers(node_proc: subprocess.Popen) -> list:
    """Ray workers of *this* node that are running a trial (descendants of its ``ray start`` process)."""
    found = []
    for child in node_processes(node_proc)[1:]:
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


def test_a_node_stopped_mid_search_has_its_trial_retried_and_the_budget_completed(tmp_path):
    """A head and a second node (1 CPU each) joined on loopback; once a trial runs on the second node, that whole
    node is SIGKILLed (its ``ray start``, raylet, agents and workers: a machine lost). The runner journals the
    trial ``retried`` and runs it again on the head; the search exits 0 with its budget, each trial once."""
    from nas.testing.faults import CLI

    budget, run_dir = 6, tmp_path / "run"
    with cluster(1, 1) as (address, (head_proc, node_proc)):
        stop, killed, in_flight = threading.Event(), [], []

        def kill_node() -> None:
            while not stop.is_set() and not killed:
                if trial_workers(node_proc):
                    time.sleep(0.5)  # let it get into the trial
                    if trial_workers(node_proc):  # still running it
                        _, pending = replay(read_events(run_dir / "trials.jsonl"))
                        procs = node_processes(node_proc)
                        for proc in procs:
                            with contextlib.suppress(psutil.Error):
                                proc.kill()
                        killed.extend(p.pid for p in procs)
                        in_flight.extend(pending)
                time.sleep(0.05)

        thread = threading.Thread(target=kill_node, daemon=True)
        thread.start()
        try:
            done = nas_search(["space=nb201", "space.preset=small", "searcher=random", "evaluator=cost",
                               "evaluator.name=_faulty", "+evaluator.seconds=3", "runner=ray",
                               f"runner.address={address}", "runner.max_retries=2", f"budget.trials={budget}",
                               f"run_dir={run_dir}"], driver=CLI)
        finally:
            stop.set()
            thread.join()
        assert killed, "no trial was seen running on the second node"
        assert node_proc.wait(timeout=30) == -signal.SIGKILL and head_proc.poll() is None
    assert done.returncode == 0, done.stderr[-3000:]
    events = read_events(run_dir / "trials.jsonl")
    retried = [e for e in events if e["event"] == "retried"]
    assert [e["attempt"] for e in retried] == [1], retried  # the one trial on the lost node, retried once
    assert retried[0]["trial"] in in_flight and retried[0]["reason"].startswith(("NodeDiedError", "WorkerCrashedError"))
    finished = [e for e in events if e["event"] == "finished"]
    assert sorted(e["trial"] for e in finished) == list(range(budget))  # none lost, none twice
    assert sorted(e["trial"] for e in events if e["event"] == "started") == list(range(budget))
    assert all(e["state"] == "complete" for e in finished)
    assert len({e["fingerprint"] for e in finished}) == budget
    again = next(e for e in finished if e["trial"] == retried[0]["trial"])
    assert int(again["worker"].rsplit(":", 1)[1]) not in killed  # finished on the head, after the node was lost
