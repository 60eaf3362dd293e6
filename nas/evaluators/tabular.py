"""The ``tabular`` evaluator: look NAS-Bench-201 cells up in the benchmark's table.

The objective is ``valid_accuracy`` (the 12-epoch validation accuracy); ``test_accuracy`` is the
200-epoch test accuracy, reported as the benchmarks do (the test value never guides the search).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

from nas.core.cost import arch_cost
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.evaluators.base import EVALUATORS, EvalContext
from nas.spaces.resolve import space_of

COLUMNS = {
    "cifar10": ("cifar10valid_val_12ep", "cifar10_test_200ep"),
    "cifar100": ("cifar100_val_12ep", "cifar100_test_200ep"),
    "imagenet16": ("imagenet16_val_12ep", "imagenet16_test_200ep"),
}

NB201_CELLS = 5**6  # five operations on each of the cell's six edges


@lru_cache(maxsize=4)
def load_table(path: str, dataset: str) -> dict[str, tuple[float, float]]:
    """NB201 string -> (valid, test) accuracy for ``dataset``, from ``nb201_combined.csv``."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UserError(f"table file not found: {file} (set evaluator.table=<path to nb201_combined.csv>)")
    valid_col, test_col = COLUMNS[dataset]
    rows: dict[str, tuple[float, float]] = {}
    try:
        with file.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"arch_str", valid_col, test_col} - set(reader.fieldnames or ())
            if missing:
                raise UserError(f"{file} is not an NB201 table: it lacks columns {', '.join(sorted(missing))}")
            for row in reader:
                try:
                    rows[row["arch_str"]] = (float(row[valid_col]), float(row[test_col]))
                except (TypeError, ValueError):
                    raise UserError(f"{file} line {reader.line_num}: {valid_col}/{test_col} are not numbers "
                                    f"({row[valid_col]!r}, {row[test_col]!r})") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{file} is not an NB201 table: not a CSV text file ({exc})") from None
    if len(rows) != NB201_CELLS:
        raise UserError(f"{file} is not a whole NB201 table: {len(rows)} cells, expected {NB201_CELLS} "
                        "(one row per cell, nb201_combined.csv)")
    return rows


@EVALUATORS.register("tabular")
class TabularEvaluator:
    """Benchmark lookup for ``nb201`` genotypes: no training, exact published numbers."""

    def __init__(self, table: str | None = None, dataset: str = "cifar10", with_cost: bool = True,
                 **_: object) -> None:
        if not table:
            raise UserError("the tabular evaluator needs evaluator.table=<path to nb201_combined.csv>")
        if dataset not in COLUMNS:
            raise UserError(f"unknown evaluator.dataset {dataset!r}; valid choices: {', '.join(COLUMNS)}")
        self.rows = load_table(str(table), dataset)
        self.with_cost = with_cost

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        if genotype.space != "nb201":
            raise UserError(f"the tabular evaluator reads NB201 cells, not {genotype.space!r} genotypes")
        space = space_of(genotype)
        valid, test = self.rows[space.describe(genotype)]
        metrics = {"valid_accuracy": valid, "test_accuracy": test}
        if self.with_cost:
            metrics.update(arch_cost(space.decode(genotype)))
        return metrics
