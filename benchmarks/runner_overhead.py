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
``evaluator=tabular``, or ``cost`` when the table is missing) run in this process (``sweep.jobs=1``) and in
2 worker processes (``sweep.jobs=2``), against the same 6 searches run one after the other through
``nas search``; it prints each wall time and the ratio to the serial one.

    python benchmarks/runner_overhead.py --sweep --trials 20

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


def sweep_vs_serial(trials: int, table: str) -> None:
    """Wall seconds of 6 searches as one ``nas search -m`` sweep (1 and 2 jobs at a time) and one by one."""
    import contextlib
    import io

    from nas.cli.main import main as nas_main

    evaluator = ["evaluator=tabular", f"evaluator.table={table}"] if Path(table).is_file() else \
        ["evaluator=cost", "objective=params:min"]
    common = ["searcher=evolution", *evaluator, f"budget.trials={trials}"]
    walls: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        assert nas_main(["search", *common, f"run_dir={tmp}/warm"]) == 0  # imports, table, caches
        start = time.perf_counter()
        for seed in range(6):
            assert nas_main(["search", *common, f"seed={seed}", f"run_dir={tmp}/serial/{seed}"]) == 0
        walls["6 x nas search, one by one"] = time.perf_counter() - start
        for jobs in (1, 2):
            start = time.perf_counter()
            assert nas_main(["search", "-m", *common, "seed=range(0,6)", f"sweep.jobs={jobs}",
                             f"sweep_dir={tmp}/sweep{jobs}"]) == 0
            walls[f"nas search -m, sweep.jobs={jobs}"] = time.perf_counter() - start
    serial = walls["6 x nas search, one by one"]
    print(f"6 searches x {trials} trials ({evaluator[0]}), {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"{'launch':<34}{'wall s':>9}{'vs one by one':>15}")
    for name, wall in walls.items():
        print(f"{name:<34}{wall:>9.2f}{wall / serial:>14.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200, help="trials for our runners and bare tasks")
    parser.add_argument("--tune-trials", type=int, default=40, help="trials for Ray Tune (about 1 s each)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray instance")
    parser.add_argument("--max-in-flight", type=int, default=None, help="runner.max_in_flight of runner=ray")
    parser.add_argument("--with-cost", action="store_true", help="lookups also count params and MACs")
    parser.add_argument("--table", default=str(TABLE))
    parser.add_argument("--sweep", action="store_true", help="time `nas search -m` against 6 searches one by one")
    parser.add_argument("--tune-searcher", action="store_true",
                        help="our Tune Searcher against Tune's BasicVariantGenerator on the same trainable")
    parser.add_argument("--repeats", type=int, default=3, help="with --tune-searcher: timed runs of each (median)")
    parser.add_argument("--json", default=None, help="with --tune-searcher: write the figures to this JSON file")
    args = parser.parse_args()
    if args.json and not args.tune_searcher:
        parser.error("--json is written by --tune-searcher only")
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.sweep:
        sweep_vs_serial(args.trials, args.table)
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


if __name__ == "__main__":
    main()
