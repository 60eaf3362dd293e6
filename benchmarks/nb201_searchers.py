"""Searchers on the NAS-Bench-201 table: 100 queries, many seeds, the benchmark protocol.

Objective: 12-epoch validation accuracy; reported: the 200-epoch test accuracy of the best-by-
validation cell (mean ± std over seeds). Every run goes through the real runner (journal and all).

    python benchmarks/nb201_searchers.py --table ../shared/data/nb201/nb201_combined.csv --seeds 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from nas.cli.config import compose
from nas.runner.run import search

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_combined.csv"
SEARCHERS = {
    "random": ["searcher=random", "dedup=false"],
    "evolution": ["searcher=evolution", "dedup=false"],
    "random+dedup": ["searcher=random", "dedup=true"],
    "evolution+dedup": ["searcher=evolution", "dedup=true"],  # the default of `nas search`
    "optuna-tpe": ["searcher=optuna", "dedup=false"],
    "optuna-tpe+dedup": ["searcher=optuna", "dedup=true"],
}
PUBLISHED = {"random": {"cifar10": 93.7, "cifar100": 71.2}, "evolution": {"cifar10": 93.9, "cifar100": 71.8}}


def run(searcher: str, extra: list[str], dataset: str, seed: int, queries: int, table: Path, root: str) -> float:
    config = compose(["space=nb201", "evaluator=tabular", f"evaluator.table={table}",
                      f"evaluator.dataset={dataset}", f"budget.trials={queries}", f"seed={seed}",
                      f"run_dir={root}/{searcher}-{dataset}-{seed}", *extra])
    summary = search(config, progress=False)
    return summary.best.metrics["test_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--datasets", nargs="+", default=["cifar10", "cifar100", "imagenet16"])
    parser.add_argument("--searchers", nargs="+", default=list(SEARCHERS))
    args = parser.parse_args()
    print(f"NB201, {args.queries} queries, {args.seeds} seeds: test accuracy (200 ep) of the best-by-validation cell")
    print(f"{'searcher':<18}" + "".join(f"{d:>20}" for d in args.datasets) + f"{'s/run':>8}")
    with tempfile.TemporaryDirectory() as root:
        for name in args.searchers:
            cells, start = [], time.perf_counter()
            for dataset in args.datasets:
                accs = [run(name, SEARCHERS[name], dataset, s, args.queries, args.table, root)
                        for s in range(args.seeds)]
                cells.append(f"{statistics.mean(accs):.2f} ± {statistics.stdev(accs):.2f}")
            per_run = (time.perf_counter() - start) / (args.seeds * len(args.datasets))
            print(f"{name:<18}" + "".join(f"{c:>20}" for c in cells) + f"{per_run:>8.2f}")
    print("published reference (REA / random, CIFAR-10 / CIFAR-100):",
          ", ".join(f"{k} {v['cifar10']} / {v['cifar100']}" for k, v in PUBLISHED.items()))


if __name__ == "__main__":
    main()
