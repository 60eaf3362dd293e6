"""Hydra's application machinery for ``nas search``, without ``hydra.main``: the config with its ``hydra`` node
(``--cfg hydra``) and Hydra's launchers for sweeps (``hydra/launcher=basic|joblib``).

``nas search`` composes with Hydra's compose API so that its contract holds (docs/architecture.md, "CLI and
config"); this module opens the same Hydra session a ``hydra.main`` app has (``GlobalHydra``'s ``Hydra`` over
``nas/cli/conf``) to compose the ``hydra`` node, and instantiates the configured launcher plugin with a task
function that runs one planned job. Hydra settings that ``nas`` uses: ``hydra/launcher``, ``hydra.launcher.*``,
``hydra.sweep.dir`` (= ``sweep_dir=``), ``hydra/hydra_logging``, ``hydra/job_logging``, ``hydra.verbose``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.errors import UserError

USED = ("hydra/launcher", "hydra.launcher.", "hydra.sweep.dir", "hydra/hydra_logging", "hydra/job_logging",
        "hydra.verbose")


def is_hydra_override(item: str) -> bool:
    """Whether ``item`` sets Hydra's own config (``hydra.x=..``, ``hydra/group=..``), not the search's."""
    key = item.partition("=")[0].strip().lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def check_hydra_overrides(items: Sequence[str]) -> None:
    """Refuse a Hydra setting that ``nas search`` does not use (it would be accepted and do nothing)."""
    for item in items:
        key = item.partition("=")[0].strip().lstrip("+~")
        if not (key.startswith(USED[1]) or key in USED):
            raise UserError(f"`nas search` does not use {key}; the Hydra settings it uses: "
                            "hydra/launcher=basic|joblib, hydra.launcher.<key>=, hydra.sweep.dir= (or sweep_dir=), "
                            "hydra/hydra_logging=, hydra/job_logging=, hydra.verbose=")


def escape(value: str) -> str:
    """``value`` as an override's string value (Hydra's escaping of ``=``, ``,``, spaces, ...)."""
    from hydra._internal.grammar.utils import escape_special_characters

    return escape_special_characters(value)


@contextmanager
def session() -> Iterator[Any]:
    """Hydra's app object over ``nas/cli/conf``, as ``hydra.main`` sets it up (GlobalHydra)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from nas.cli.config import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None, job_name="nas_search"):
        yield GlobalHydra.instance().hydra


def compose_with_hydra(app: Any, overrides: Sequence[str], multirun: bool) -> Any:
    """The config with its ``hydra`` node (a DictConfig, unresolved); Hydra's errors as one-line UserErrors."""
    from hydra.errors import HydraException
    from hydra.types import RunMode
    from omegaconf.errors import OmegaConfBaseException

    from nas.cli.config import _one_line

    try:
        return app.compose_config("config", overrides=list(overrides),
                                  run_mode=RunMode.MULTIRUN if multirun else RunMode.RUN)
    except (HydraException, OmegaConfBaseException) as exc:
        raise UserError(_one_line(exc)) from None


def hydra_yaml(overrides: Sequence[str], hydra_overrides: Sequence[str], multirun: bool) -> str:
    """``--cfg hydra``: Hydra's config node as yaml (unresolved, as ``hydra.main`` prints it)."""
    from omegaconf import OmegaConf

    from nas.cli.config import prepared_overrides

    check_hydra_overrides(hydra_overrides)
    full = prepared_overrides(overrides) + list(hydra_overrides)
    with session() as app:
        cfg = compose_with_hydra(app, full, multirun)
    return OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(cfg.hydra, resolve=False)}))


@dataclass
class SweepTask:
    """Hydra's task function of a sweep: runs the planned job whose number Hydra passes (``hydra.job.num``)."""

    jobs: list[dict[str, Any]]
    parent: int  # the process that planned the sweep: jobs there show their progress

    def __call__(self, cfg: Any) -> dict[str, Any]:
        from hydra.core.hydra_config import HydraConfig

        from nas.cli.multirun import run_job

        job = self.jobs[HydraConfig.get().job.num]
        here = os.getpid() == self.parent
        label = f"[job {job['job'] + 1}/{len(self.jobs)}] {job['overrides']}"
        if here:
            print(label, flush=True)
        row = run_job(job, progress=here)
        if not here:
            print(f"{label}: {row['state']}, best {row['best objective']}", flush=True)
        return row


def launch(jobs: list[dict[str, Any]], sweep_dir: Path, hydra_overrides: Sequence[str]) -> list[dict[str, Any]]:
    """Run the planned jobs with the configured Hydra launcher; their summary rows, in job order.

    Each job's overrides (with the space's suggestions) and its run directory's name (``hydra.sweep.subdir``) go
    to the launcher, which composes the job's config as Hydra does; the task runs the config ``nas`` planned."""
    from hydra._internal.callbacks import Callbacks
    from hydra.core.plugins import Plugins
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext

    from nas.cli.config import prepared_overrides

    base_overrides = [f"hydra.sweep.dir={escape(str(sweep_dir))}", *hydra_overrides]
    job_overrides = [[*prepared_overrides(job["args"]),
                      f"hydra.sweep.subdir={escape(Path(job['config']['run_dir']).name)}"] for job in jobs]
    with session() as app:
        base = compose_with_hydra(app, base_overrides, multirun=True)
        context = HydraContext(config_loader=app.config_loader, callbacks=Callbacks(base))
        launcher = Plugins.instance().instantiate_launcher(hydra_context=context,
                                                          task_function=SweepTask(jobs, os.getpid()), config=base)
        try:
            returns = launcher.launch(job_overrides, initial_job_idx=0)
        finally:
            if type(launcher).__name__ == "JoblibLauncher":  # stop the loky workers it started (kept for reuse)
                from joblib.externals.loky import get_reusable_executor

                get_reusable_executor().shutdown(wait=True)
    rows = []
    for job, ret in zip(jobs, returns):
        if ret.status is JobStatus.COMPLETED:
            rows.append(ret.return_value)
        else:  # the task catches a search's exceptions; this is the launcher's own failure
            rows.append({"job": job["job"], "overrides": job["overrides"], "best objective": "-", "trials": 0,
                         "state": f"failed: {ret._return_value}", "run dir": job["config"]["run_dir"]})
    return rows
