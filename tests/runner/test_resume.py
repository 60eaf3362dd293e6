"""Kill -9 a running search, resume it: exactly the budget of finished trials, no id twice."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nas.runner.journal import read_events, replay

ARGS = ["space=nb201", "space.preset=small", "evaluator.epochs=1", "searcher=evolution",
        "searcher.population_size=4", "budget.trials=8", "seed=3"]


def finished_ids(run_dir: Path) -> list[int]:
    return [e["trial"] for e in read_events(run_dir / "trials.jsonl") if e["event"] == "finished"]


def test_kill_and_resume(tmp_path):
    run_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "nas.cli.main", "search", *ARGS, f"run_dir={run_dir}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(finished_ids(run_dir)) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = finished_ids(run_dir)
    assert 3 <= len(before) < 8, "the search should have been killed mid-way"
    started_before = [e["trial"] for e in read_events(run_dir / "trials.jsonl") if e["event"] == "started"]

    out = subprocess.run([sys.executable, "-m", "nas.cli.main", "search", f"resume={run_dir}"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == f"run: {run_dir}"
    after = finished_ids(run_dir)
    assert len(after) == 8 and len(set(after)) == 8
    assert after[:len(before)] == before  # nothing that finished was evaluated again
    results, pending = replay(read_events(run_dir / "trials.jsonl"))
    assert not pending and sorted(r.trial for r in results) == list(range(8))
    assert set(started_before) <= set(after)  # a trial cut off by the kill was re-run under its own id
    best = json.loads((run_dir / "best.json").read_text())
    assert best["metrics"]["valid_accuracy"] == max(r.metrics["valid_accuracy"] for r in results if r.ok)
