"""Soak test of kill -9 and resume: a real search killed at random times, resumed each time, then checked.

A search (``nas search``, NB201 small cells trained on digits for one short epoch, ``runner.workers=2``; with
``--ray`` ``runner=ray runner.num_cpus=2``) is started as a subprocess in its own process group and SIGKILLed
(the group and every descendant: driver, pool workers, a local Ray cluster) at ``--kills`` random points in
time, each drawn uniformly from ``--window`` seconds after that process started (so some kills land in the
start-up, some mid-trial, some mid-write). After each kill the run is resumed with ``nas search resume=<run_dir>``
(a fresh start with the same ``run_dir`` while the first process had not yet written its ``config.json``). Once,
after the kill at ``--tear`` (default: the last), the journal's last line is torn on purpose (a fragment of an
event without its newline). The budget while killing is larger than any run reaches (trial throughput varies
with the machine's load, and a run that ended early would take no more kills); after the last kill the search
is resumed with ``budget.trials`` = its finished trials + the trials cut off by the kill + 20, and runs to it.
Figures:

- finished trials lost: trials journalled ``finished`` right after some kill and absent from the final journal;
- duplicate trials: trial ids journalled ``finished`` more than once, and genotypes (canonical form, the run
  deduplicates) finished under two trial ids;
- budget exact: distinct finished trials == the budget, and no trial started but unfinished;
- journal readable after the torn line: the resume after the tear exited 0, and every event after the fragment
  is readable (only the fragment's line is skipped; each finished trial has its ``started`` event).

Goal: 0 lost, 0 duplicates, budget exact, for every kill. ``--json PATH`` writes the figures.

    python benchmarks/soak_resume.py --kills 10 --json /tmp/soak.json
    python benchmarks/soak_resume.py --kills 10 --ray --json /tmp/soak_ray.json
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1",
       "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
SEARCH = ["space=nb201", "space.preset=small", "searcher=evolution", "searcher.population_size=6",
          "evaluator.epochs=1", "evaluator.max_steps_per_epoch=6", "evaluator.batch_size=64"]
TORN = '{"event": "finished", "trial": 1000000, "state": "compl'


def events(run_dir: Path) -> list[dict[str, Any]]:
    """The journal's readable events (the library's reader: a torn line is skipped)."""
    from nas.runner.journal import read_events

    return read_events(run_dir / "trials.jsonl")


def finished_ids(run_dir: Path) -> set[int]:
    return {e["trial"] for e in events(run_dir) if e["event"] == "finished"}


def kill_all(proc: subprocess.Popen) -> int:
    """SIGKILL the process group and every descendant of ``proc`` (ours only); returns how many were killed."""
    try:
        family = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for member in family:  # a Ray raylet or GCS may have left the group: kill it by pid
        try:
            member.kill()
        except psutil.Error:
            pass
    proc.wait()
    psutil.wait_procs(family, timeout=10)
    return len(family)


def command(run_dir: Path, budget: int, ray: bool, final: int | None = None) -> list[str]:
    """A fresh search while the run directory has no config yet, else its resume (``final``: with that budget)."""
    if (run_dir / "config.json").exists():
        extra = [f"budget.trials={final}"] if final else []
        return [sys.executable, "-m", "nas.cli.main", "search", f"resume={run_dir}", *extra]
    runner = ["runner=ray", "runner.num_cpus=2"] if ray else ["runner.workers=2"]
    return [sys.executable, "-m", "nas.cli.main", "search", *SEARCH, *runner, f"budget.trials={budget}",
            "seed=7", f"run_dir={run_dir}"]


def soak(run_dir: Path, budget: int, kills: int, window: tuple[float, float], tear: int, ray: bool,
         seed: int, log: Path) -> dict[str, Any]:
    """Kill and resume ``kills`` times, finish the run with a budget of what it has plus 20, and measure it."""
    rng = random.Random(seed)
    env = {**os.environ, **ENV}
    snapshots: list[set[int]] = []
    rounds: list[dict[str, Any]] = []
    torn_resume_rc = None
    with log.open("a") as out:
        for k in range(kills):
            delay = rng.uniform(*window)
            cmd = command(run_dir, budget, ray)
            before = len(events(run_dir)) if (run_dir / "trials.jsonl").exists() else 0
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            deadline = time.time() + delay
            while time.time() < deadline and proc.poll() is None:
                time.sleep(0.02)
            ended = proc.poll() is not None  # the run reached its budget before this kill
            killed = 0 if ended else kill_all(proc)
            journal = events(run_dir) if (run_dir / "trials.jsonl").exists() else []
            done = {e["trial"] for e in journal if e["event"] == "finished"}
            in_flight = {e["trial"] for e in journal if e["event"] == "started"} - done
            mid_run = any(e["event"] == "started" for e in journal[before:])  # this process had started trials
            snapshots.append(done)
            torn = k == tear and (run_dir / "trials.jsonl").exists()
            if torn:
                with (run_dir / "trials.jsonl").open("a") as handle:
                    handle.write(TORN)
            rounds.append({"kill": k + 1, "after_s": round(delay, 2), "resumed": "resume=" in cmd[-1],
                           "ended_before_kill": ended, "processes_killed": killed, "finished": len(done),
                           "unfinished": len(in_flight), "mid_run": mid_run, "torn_after": torn})
            print(f"kill {k + 1:2d} after {delay:5.1f} s: {len(done):3d} finished, {len(in_flight)} unfinished, "
                  f"{'mid-run' if mid_run else 'in start-up'}, {killed} processes killed"
                  + (" (ended first)" if ended else "") + (" -- last line torn" if torn else ""), flush=True)
            if ended:
                break
        unfinished = {e["trial"] for e in events(run_dir) if e["event"] == "started"} - finished_ids(run_dir)
        budget = len(finished_ids(run_dir)) + len(unfinished) + 20  # the kills' trials, the cut-off ones, 20 more
        start = time.time()
        final = subprocess.run(command(run_dir, budget, ray, final=budget), stdout=out, stderr=subprocess.STDOUT,
                               env=env, timeout=1800)
    if tear == len(rounds) - 1:  # the final resume is the one that continued after the fragment
        torn_resume_rc = final.returncode
    final_events = events(run_dir)
    finished = [e for e in final_events if e["event"] == "finished"]
    counts = collections.Counter(e["trial"] for e in finished)
    started = {e["trial"] for e in final_events if e["event"] == "started"}
    ids = set(counts)
    lost = sorted(set().union(*snapshots) - ids)
    from nas.core.genotype import Genotype
    from nas.core.space import SPACES

    space = SPACES.get("nb201")(preset="small")
    canonical = collections.Counter(space.canonical(Genotype.from_json(e["genotype"])) for e in finished)
    lines = (run_dir / "trials.jsonl").read_text().splitlines()
    return {
        "mode": "ray" if ray else "local, runner.workers=2", "budget": budget,
        "kills": sum(not r["ended_before_kill"] for r in rounds),
        "final_resume_rc": final.returncode, "final_resume_s": round(time.time() - start, 1),
        "finished_trials_lost": len(lost), "lost_ids": lost,
        "kills_mid_run": sum(r["mid_run"] for r in rounds),
        "duplicate_trial_ids": sum(c - 1 for c in counts.values() if c > 1),
        "duplicate_genotypes": sum(c - 1 for c in canonical.values() if c > 1),
        "budget_exact": len(finished) == budget and len(ids) == budget and started <= ids,
        "distinct_finished": len(ids), "retried_events": sum(e["event"] == "retried" for e in final_events),
        "torn_line": {"torn_after_kill": tear + 1 if tear < len(rounds) else None,
                      "resume_rc_after_tear": torn_resume_rc,
                      "unreadable_lines": len(lines) - len(final_events),
                      "finished_without_started": sorted(ids - started)},
        "rounds": rounds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--budget", type=int, default=100_000,
                        help="trials while killing (default: more than any run reaches, so every kill lands in a run)")
    parser.add_argument("--window", type=float, nargs=2, default=None,
                        help="seconds after start a kill is drawn from (default: 30 60; 40 80 with --ray)")
    parser.add_argument("--tear", type=int, default=None, help="tear the last line after this kill (1-based; "
                                                               "default: the last, so the final resume reads it)")
    parser.add_argument("--ray", action="store_true", help="runner=ray (a local cluster of 2 CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="where the run directory and log go (default: temp)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    window = tuple(args.window or ((40.0, 80.0) if args.ray else (30.0, 60.0)))
    budget = args.budget
    tear = (args.tear or args.kills) - 1
    out = args.out or Path(tempfile.mkdtemp(prefix="soak-"))
    out.mkdir(parents=True, exist_ok=True)
    run_dir, log = out / "run", out / "search.log"
    print(f"soak: {'ray' if args.ray else 'local, 2 workers'}, budget {budget} while killing, {args.kills} kills in "
          f"{window[0]:g}-{window[1]:g} s; run {run_dir}, log {log}", flush=True)
    figures = soak(run_dir, budget, args.kills, window, tear, args.ray, args.seed, log)
    figures["command"] = " ".join(["python benchmarks/soak_resume.py", *sys.argv[1:]])
    ok = (figures["finished_trials_lost"] == 0 and figures["duplicate_trial_ids"] == 0
          and figures["duplicate_genotypes"] == 0 and figures["budget_exact"] and figures["final_resume_rc"] == 0)
    torn = figures["torn_line"]
    print(f"finished trials lost: {figures['finished_trials_lost']}; duplicate trials: "
          f"{figures['duplicate_trial_ids']} ids, {figures['duplicate_genotypes']} genotypes; budget exact: "
          f"{figures['budget_exact']} ({figures['distinct_finished']}/{figures['budget']}); kills: {figures['kills']}; "
          f"mid-run: {figures['kills_mid_run']}; worker retries: {figures['retried_events']}")
    print(f"torn last line after kill {torn['torn_after_kill']}: resume rc {torn['resume_rc_after_tear']}, "
          f"{torn['unreadable_lines']} unreadable line(s), finished without started: "
          f"{torn['finished_without_started'] or 'none'}")
    print("PASS" if ok else "FAIL")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
