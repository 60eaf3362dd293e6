"""Searchers on the NAS-Bench-201 table: 100 queries, many seeds, the benchmark protocol, Optuna TPE alongside.

Objective: 12-epoch validation accuracy; reported: the 200-epoch test accuracy of the best-by-validation
cell, mean ± standard error over seeds (seeds 0..n-1 for every searcher). Every run goes through the real
runner (journal and all) with dedup on, the `nas search` default, so a cell isomorphic to one already
evaluated is answered from the cache and costs no query.

    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --seeds 30 --jobs 2
    OMP_NUM_THREADS=1 python benchmarks/nb201_searchers.py --quick
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from nas.cli.config import compose
from nas.runner.run import search

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_combined.csv"
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
VALID_COLUMN = {"cifar10": "cifar10valid_val_12ep", "cifar100": "cifar100_val_12ep",
                "imagenet16": "imagenet16_val_12ep"}
# Anchors quoted in issue 6 (100 queries, same protocol), CIFAR-10 / CIFAR-100 / ImageNet16-120.
ANCHORS = {"anchor: Optuna TPE": (94.20, 72.33, 45.85), "anchor: regularized evolution": (93.97, 71.89, 45.57)}


def base_config(searcher: str, dataset: str, queries: int, table: Path) -> dict:
    """The composed config of one (searcher, dataset) cell of the table; runs differ in seed and directory."""
    return compose(["space=nb201", "evaluator=tabular", f"evaluator.table={table}", f"evaluator.dataset={dataset}",
                    "+evaluator.with_cost=false", f"budget.trials={queries}", *SEARCHERS[searcher]])


def run(config: dict, seed: int, run_dir: str) -> tuple[float, float]:
    """(200-epoch test accuracy, 12-epoch validation accuracy) of the best-by-objective cell of one search."""
    summary = search({**config, "seed": seed, "run_dir": run_dir}, progress=False)
    return summary.best.metrics["test_accuracy"], summary.best.metrics["valid_accuracy"]


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
    args = parser.parse_args()
    seeds = 5 if args.quick else args.seeds
    print(f"NB201, {args.queries} queries, {seeds} seeds, dedup on (except -nodedup rows): 200-epoch test accuracy "
          "of the best-by-validation (12 epochs) cell, mean ± standard error")
    print(f"{'searcher':<32}" + "".join(f"{d:>16}" for d in args.datasets) + f"{'s/run':>8}")
    objective: dict[str, list[str]] = {}
    optimum = {d: table_optimum(args.table, d) for d in args.datasets}
    with tempfile.TemporaryDirectory() as root, ProcessPoolExecutor(max(1, args.jobs)) as pool:
        for name in args.searchers:
            cells, start = [], time.perf_counter()
            for dataset in args.datasets:
                config = base_config(name, dataset, args.queries, args.table)
                pairs = list(pool.map(run, [config] * seeds, range(seeds),
                                      [f"{root}/{name}-{dataset}-{s}" for s in range(seeds)]))
                cells.append(cell([test for test, _ in pairs]))
                hits = sum(1 for _, valid in pairs if valid >= optimum[dataset] - 1e-9)
                objective.setdefault(name, []).append(f"{cell([valid for _, valid in pairs])} {hits:>2}/{seeds}")
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


if __name__ == "__main__":
    main()
