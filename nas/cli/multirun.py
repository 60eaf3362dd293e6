"""``nas search -m``: a sweep over ``key=a,b`` overrides, each combination its own search.

The overrides are parsed and expanded with Hydra's override grammar (``OverridesParser``, the cartesian
product of ``BasicSweeper.split_arguments``), so ``seed=0,1,2`` and ``seed=range(0,3)`` mean what they mean
to Hydra. Every job's config is composed and checked (space, evaluator, searcher built) before anything is
written, so a bad value in a later job is a one-line error before any job ran. Then Hydra's launcher plugin
runs the jobs (``nas.cli.hydra_app``): ``hydra/launcher=basic`` (the default, one after the other in this
process) or ``hydra/launcher=joblib`` (``hydra.launcher.n_jobs=N`` worker processes; ``sweep.jobs=N`` is short
for both). ``sweep_dir/summary.md`` and ``summary.csv`` list the jobs.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import UserError

SWEEP_KEYS = ("sweep_dir", "sweep.jobs")
COLUMNS = ("job", "overrides", "best objective", "trials", "state", "run dir")


def split_sweep_options(args: Sequence[str]) -> tuple[list[str], dict[str, str], list[str]]:
    """The overrides for ``compose``, the sweep's own options (``sweep_dir=``, ``sweep.jobs=``) and Hydra's
    (``hydra/launcher=joblib``, ``hydra.launcher.n_jobs=2``, ``hydra.sweep.dir=``)."""
    from nas.cli.hydra_app import is_hydra_override

    overrides, options, hydra = [], {}, []
    for item in args:
        key, sep, value = item.partition("=")
        if sep and key.strip() in SWEEP_KEYS:
            options[key.strip()] = value.strip()
        elif is_hydra_override(item):
            hydra.append(item)
        else:
            overrides.append(item)
    return overrides, options, hydra


def launcher_overrides(options: dict[str, str], hydra: list[str]) -> list[str]:
    """Hydra's overrides of the sweep: ``sweep.jobs=N`` (N > 1) is ``hydra/launcher=joblib
    hydra.launcher.n_jobs=N``; ``sweep_dir=`` is ``hydra.sweep.dir=``. Checked: one way to set each."""
    from nas.cli.hydra_app import check_hydra_overrides
    from nas.cli.main import integer

    check_hydra_overrides(hydra)
    keys = {item.partition("=")[0].strip().lstrip("+~") for item in hydra}
    if "sweep.jobs" in options and keys & {"hydra/launcher", "hydra.launcher.n_jobs"}:
        raise UserError("sweep.jobs= and hydra/launcher= (or hydra.launcher.n_jobs=) both choose how jobs run; "
                        "give one")
    if "sweep_dir" in options and "hydra.sweep.dir" in keys:
        raise UserError("sweep_dir= and hydra.sweep.dir= both set the sweep directory; give one")
    jobs = integer("sweep.jobs", options.get("sweep.jobs", "1"), minimum=1)
    return (["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"] if jobs > 1 else []) + hydra


def expand(overrides: Sequence[str]) -> list[list[str]]:
    """Every job's overrides: the cartesian product of the sweeps (``a=1,2``, ``range(..)``, ``choice(..)``)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    from nas.cli.config import _one_line

    for item in overrides:
        if "=" not in item or not item.partition("=")[0].strip():
            raise UserError(f"malformed override {item!r}: expected key=value or key=a,b,c")
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except HydraException as exc:
        raise UserError(_one_line(exc).replace("bad configuration: ", "bad sweep: ")) from None
    if not jobs:
        raise UserError("the sweep expands to no jobs: " + " ".join(overrides))
    return jobs


def varying(jobs: list[list[str]]) -> list[list[str]]:
    """Each job's overrides whose value differs between jobs (what names its run directory)."""
    columns = list(zip(*jobs)) if jobs else []
    keep = [k for k, column in enumerate(columns) if len(set(column)) > 1]
    return [[job[k] for k in keep] for job in jobs]


