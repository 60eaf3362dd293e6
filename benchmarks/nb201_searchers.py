"""Searchers on the NAS-Bench-201 table: 100 queries, many seeds, the benchmark protocol, Optuna TPE alongside.

Objective: 12-epoch validation accuracy; reported: the 200-epoch test accuracy of the best-by-validation
cell, mean ± standard error over seeds (seeds 0..n-1 for every searcher). Every run goes through the real
runner (journal and all) with dedup on, the `nas search` default, so a cell isomorphic to one already
evaluated is answered from the cache and costs no query.

    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --seeds 30 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --quick

``--warm-start zc_<proxy>`` adds a row per searcher that supports it (``<searcher>+zc_<proxy>``): the proxy's
best 10 of a pool of ``--warm-start-pool`` cells are its first proposals. ``--zc-cache`` (the ``--cache`` of
``benchmarks/zero_cost_nb201.py``) supplies the pool's scores, so no proxy is computed here: the pool is drawn
from the cached cells (all of them when the cache holds fewer than the pool size). Without it every run scores
its own pool on CIFAR-10 (``--cifar10``), about a second per cell for data proxies.

    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --searchers predictor_evolution --warm-start zc_synflow \
        --zc-cache runs/zc_nb201.npz --seeds 30 --jobs 2

A ``--warm-start-pool`` larger than the cache ranks every cached cell: with a whole-space cache
(``zero_cost_nb201.py --whole-space``) the warm cells are the proxy's best of all 6,466 classes (issue 18's run):

    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --searchers predictor_evolution --warm-only \
        --warm-start zc_synflow --zc-cache runs/zc_all.npz --warm-start-pool 15625 --warm-start-top 20 \
        --set searcher.init_samples=20 --seeds 30 --jobs 2
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from nas.cli.config import compose
from nas.runner.run import search

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_TABLE = SHARED / "nb201" / "nb201_combined.csv"
DATASETS = ("cifar10", "cifar100", "imagenet16")
SEARCHERS = {
    "random": ["searcher=random"],
    "evolution": ["searcher=evolution"],
    "optuna-tpe": ["searcher=optuna"],
    "predictor_evolution": ["searcher=predictor_evolution"],
    "random-nodedup": ["searcher=random", "dedup=false"],
    "evolution-nodedup": ["searcher=evolution", "dedup=false"],
}
DEFAULT_SEARCHERS = ["random", "evolution", "optuna-tpe", "predictor_evolution"]
WARM = ("random", "evolution", "optuna-tpe", "predictor_evolution")  # rows whose searcher has a warm start
VALID_COLUMN = {"cifar10": "cifar10valid_val_12ep", "cifar100": "cifar100_val_12ep",
                "imagenet16": "imagenet16_val_12ep"}
# Anchors quoted in issue 6 (100 queries, same protocol), CIFAR-10 / CIFAR-100 / ImageNet16-120.
ANCHORS = {"anchor: Optuna TPE": (94.20, 72.33, 45.85), "anchor: regularized evolution": (93.97, 71.89, 45.57)}


def base_config(overrides: list[str], dataset: str, queries: int, table: Path) -> dict:
    """The composed config of one (row, dataset) cell of the table; runs differ in seed and directory."""
    return compose(["space=nb201", "evaluator=tabular", f"evaluator.table={table}", f"evaluator.dataset={dataset}",
                    "+evaluator.with_cost=false", f"budget.trials={queries}", *overrides])


def run(config: dict, seed: int, run_dir: str) -> tuple[float, float, list[float]]:
    """(200-epoch test accuracy, 12-epoch validation accuracy) of the best-by-objective cell of one search, and
    the validation accuracy of every query in order."""
    summary = search({**config, "seed": seed, "run_dir": run_dir}, progress=False)
    queries = [r.metrics.get("valid_accuracy", -math.inf) for r in sorted(summary.results, key=lambda r: r.trial)]
    return summary.best.metrics["test_accuracy"], summary.best.metrics["valid_accuracy"], queries


def scores_csv(cache: Path, path: Path, warm_start: str) -> int:
    """The cells of a ``zero_cost_nb201.py`` cache that have the proxies ``warm_start`` needs, as a
    ``warm_start_scores`` CSV."""
    import csv

    from nas.evaluators.zero_cost.catalog import expand
    from nas.runner.warm_start import proxy_names

    data = np.load(cache, allow_pickle=False)
    proxies = [f"zc_{p}" for p in expand(proxy_names(warm_start))]
    complete = np.all([np.isfinite(data[p]) for p in proxies], axis=0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", *proxies])
        for i in np.flatnonzero(complete):
            writer.writerow([str(data["arch_str"][i]), *(repr(float(data[p][i])) for p in proxies)])
    return int(complete.sum())


def to_optimum(queries: list[float], optimum: float) -> int | None:
    """The number of queries until the first that reaches the table's optimum (None: never)."""
    return next((i + 1 for i, value in enumerate(queries) if value >= optimum - 1e-9), None)


