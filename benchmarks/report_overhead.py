"""What ``report.html`` costs a search: the same search with and without the page, side by side.

The search is NB201 with table lookups (``evaluator=tabular``, no training: the worst case, since the page's
refreshes are compared with trials that cost almost nothing). "Without" replaces the runner's ``LiveReport`` by
one that writes nothing; "with" is the runner as shipped (a page at the start, refreshes once 30 s have passed
or nine times the last write's time, the final page). Runs alternate, each repeated, so a change of machine load
hits both. Then, on the finished run, it times one final page write (no plots drawn: the runner has drawn them)
and one refresh as during the search (plots redrawn from the journal).

    python benchmarks/report_overhead.py --trials 600 --repeats 2 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from nas.cli.config import compose
from nas.runner import run as run_module
from nas.runner.html import write_html_report

TABLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201" / "nb201_combined.csv"


class NoPage:
    """The runner's page hook doing nothing (the search without ``report.html``)."""

    def __init__(self, run_dir: Path) -> None:
        pass

    def start(self) -> None:
        pass

    def __call__(self, result: object, results: object) -> None:
        pass

    def finish(self) -> None:
        pass


def one_search(run_dir: Path, trials: int, table: Path) -> float:
    start = time.perf_counter()
    run_module.search(compose(["evaluator=tabular", f"evaluator.table={table}", f"budget.trials={trials}",
                               "searcher=random", f"run_dir={run_dir}"]), progress=False)
    return time.perf_counter() - start


def timed(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    real = run_module.LiveReport
    with tempfile.TemporaryDirectory() as tmp:
        one_search(Path(tmp) / "warm", 5, args.table)  # imports, table load
        walls: dict[str, list[float]] = {"without": [], "with": []}
        for k in range(args.repeats):
            for name, hook in (("without", NoPage), ("with", real)):
                run_module.LiveReport = hook
                walls[name].append(one_search(Path(tmp) / f"{name}{k}", args.trials, args.table))
        run_module.LiveReport = real
        run_dir = Path(tmp) / f"with{args.repeats - 1}"
        final = timed(lambda: write_html_report(run_dir))
        refresh = timed(lambda: write_html_report(run_dir, live=True, redraw=True))
        size = (run_dir / "report.html").stat().st_size
    without, with_page = statistics.median(walls["without"]), statistics.median(walls["with"])
    figures = {"trials": args.trials, "repeats": args.repeats, "without_page_s": walls["without"],
               "with_page_s": walls["with"], "ratio_with_to_without": with_page / without,
               "final_write_s": final, "refresh_with_plots_s": refresh, "page_bytes": size}
    print(f"search of {args.trials} tabular trials, median of {args.repeats}: without page {without:.2f} s, "
          f"with page {with_page:.2f} s, ratio {with_page / without:.3f}")
    print(f"  runs without: {', '.join(f'{w:.2f}' for w in walls['without'])}; "
          f"with: {', '.join(f'{w:.2f}' for w in walls['with'])}")
    print(f"final page write {final:.3f} s; refresh with plots {refresh:.3f} s; page {size / 1024:.0f} KiB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