def job_dir_name(index: int, overrides: list[str]) -> str:
    """``<index>-<overrides>`` with path separators and odd characters made ``_``."""
    text = ",".join(overrides)
    return re.sub(r"[^\w.=,+-]", "_", f"{index}-{text}" if text else str(index))[:150]


def plan(args: Sequence[str]) -> tuple[Path, list[dict[str, Any]], list[str]]:
    """The sweep directory, each job (index, overrides, config) checked, and Hydra's overrides (the launcher)."""
    from nas.cli.config import compose
    from nas.runner.run import prepare

    overrides, options, hydra = split_sweep_options(args)
    hydra = launcher_overrides(options, hydra)
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key in ("run_dir", "resume"):
            raise UserError(f"{key}= does not apply to a sweep (each job gets its own run directory under "
                            "sweep_dir=<dir>); drop it")
    jobs = expand(overrides)
    names = varying(jobs)
    configs = [compose(job) for job in jobs]
    root = configs[0].get("runs_root") or "runs"
    given = options.get("sweep_dir") or next((item.partition("=")[2].strip() for item in hydra
                                              if item.partition("=")[0].strip() == "hydra.sweep.dir"), None)
    sweep_dir = Path(given or Path(root) / f"sweep-{time.strftime('%Y%m%d-%H%M%S')}")
    if (sweep_dir / "summary.csv").exists():
        raise UserError(f"sweep directory {sweep_dir} already holds a sweep; choose another sweep_dir=")
    hydra = [item for item in hydra if item.partition("=")[0].strip() != "hydra.sweep.dir"]
    planned = []
    for index, (job, config) in enumerate(zip(jobs, configs)):
        config["run_dir"] = str(sweep_dir / job_dir_name(index, names[index]))
        try:
            prepare(config)
        except UserError as exc:
            raise UserError(f"job {index} ({' '.join(job)}): {exc}") from None
        planned.append({"job": index, "overrides": " ".join(names[index] or job), "args": job, "config": config})
    return sweep_dir, planned, hydra


def run_job(job: dict[str, Any], progress: bool) -> dict[str, Any]:
    """Run one job's search; its row of the summary (a failure is a row, not an exception)."""
    from nas.runner.run import search

    metric = str((job["config"].get("objectives") or [job["config"]["objective"]])[0]).split(":")[0]
    row = {"job": job["job"], "overrides": job["overrides"], "best objective": "-", "trials": 0,
           "state": "complete", "run dir": job["config"]["run_dir"]}
    try:
        summary = search(job["config"], progress=progress)
    except Exception as exc:  # noqa: BLE001 - one job's failure is reported in the summary, the sweep goes on
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        row["state"] = f"failed: {text}"
        return row
    row["trials"] = len(summary.results)
    if summary.best is not None and metric in summary.best.metrics:
        row["best objective"] = f"{summary.best.metrics[metric]:.6g}"
    return row


def summary_table(rows: list[dict[str, Any]]) -> str:
    """The jobs as a markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]).replace("|", "/") for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def write_summary(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    """``summary.md`` and ``summary.csv`` in the sweep directory."""
    (sweep_dir / "summary.md").write_text(f"# Sweep {sweep_dir.name}\n\n{summary_table(rows)}\n")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS))
    writer.writeheader()
    writer.writerows(rows)
    (sweep_dir / "summary.csv").write_text(out.getvalue())


def multirun(args: Sequence[str]) -> int:
    """``nas search -m ...``: plan and check every job, run them, write and print the summary.
    Exit 0 when every job completed, 1 when one failed (its row says why)."""
    from nas.cli.hydra_app import launch

    sweep_dir, jobs, hydra = plan(args)
    rows = launch(jobs, sweep_dir, hydra)
    sweep_dir.mkdir(parents=True, exist_ok=True)  # made by the launcher; also when every job failed to start
    write_summary(sweep_dir, rows)
    print(summary_table(rows))
    print(f"sweep: {sweep_dir}")
    return 0 if all(row["state"] == "complete" for row in rows) else 1