def reach(counts: list[int | None], budget: int) -> str:
    """Median queries to the optimum (a run that never reaches it counts as more than the budget), and the runs
    that reach it within 50 and within 100 queries."""
    ordered = sorted(budget + 1 if c is None else c for c in counts)
    median = statistics.median(ordered)
    text = f">{budget}" if median > budget else f"{median:g}"
    within = [sum(1 for c in counts if c is not None and c <= limit) for limit in (50, 100)]
    return f"{text}, {within[0]}/{len(counts)}, {within[1]}/{len(counts)}"


def table_optimum(table: Path, dataset: str) -> float:
    """The best 12-epoch validation accuracy of all 15,625 cells (what a perfect optimiser reaches)."""
    import csv

    column = VALID_COLUMN[dataset]
    with table.open() as handle:
        return max(float(row[column]) for row in csv.DictReader(handle))


def cell(values: list[float]) -> str:
    error = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.2f} ± {error:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--searchers", nargs="+", default=DEFAULT_SEARCHERS, choices=list(SEARCHERS))
    parser.add_argument("--jobs", type=int, default=1, help="searches run in parallel (processes)")
    parser.add_argument("--quick", action="store_true", help="5 seeds: a smoke run of the whole table")
    parser.add_argument("--warm-start", default=None, help="zc_<proxy>: add warm-started rows")
    parser.add_argument("--warm-start-pool", type=int, default=1000)
    parser.add_argument("--warm-start-top", type=int, default=10)
    parser.add_argument("--warm-only", action="store_true", help="only the warm-started rows")
    parser.add_argument("--zc-cache", type=Path, default=None, help="npz of zero_cost_nb201.py: the pool's scores")
    parser.add_argument("--cifar10", type=Path, default=SHARED / "cifar10")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="overrides added to every row, e.g. searcher.init_samples=40")
    args = parser.parse_args()
    seeds = 5 if args.quick else args.seeds
    rows = {} if args.warm_only else {name: SEARCHERS[name] for name in args.searchers}
    print(f"NB201, {args.queries} queries, {seeds} seeds, dedup on (except -nodedup rows): 200-epoch test accuracy "
          "of the best-by-validation (12 epochs) cell, mean ± standard error" + (f"; {' '.join(args.set)}"
                                                                                 if args.set else ""))
    print(f"{'searcher':<32}" + "".join(f"{d:>16}" for d in args.datasets) + f"{'s/run':>8}")
    objective: dict[str, list[str]] = {}
    reached: dict[str, list[str]] = {}
    optimum = {d: table_optimum(args.table, d) for d in args.datasets}
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(max(1, args.jobs)) as pool:
        if args.warm_start:
            warm = [f"searcher.warm_start={args.warm_start}", f"searcher.warm_start_pool={args.warm_start_pool}",
                    f"searcher.warm_start_top={args.warm_start_top}"]
            if args.zc_cache:
                count = scores_csv(args.zc_cache, Path(root) / "zc_scores.csv", args.warm_start)
                warm.append(f"searcher.warm_start_scores={Path(root) / 'zc_scores.csv'}")
                print(f"warm start: {args.warm_start}, pool of {min(count, args.warm_start_pool)} cells drawn from the "
                      f"{count} of {args.zc_cache}, best {args.warm_start_top} first")
            else:
                warm += ["dataset=cifar10", f"dataset.root={args.cifar10}", "dataset.limit_train=5000"]
            rows.update({f"{name}+{args.warm_start}": SEARCHERS[name] + warm
                         for name in args.searchers if name in WARM})
        for name, overrides in rows.items():
            cells, start = [], time.perf_counter()
            for dataset in args.datasets:
                config = base_config([*overrides, *args.set], dataset, args.queries, args.table)
                triples = list(pool.map(run, [config] * seeds, range(seeds),
                                        [f"{root}/{name}-{dataset}-{s}" for s in range(seeds)]))
                cells.append(cell([test for test, _, _ in triples]))
                hits = sum(1 for _, valid, _ in triples if valid >= optimum[dataset] - 1e-9)
                objective.setdefault(name, []).append(f"{cell([valid for _, valid, _ in triples])} {hits:>2}/{seeds}")
                counts = [to_optimum(queries, optimum[dataset]) for _, _, queries in triples]
                reached.setdefault(name, []).append(reach(counts, args.queries))
            per_run = (time.perf_counter() - start) * max(1, args.jobs) / (seeds * len(args.datasets))
            print(f"{name:<32}" + "".join(f"{c:>16}" for c in cells) + f"{per_run:>8.2f}", flush=True)
    for name, values in ANCHORS.items():
        picked = [values[DATASETS.index(d)] for d in args.datasets]
        print(f"{name:<32}" + "".join(f"{v:>16.2f}" for v in picked))
    print("\nThe objective itself: best 12-epoch validation accuracy reached, mean ± standard error, and the runs "
          "that reached the table's optimum")
    print(f"{'searcher':<32}" + "".join(f"{d:>22}" for d in args.datasets))
    for name, cells in objective.items():
        print(f"{name:<32}" + "".join(f"{c:>22}" for c in cells))
    print(f"{'optimum of the table':<32}" + "".join(f"{optimum[d]:>22.2f}" for d in args.datasets))
    print("\nQueries to reach the table's optimum: median (>budget when most runs never do), runs within 50, "
          "runs within 100")
    print(f"{'searcher':<32}" + "".join(f"{d:>22}" for d in args.datasets))
    for name, cells in reached.items():
        print(f"{name:<32}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
