"""Per-trial overhead of the runners on trivial trials: NB201 table lookups (no training).

The same N genotypes (random NB201 cells under a seed) go through (a) our loop with ``runner=ray``,
(b) Ray Tune (a ``Tuner`` whose function trainable does the same lookup through ``evaluate_job``),
(c) bare Ray tasks running ``evaluate_job``, and (d) our loop with the in-process runner. One local Ray
instance on 127.0.0.1 serves (a)-(c); each is warmed up first (workers started, table loaded), so what
is timed is the steady per-trial cost. Overhead per trial = wall time / N - lookup / P, where the
lookup's own cost is ``evaluate_job`` timed in this process and P the trials that can run at once (the
Ray CPUs; 1 in process). The lookup skips the cost model by default (``--with-cost`` adds it, about
15 ms), so a trial is trivial. Goal for (a): under 50 ms per trial.

    python benchmarks/runner_overhead.py --trials 200 --tune-trials 40 --cpus 2

``--sweep`` instead times the launcher of ``nas search -m``: a sweep of 6 searches (``seed=0..5``,
``evaluator=tabular``, or ``cost`` when the table is missing) through Hydra's basic launcher (in this process)
and its joblib launcher (``hydra/launcher=joblib hydra.launcher.n_jobs=2``, worker processes), against the same
6 searches run one after the other through ``nas search``, and the sweep's planned jobs called directly (what
the launcher adds); it prints each wall time and the ratio to the serial one. ``--json <file>`` also writes the figures.

    python benchmarks/runner_overhead.py --sweep --trials 20 --json sweep.json

``--tracking`` instead times experiment tracking on the same trivial trials in process: the loop with
``logger=none``, ``tensorboard`` and ``mlflow`` (default options: files under the run directory), each fed from
the journal as in ``nas search``, interleaved over ``--repeats`` rounds after a warm-up (imports, table). It prints
per logger the median wall time per trial until the last trial was told ("loop"), and including the wait for
the tracker's queue to be written at the end ("total"), and the overhead over ``logger=none`` of each.
``--json PATH`` writes the figures.

    python benchmarks/runner_overhead.py --tracking --trials 200 --repeats 3

``--tune-searcher`` instead times Tune's search algorithms side by side: the same function trainable (the
config's NB201 cell looked up through ``evaluate_job``) over the same param space (one ``tune.choice`` per
decision, ``nas.searchers.ray_tune.tune_space``), proposed by Tune's own ``BasicVariantGenerator`` (random) and
by ``nas.integrations.tune.Searcher("evolution")`` (behind Tune's ``ConcurrencyLimiter``), each warmed up first,
then ``--repeats`` timed runs of each in alternating order; it prints each median overhead per trial and the ratio
of ours to Tune's, and our searcher's own cost per trial outside Tune (``--json PATH`` writes them too).

    python benchmarks/runner_overhead.py --tune-searcher --tune-trials 40 --cpus 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # before Ray is imported: 127.0.0.1 only
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")

from nas.core.genotype import Genotype  # noqa: E402
from nas.runner.executors import Executor, InProcessExecutor, Job, evaluate_job  # noqa: E402
from nas.runner.journal import Journal  # noqa: E402
from nas.runner.loop import LoopState, run_loop, trial_seed  # noqa: E402
from nas.searchers.base import Objective, Searcher  # noqa: E402
from nas.spaces.nb201 import NB201Space  # noqa: E402

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_combined.csv"


class ListSearcher(Searcher):
    """Proposes a fixed list of genotypes in order (the same trials for every runner)."""

    def __init__(self, genotypes: list[Genotype]) -> None:
        self.genotypes = list(genotypes)

    def ask(self) -> Genotype | None:
        return self.genotypes.pop(0) if self.genotypes else None


def lookup_cost(spec: dict, genotypes: list[Genotype]) -> float:
    """Seconds per trial of ``evaluate_job`` itself, in this process (table already loaded)."""
    evaluate_job(spec, Job(0, genotypes[0], 0))
    start = time.perf_counter()
    for k, genotype in enumerate(genotypes):
        evaluate_job(spec, Job(k, genotype, k))
    return (time.perf_counter() - start) / len(genotypes)


def our_loop(space: NB201Space, executor: Executor, genotypes: list[Genotype], workdir: Path) -> float:
    """Wall seconds of ``run_loop`` over ``genotypes`` with ``executor`` (journal fsyncs included)."""
    path = Path(tempfile.mkdtemp(dir=workdir)) / "trials.jsonl"
    searcher = ListSearcher(genotypes)
    searcher.setup(space, 0, Objective())
    with Journal(path) as journal:
        start = time.perf_counter()
        results = run_loop(space, searcher, executor, journal, len(genotypes), 0, Objective(), LoopState())
        wall = time.perf_counter() - start
    assert len(results) == len(genotypes) and all(r.ok for r in results), "a trial failed"
    return wall


def bare_tasks(spec: dict, genotypes: list[Genotype]) -> float:
    """Wall seconds of one Ray task per trial, all submitted at once, gathered with ``ray.get``."""
    import ray

    task = ray.remote(evaluate_job).options(num_cpus=1)
    spec_ref = ray.put(spec)
    start = time.perf_counter()
    outcomes = ray.get([task.remote(spec_ref, Job(k, g, trial_seed(0, k))) for k, g in enumerate(genotypes)])
    wall = time.perf_counter() - start
    assert all(o.state.value == "complete" for o in outcomes)
    return wall


def tune_run(spec: dict, genotypes: list[Genotype], cpus: int, workdir: Path) -> float:
    """Wall seconds of ``Tuner.fit`` over the trials (grid over their indices, actors reused)."""
    from ray import tune

    def trainable(config: dict) -> None:
        outcome = evaluate_job(spec, Job(config["index"], genotypes[config["index"]], 0))
        tune.report({"valid_accuracy": outcome.metrics["valid_accuracy"]})

    tuner = tune.Tuner(trainable, param_space={"index": tune.grid_search(list(range(len(genotypes))))},
                       tune_config=tune.TuneConfig(max_concurrent_trials=cpus, reuse_actors=True),
                       run_config=tune.RunConfig(storage_path=str(workdir / "tune"), name=f"t{time.time_ns()}",
                                                 verbose=0))
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    assert len(grid) == len(genotypes) and not grid.errors
    return wall


def tune_search_alg_run(kind: str, spec: dict, trials: int, cpus: int, workdir: Path) -> float:
    """Wall seconds of ``Tuner.fit`` over ``trials`` samples of the NB201 param space, proposed by ``kind``
    (``basic``: Tune's ``BasicVariantGenerator``; ``nas``: our ``Searcher("evolution")``), ``cpus`` at once."""
    from ray import tune
    from ray.tune.search import BasicVariantGenerator

    from nas.integrations.tune import Searcher as NasSearcher
    from nas.searchers.ray_tune import genotype_of, tune_space

    space = NB201Space()

    def trainable(config: dict) -> None:
        genotype = genotype_of(space, config)
        outcome = evaluate_job(spec, Job(0, genotype, 0))
        tune.report({"valid_accuracy": outcome.metrics["valid_accuracy"]})

    search_alg = BasicVariantGenerator(max_concurrent=cpus, random_state=0) if kind == "basic" else \
        NasSearcher("evolution", seed=0, population_size=20, sample_size=5)
    tuner = tune.Tuner(trainable, param_space=tune_space(space.spec()),
                       tune_config=tune.TuneConfig(search_alg=search_alg, metric="valid_accuracy", mode="max",
                                                   num_samples=trials, reuse_actors=True,
                                                   max_concurrent_trials=None if kind == "basic" else cpus),
                       run_config=tune.RunConfig(storage_path=str(workdir / "tune"), name=f"{kind}{time.time_ns()}",
                                                 verbose=0))
    start = time.perf_counter()
    grid = tuner.fit()
    wall = time.perf_counter() - start
    assert len(grid) == trials and not grid.errors
    return wall


def searcher_alone(space: NB201Space, trials: int) -> float:
    """Seconds per trial of our ``Searcher("evolution")``'s own ``suggest`` + ``on_trial_complete`` (no Tune loop),
    over 10x ``trials`` trials of the same param space."""
    from nas.integrations.tune import Searcher as NasSearcher
    from nas.searchers.ray_tune import tune_space

    searcher = NasSearcher("evolution", space=tune_space(space.spec()), metric="valid_accuracy", mode="max", seed=0,
                           population_size=20, sample_size=5)
    start = time.perf_counter()
    for k in range(10 * trials):
        searcher.suggest(f"t{k}")
        searcher.on_trial_complete(f"t{k}", {"valid_accuracy": float(k % 17)})
    return (time.perf_counter() - start) / (10 * trials)


def tune_searchers(args: argparse.Namespace) -> dict:
    """Per-trial overhead of our Tune ``Searcher`` against Tune's ``BasicVariantGenerator``, side by side."""
    import ray

    space = NB201Space()
    genotypes = [space.sample(seed) for seed in range(args.tune_trials)]
    spec = {"name": "tabular", "table": args.table, "dataset": "cifar10", "with_cost": args.with_cost}
    lookup = lookup_cost(spec, genotypes)
    own = searcher_alone(space, args.tune_trials)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    runs: dict[str, list[float]] = {"basic": [], "nas": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in runs:
                tune_search_alg_run(kind, spec, 4, args.cpus, Path(tmp))  # warm-up: actors up, table loaded
            for repeat in range(args.repeats):  # alternating order, so a burst of load falls on both
                for kind in sorted(runs, reverse=bool(repeat % 2)):
                    runs[kind].append(tune_search_alg_run(kind, spec, args.tune_trials, args.cpus, Path(tmp)))
    finally:
        ray.shutdown()
    walls = {kind: statistics.median(values) for kind, values in runs.items()}
    names = {"basic": "Tune BasicVariantGenerator (random)", "nas": "nas.integrations.tune.Searcher (evolution)"}
    overheads = {kind: wall / args.tune_trials - lookup / args.cpus for kind, wall in walls.items()}
    print(f"{args.tune_trials} Tune trials each, median of {args.repeats} runs, {args.cpus} Ray CPUs, lookup itself "
          f"{lookup * 1e3:.2f} ms/trial, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"our Searcher's own suggest + on_trial_complete, in process: {own * 1e3:.2f} ms/trial")
    print(f"{'search_alg':<46}{'wall s':>9}{'overhead ms/trial':>19}{'vs Tune random':>16}")
    for kind, wall in walls.items():
        print(f"{names[kind]:<46}{wall:>9.2f}{overheads[kind] * 1e3:>19.1f}"
              f"{overheads[kind] / overheads['basic']:>15.2f}x")
    return {"trials": args.tune_trials, "repeats": args.repeats, "cpus": args.cpus, "lookup_ms": lookup * 1e3,
            "searcher_alone_ms": own * 1e3,
            "load": os.getloadavg()[0], **{f"{kind}_walls_s": values for kind, values in runs.items()},
            **{f"{kind}_wall_s": wall for kind, wall in walls.items()},
            **{f"{kind}_overhead_ms": o * 1e3 for kind, o in overheads.items()},
            "ratio_nas_vs_basic": overheads["nas"] / overheads["basic"]}


def sweep_vs_serial(trials: int, table: str) -> dict:
    """Wall seconds of 6 searches as one ``nas search -m`` sweep (basic and joblib launchers) and one by one."""
    import contextlib
    import io

    from nas.cli.main import main as nas_main

    evaluator = ["evaluator=tabular", f"evaluator.table={table}"] if Path(table).is_file() else \
        ["evaluator=cost", "objective=params:min"]
    common = ["searcher=evolution", *evaluator, f"budget.trials={trials}"]
    launchers = {"nas search -m (hydra/launcher=basic)": ["hydra/launcher=basic"],
                 "nas search -m (hydra/launcher=joblib, 2 jobs)": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]}
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        assert nas_main(["search", *common, f"run_dir={tmp}/warm"]) == 0  # imports, table, caches
        start = time.perf_counter()
        for seed in range(6):
            assert nas_main(["search", *common, f"seed={seed}", f"run_dir={tmp}/serial/{seed}"]) == 0
        walls["6 x nas search, one by one"] = time.perf_counter() - start
        from nas.cli.multirun import plan, run_job

        start = time.perf_counter()  # the sweep's planning and checks, then its jobs called here: no launcher
        _, jobs, _ = plan([*common, "seed=range(0,6)", f"sweep_dir={tmp}/direct"])
        assert all(run_job(job, progress=True)["state"] == "complete" for job in jobs)
        walls["planned jobs called directly (no launcher)"] = time.perf_counter() - start
        for k, (name, launcher) in enumerate(launchers.items()):
            start = time.perf_counter()
            assert nas_main(["search", "-m", *common, "seed=range(0,6)", *launcher, f"sweep_dir={tmp}/sweep{k}"]) == 0
            walls[name] = time.perf_counter() - start
    serial = walls["6 x nas search, one by one"]
    load = os.getloadavg()[0]
    print(f"6 searches x {trials} trials ({evaluator[0]}), {os.cpu_count()} cores, load {load:.1f}")
    print(f"{'launch':<46}{'wall s':>9}{'vs one by one':>15}")
    for name, wall in walls.items():
        print(f"{name:<46}{wall:>9.2f}{wall / serial:>14.2f}x")
    return {"benchmark": "sweep", "trials": trials, "evaluator": evaluator[0], "cores": os.cpu_count(),
            "load": load, "wall_s": walls, "ratio_to_one_by_one": {n: w / serial for n, w in walls.items()}}


def tracked_loop(space: NB201Space, spec: dict, genotypes: list[Genotype], workdir: Path,
                 logger: str | None) -> tuple[float, float]:
    """(seconds until the last trial was told, seconds until the tracker had written everything) of ``run_loop``
    in process with ``logger`` (None: no tracking) fed from the journal as ``nas search`` does."""
    from nas.tracking import RunInfo, tracking

    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    searcher = ListSearcher(genotypes)
    searcher.setup(space, 0, Objective())
    executor = InProcessExecutor(spec)
    run = RunInfo(run_dir, {"benchmark": "runner_overhead"}, {"valid_accuracy": "max"})
    start = time.perf_counter()
    with tracking({logger: {}} if logger else None, run) as feed:
        with Journal(run_dir / "trials.jsonl") as journal:
            if feed is not None:
                feed.attach([], journal.subscribe)
            results = run_loop(space, searcher, executor, journal, len(genotypes), 0, Objective(), LoopState())
        loop = time.perf_counter() - start
    total = time.perf_counter() - start
    assert len(results) == len(genotypes) and all(r.ok for r in results), "a trial failed"
    return loop, total


def tracking_overhead(trials: int, repeats: int, table: str, json_path: str | None) -> None:
    """Per-trial cost of ``logger=tensorboard`` and ``logger=mlflow`` over ``logger=none``, side by side."""
    space = NB201Space()
    genotypes = [space.sample(seed) for seed in range(trials)]
    spec = {"name": "tabular", "table": table, "dataset": "cifar10", "with_cost": False}
    loggers = (None, "tensorboard", "mlflow")
    walls: dict[str | None, list[tuple[float, float]]] = {logger: [] for logger in loggers}
    with tempfile.TemporaryDirectory() as tmp:
        for logger in loggers:  # warm-up: imports, table, first files
            tracked_loop(space, spec, genotypes[:10], Path(tmp), logger)
        for _ in range(repeats):
            for logger in loggers:
                walls[logger].append(tracked_loop(space, spec, genotypes, Path(tmp), logger))
    per_trial = {logger: (statistics.median(loop for loop, _ in runs) / trials,
                          statistics.median(total for _, total in runs) / trials) for logger, runs in walls.items()}
    none_loop, none_total = per_trial[None]
    print(f"{trials} NB201 lookups in process, median of {repeats} interleaved rounds, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'logger':<14}{'loop ms/trial':>15}{'total ms/trial':>16}{'overhead loop':>15}{'overhead total':>16}"
          f"{'total vs none':>15}")
    figures = {}
    for logger, (loop, total) in per_trial.items():
        name = logger or "none"
        figures[name] = {"loop_ms_per_trial": loop * 1e3, "total_ms_per_trial": total * 1e3,
                         "overhead_loop_ms_per_trial": (loop - none_loop) * 1e3,
                         "overhead_total_ms_per_trial": (total - none_total) * 1e3}
        print(f"{name:<14}{loop * 1e3:>15.2f}{total * 1e3:>16.2f}{(loop - none_loop) * 1e3:>15.2f}"
              f"{(total - none_total) * 1e3:>16.2f}{total / none_total:>14.2f}x")
    for name in ("tensorboard", "mlflow"):
        overhead = figures[name]["overhead_total_ms_per_trial"]
        print(f"logger={name} overhead {overhead:.1f} ms/trial: goal <= 5 ms {'met' if overhead <= 5 else 'NOT met'}",
              file=sys.stderr)
    if json_path:
        Path(json_path).write_text(json.dumps({"trials": trials, "repeats": repeats, "load": os.getloadavg()[0],
                                               "loggers": figures}, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials for our runners and bare tasks")
    parser.add_argument("--tune-trials", type=int, default=40, help="trials for Ray Tune (about 1 s each)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--max-in-flight", type=int, default=None, help="runner.max_in_flight of runner=ray")
    parser.add_argument("--with-cost", action="store_true", help="lookups also count params and MACs")
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--sweep", action="store_true", help="time `nas search -m` against 6 searches one by one")
    parser.add_argument("--tracking", action="store_true", help="time logger=none|tensorboard|mlflow side by side")
    parser.add_argument("--tune-searcher", action="store_true",
                        help="our Tune Searcher against Tune's BasicVariantGenerator on the same trainable")
    parser.add_argument("--repeats", type=int, default=3,
                        help="--tracking: interleaved rounds; --tune-searcher: timed runs of each (median)")
    parser.add_argument("--json", default=None, help="--tracking, --sweep, --tune-searcher: write the figures here")
    args = parser.parse_args()
    if args.json and not (args.tracking or args.sweep or args.tune_searcher):
        parser.error("--json is written by --tracking, --sweep and --tune-searcher")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.tracking:
        tracking_overhead(args.trials, args.repeats, args.table, args.json)
        return
    if args.sweep:
        figures = sweep_vs_serial(args.trials, args.table)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        return
    if args.tune_searcher:
        figures = tune_searchers(args)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
        return
    import ray

    from nas.runner.ray_executor import RayExecutor

    space = NB201Space()
    genotypes = [space.sample(seed) for seed in range(args.trials)]
    spec = {"name": "tabular", "table": args.table, "dataset": "cifar10", "with_cost": args.with_cost}
    lookup = lookup_cost(spec, genotypes)
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    walls: dict[str, tuple[float, int, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            executor = RayExecutor(spec, max_in_flight=args.max_in_flight)
            our_loop(space, executor, genotypes[:20], workdir)  # warm-up: workers up, table loaded
            walls["(a) nas runner=ray"] = (our_loop(space, executor, genotypes, workdir), args.trials, args.cpus)
            executor.shutdown()
            bare_tasks(spec, genotypes[:20])
            walls["(c) bare Ray tasks"] = (bare_tasks(spec, genotypes), args.trials, args.cpus)
            tune_run(spec, genotypes[:4], args.cpus, workdir)
            walls["(b) Ray Tune"] = (tune_run(spec, genotypes[:args.tune_trials], args.cpus, workdir),
                                     args.tune_trials, args.cpus)
        finally:
            ray.shutdown()
        walls["(d) nas runner=local (in process)"] = (
            our_loop(space, InProcessExecutor(spec), genotypes, workdir), args.trials, 1)
    print(f"{args.trials} NB201 lookups ({args.tune_trials} for Tune), {args.cpus} Ray CPUs, "
          f"lookup itself {lookup * 1e3:.2f} ms/trial, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    overheads = {name: wall / n - lookup / slots for name, (wall, n, slots) in walls.items()}
    ours = overheads["(a) nas runner=ray"]
    print(f"{'runner':<36}{'trials':>7}{'wall s':>9}{'overhead ms/trial':>19}{'vs runner=ray':>15}")
    for name in sorted(walls):
        wall, n, _ = walls[name]
        print(f"{name:<36}{n:>7}{wall:>9.2f}{overheads[name] * 1e3:>19.2f}{overheads[name] / ours:>14.2f}x")
    print(f"runner=ray overhead {ours * 1e3:.1f} ms/trial: goal < 50 ms {'met' if ours < 0.05 else 'NOT met'}",
          file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps({
            "benchmark": "runner", "trials": args.trials, "tune_trials": args.tune_trials, "cpus": args.cpus,
            "lookup_ms": lookup * 1e3, "cores": os.cpu_count(), "load": os.getloadavg()[0],
            "runners": {name: {"trials": n, "wall_s": wall, "overhead_ms": overheads[name] * 1e3,
                               "ratio_to_runner_ray": overheads[name] / ours}
                        for name, (wall, n, _) in walls.items()}}, indent=2) + "\n")


if __name__ == "__main__":
    main()
