"""Our searchers inside Ray Tune: ``Searcher(searcher="evolution")`` is a ``ray.tune.search.Searcher``.

A Tune param space (``tune.choice``, ``randint``, ``uniform``, ``loguniform``, their quantized forms, nested
dicts; constants pass through) becomes Optuna distributions by Ray's own conversion
(``OptunaSearch.convert_search_space``), and those a search space of ours by the mapping of
``nas.integrations.optuna`` (``OptunaSpace``: a categorical is a ``Choice`` of its indices, an integer an
``IntRange``, a quantized float an ``IntRange`` of steps, a float a ``FloatRange``). A single-valued domain is
no decision: its value is returned as is. Grid search is not converted (Ray's conversion refuses it).

Tune's trials are the searcher's asks and tells: ``suggest`` asks, ``on_trial_complete`` tells the trial's
last result (the metric's value). A trial that errored, or whose last result lacks a finite metric, is told as
failed (ranked worst). A trial that a scheduler stopped is told with its last reported value, as Tune's own
searchers do. ``save``/``restore`` pickle the searcher together with what it was told and the trials in flight,
so ``Tuner.restore`` continues the same search.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Mapping
from typing import Any

from ray.tune.search import UNDEFINED_METRIC_MODE, UNDEFINED_SEARCH_SPACE
from ray.tune.search import Searcher as TuneSearcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.utils.util import flatten_dict, unflatten_dict

from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.integrations.optuna import SEARCHER_NAMES, OptunaSpace, _only_value
from nas.searchers.base import SEARCHERS, Objective

STATE_KEYS = ("_metric", "_mode", "searcher_name", "options", "seed", "fixed", "space", "nas_searcher", "live",
              "errored", "results")


class Searcher(TuneSearcher):
    """A Tune search algorithm that proposes with one of our searchers (``evolution``, ``predictor_evolution``,
    ``random``); ``options`` are the searcher's own (``population_size=20``), checked here.

    ``space`` is a Tune param space (else Tune hands over ``param_space``); ``metric``/``mode`` as in any Tune
    searcher (else ``TuneConfig``'s); ``seed`` seeds the searcher (None: a random seed). One objective.
    """

    def __init__(self, searcher: str = "evolution", space: Mapping[str, Any] | None = None,
                 metric: str | None = None, mode: str | None = None, seed: int | None = None,
                 **options: Any) -> None:
        if searcher not in SEARCHER_NAMES:
            raise ValueError(f"unknown searcher {searcher!r} for Ray Tune; valid choices: {', '.join(SEARCHER_NAMES)}")
        if mode not in (None, "min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        super().__init__(metric=metric, mode=mode)
        SEARCHERS.get(searcher)(**options)  # its options are checked now, not at the first trial
        self.searcher_name = searcher
        self.options = options
        self.seed = random.randrange(2**31) if seed is None else int(seed)
        self.space: OptunaSpace | None = None
        self.fixed: dict[str, Any] = {}
        self.nas_searcher: Any = None  # not ``searcher``: Tune takes a searcher with that attribute for a wrapper
        self.live: dict[str, Genotype] = {}  # Tune trial id -> the genotype proposed for it
        self.errored: dict[str, Genotype] = {}  # trials told as failed that Tune may still run again (restored)
        self.results: list[Result] = []  # what the searcher was told, in order
        if space is not None:
            self._set_space(space)

    def _set_space(self, config: Mapping[str, Any]) -> None:
        distributions = OptunaSearch.convert_search_space(dict(config))
        self.fixed = {name: _only_value(d) for name, d in distributions.items() if d.single()}
        self.space = OptunaSpace({name: d for name, d in distributions.items() if not d.single()})

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Take Tune's param space (``Tuner(param_space=...)``) and its metric/mode unless given already."""
        if self.space is not None:
            return False
        self._set_space(config)
        if metric:
            self._metric = metric
        if mode:
            self._mode = mode
        return True

    def _start(self) -> None:
        if self.space is None:
            raise RuntimeError(UNDEFINED_SEARCH_SPACE.format(cls=type(self).__name__, space="space"))
        if not self._metric or self._mode not in ("min", "max"):
            raise RuntimeError(UNDEFINED_METRIC_MODE.format(cls=type(self).__name__, metric=self._metric,
                                                            mode=self._mode))
        self.nas_searcher = SEARCHERS.get(self.searcher_name)(**self.options)
        self.nas_searcher.setup(self.space, self.seed, Objective(self._metric, self._mode))

    def suggest(self, trial_id: str) -> dict | None:
        """The config of a new trial: our searcher's proposal, with the single-valued domains' values."""
        if self.nas_searcher is None:
            self._start()
        if not self.space.distributions:
            return unflatten_dict(dict(self.fixed))
        genotype = self.nas_searcher.ask()
        if genotype is None:
            return TuneSearcher.FINISHED
        self.live[trial_id] = genotype
        return unflatten_dict({**self.fixed, **self.space.to_params(genotype)})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Tell the searcher the trial's last result (failed when it errored or lacks a finite metric). An errored
        trial that Tune runs again (``Tuner.restore(..., restart_errored=True)``) is told again when it ends."""
        genotype = self.live.pop(trial_id, None) or self.errored.pop(trial_id, None)
        if genotype is None:
            return
        if error:
            self.errored[trial_id] = genotype
        self._tell(genotype, None if error or not result else result.get(self._metric))

    def add_evaluated_point(self, parameters: dict, value: float, error: bool = False, pruned: bool = False,
                            intermediate_values: list[float] | None = None) -> None:
        """Tell the searcher a point evaluated elsewhere (``parameters`` of this space, nested or flat)."""
        if self.nas_searcher is None:
            self._start()
        flat = flatten_dict(dict(parameters), delimiter="/")
        missing = [name for name in self.space.distributions if name not in flat]
        if missing:
            raise ValueError(f"parameters lack {', '.join(missing)}")
        self._tell(self.space.from_params(flat), None if error else value)

    def _tell(self, genotype: Genotype, value: Any) -> None:
        try:
            number = math.nan if value is None or isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            number = math.nan
        ok = math.isfinite(number)
        result = Result(trial=len(self.results), genotype=genotype,
                        state=TrialState.COMPLETE if ok else TrialState.FAILED,
                        metrics={self._metric: number} if ok else {})
        self.nas_searcher.tell(genotype, result)
        self.results.append(result)

    def get_state(self) -> dict[str, Any]:
        """The state ``save`` pickles: settings, space, our searcher, what it was told and the trials in flight."""
        return {key: getattr(self, key) for key in STATE_KEYS}

    def set_state(self, state: dict[str, Any]) -> None:
        """Take back a ``get_state`` dict."""
        for key in STATE_KEYS:
            setattr(self, key, state[key])

    def save(self, checkpoint_path: str) -> None:
        """Pickle the searcher, its space, what it was told and the trials in flight (Tune calls this)."""
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        """Continue from ``save``'s file: the same searcher state, random stream and trials in flight."""
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))
