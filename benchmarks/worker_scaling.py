"""Throughput of real training trials with 1 and 2 workers: local process pool and ``runner=ray``.

The same search (nb201 small preset, random searcher under one seed, the ``train`` evaluator on digits,
one torch thread per trial) runs with ``runner.workers=1`` (in process) and ``2`` (process pool), then
with ``runner=ray`` on a local Ray instance of 1 and 2 CPUs. Throughput is the steady rate from the
journal: with W workers, the first W trials carry each worker's warm-up (imports, data loading), so
rate = (N - W) / (last finish - W-th finish); starting the pool or Ray is not counted either. The whole
wall time is printed beside it. With ``--rounds R`` the four setups run in turn R times (so a change in the
machine's load affects them alike) and the median is kept. Goal: 2 workers / 1 worker >= 1.8 on a 2-core
machine.

    python benchmarks/worker_scaling.py --trials 10 --epochs 2 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported: 127.0.0.1 only
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from nas.cli.config import compose  # noqa: E402
from nas.runner.run import search  # noqa: E402

SETUPS = {  # name: (trials at once, overrides)
    "local, 1 worker (in process)": (1, ["runner=local", "runner.workers=1"]),
    "local, 2 workers (process pool)": (2, ["runner=local", "runner.workers=2"]),
    "ray, 1 CPU": (1, ["runner=ray", "runner.num_cpus=1"]),
    "ray, 2 CPUs": (2, ["runner=ray", "runner.num_cpus=2"]),
}


def run(overrides: list[str], workers: int, workdir: Path) -> tuple[float, float, int]:
    """(steady trials per minute, whole wall seconds, trials) of one search with ``workers`` in parallel."""
    run_dir = Path(tempfile.mkdtemp(dir=workdir)) / "run"
    start = time.perf_counter()
    summary = search(compose(overrides + [f"run_dir={run_dir}"]), progress=False)
    wall = time.perf_counter() - start
    results = summary.results
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    finished = sorted(r.finished for r in results)
    return 60.0 * (len(finished) - workers) / (finished[-1] - finished[workers - 1]), wall, len(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=None, help="evaluator.max_steps_per_epoch (default: all)")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    common = ["space=nb201", "space.preset=small", "searcher=random", "evaluator=train", "dataset=digits",
              f"evaluator.epochs={args.epochs}", f"evaluator.max_steps_per_epoch={args.steps or 'null'}",
              "evaluator.threads=1", f"budget.trials={args.trials}", "seed=0"]
    rounds: dict[str, list[tuple[float, float, int]]] = {name: [] for name in SETUPS}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.rounds):
            for name, (workers, overrides) in SETUPS.items():
                rounds[name].append(run(common + overrides, workers, Path(tmp)))
                loads.append(os.getloadavg()[0])
                print(f"  round {k + 1} {name}: {rounds[name][-1][0]:.2f} trials/min", flush=True)
    figures = {name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
               for name, runs in rounds.items()}
    print(f"{args.trials} trials of nb201 (small preset) x {args.epochs} epochs on digits, {args.rounds} round(s), "
          f"medians; {os.cpu_count()} cores, load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'setup':<34}{'trials/min':>11}{'wall s':>9}")
    for name, (rate, wall) in figures.items():
        print(f"{name:<34}{rate:>11.2f}{wall:>9.1f}")
    for kind, one, two in (("local", "local, 1 worker (in process)", "local, 2 workers (process pool)"),
                           ("ray", "ray, 1 CPU", "ray, 2 CPUs")):
        ratio = figures[two][0] / figures[one][0]
        print(f"{kind}: 2/1 throughput ratio {ratio:.2f} (goal >= 1.8: {'met' if ratio >= 1.8 else 'NOT met'})")


if __name__ == "__main__":
    main()
