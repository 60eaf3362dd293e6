"""The ``hydra/sweeper=nas`` plugin: its config (registered in Hydra's ConfigStore) and its ``Sweeper`` class.

Hydra imports every module under ``hydra_plugins`` when any Hydra app starts, so this module imports only
Hydra; the search itself is ``nas.integrations.hydra_sweeper.run_sweep``. (No ``from __future__ import
annotations``: Hydra runs this module before it is in ``sys.modules``, where dataclasses look annotations up.)
Settings: ``searcher`` (evolution, predictor_evolution, random), ``searcher_options`` (the searcher's own, e.g.
``population_size``), ``direction`` (minimize or maximize the task's return value), ``n_trials``, ``n_jobs``
(jobs per launch: the launcher's batch), ``seed``, ``params`` (parameter -> sweep, e.g. ``x: choice(1,2,3)``;
command-line sweeps are added and win).
"""

import logging
from dataclasses import dataclass, field
from typing import Any, Dict, Optional  # noqa: UP035 - OmegaConf's structured configs read these

from hydra.core.config_store import ConfigStore
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


@dataclass
class NasSweeperConf:
    """``hydra.sweeper`` when ``hydra/sweeper=nas``."""

    _target_: str = "hydra_plugins.nas_sweeper.nas_sweeper.NasSweeper"
    searcher: str = "evolution"
    searcher_options: Dict[str, Any] = field(default_factory=dict)  # noqa: UP006
    direction: str = "minimize"
    n_trials: int = 20
    n_jobs: int = 1
    seed: Optional[int] = None  # noqa: UP045
    params: Optional[Dict[str, str]] = None  # noqa: UP006, UP045


ConfigStore.instance().store(group="hydra/sweeper", name="nas", node=NasSweeperConf, provider="nas")


class NasSweeper(Sweeper):
    """Runs a Hydra multirun as a search by one of our searchers (see ``nas.integrations.hydra_sweeper``)."""

    def __init__(self, searcher: str, searcher_options: Any, direction: str, n_trials: int, n_jobs: int,
                 seed: Optional[int], params: Any) -> None:  # noqa: UP045
        from nas.integrations.hydra_sweeper import SweepOptions

        def plain(value: Any) -> Any:
            return OmegaConf.to_container(value) if isinstance(value, DictConfig) else value

        self.options = SweepOptions(searcher=searcher, searcher_options=plain(searcher_options) or {},
                                    direction=direction, n_trials=n_trials, n_jobs=n_jobs, seed=seed,
                                    params=plain(params))
        self.options.check()
        self.config: Optional[DictConfig] = None  # noqa: UP045
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from nas.integrations.hydra_sweeper import run_sweep

        assert self.config is not None and self.launcher is not None
        return run_sweep(self.options, arguments, self.launcher, str(self.config.hydra.sweep.dir), log=log)
