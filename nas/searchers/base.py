"""``Searcher``: ask/tell only. It never trains, writes files or plots; the runner does."""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core.genotype import Genotype
from nas.core.registry import Registry
from nas.core.result import Result
from nas.core.space import SearchSpace

SEARCHERS: Registry = Registry("searcher", package="nas.searchers")


@dataclass(frozen=True)
class Objective:
    """The metric a searcher optimises and its direction."""

    metric: str = "valid_accuracy"
    mode: str = "max"

    def __post_init__(self) -> None:
        if self.mode not in ("max", "min"):
            raise ValueError(f"objective mode must be max or min, got {self.mode!r}")

    def score(self, result: Result) -> float:
        """Higher is better; failed, pruned or missing metrics score -inf."""
        value = result.metrics.get(self.metric)
        if not result.ok or value is None or (isinstance(value, float) and math.isnan(value)):
            return -math.inf
        return float(value) if self.mode == "max" else -float(value)

    @classmethod
    def parse(cls, text: str) -> Objective:
        """``"valid_accuracy:max"`` -> Objective."""
        metric, _, mode = text.partition(":")
        return cls(metric, mode or "max")


@dataclass(frozen=True)
class MultiObjective:
    """Several objectives; the first is the one reported as "best" and shown in progress lines."""

    objectives: tuple[Objective, ...]

    def __post_init__(self) -> None:
        if len(self.objectives) < 2:
            raise ValueError("a multi-objective search needs at least two objectives")

    @property
    def metric(self) -> str:
        return self.objectives[0].metric

    @property
    def mode(self) -> str:
        return self.objectives[0].mode

    def score(self, result: Result) -> float:
        return self.objectives[0].score(result)

    def vector(self, result: Result) -> tuple[float, ...]:
        """Each objective oriented so larger is better (-inf when missing or failed)."""
        return tuple(o.score(result) for o in self.objectives)

    @classmethod
    def parse(cls, items: list[str] | tuple[str, ...]) -> MultiObjective:
        return cls(tuple(Objective.parse(str(item)) for item in items))


def parse_objectives(single: str, several: list[str] | None) -> Objective | MultiObjective:
    """The run's objective: ``objectives=[a:max,b:min]`` when given, else ``objective=a:max``."""
    if several:
        return MultiObjective.parse(several) if len(several) > 1 else Objective.parse(str(several[0]))
    return Objective.parse(single)


def told_pairs(history: Iterable[Result | tuple[Genotype, Result]]) -> list[tuple[Genotype, Result]]:
    """``recover``'s history as (proposed genotype, result) pairs (a bare result was proposed as its genotype)."""
    return [item if isinstance(item, tuple) else (item.genotype, item) for item in history]


class Searcher(ABC):
    """Base class: ``setup`` once, then ``ask``/``tell`` in any interleaving (trials may run in parallel).

    ``ask`` returns ``None`` when the searcher has nothing more to propose (exhausted or waiting).
    A searcher that draws its first candidates with ``initial()`` supports the warm start (``supports_warm_start``):
    the runner hands it candidates through ``warm_start`` and they come before any random sample.
    """

    supports_warm_start: bool = False
    multi_objective: bool = False  # ranks by every objective of a MultiObjective (else by the first only)
    # the phases that run networks inside the searcher (a supernet's training, final trainings) and the backends
    # each has: ``backend=`` must be one of them (nas.runner.phases refuses the run otherwise)
    backend_phases: Mapping[str, tuple[str, ...]] = {}
    uses_evaluator: bool = True  # False for a searcher that trains and records its trials itself (FBNetV5)

    def setup(self, space: SearchSpace, seed: int = 0, objective: Objective | MultiObjective | None = None) -> None:
        self.space = space
        self.seed = seed
        self.objective = objective or Objective()
        self.rng = random.Random(seed)
        self.told = 0
        self.warm: deque[Genotype] = deque()

    def warm_start(self, genotypes: Sequence[Genotype]) -> None:
        """Make ``genotypes`` the first initial candidates, in order (after ``setup`` and any ``recover``)."""
        if not self.supports_warm_start:
            raise TypeError(f"{type(self).__name__} has no warm start")
        self.warm.extend(genotypes)

    def initial(self) -> Genotype:
        """The next initial candidate: a warm-start one while any are left, else a uniform sample."""
        return self.warm.popleft() if self.warm else self.space.sample(self.rng)

    @abstractmethod
    def ask(self) -> Genotype | None:
        """The next genotype to evaluate."""

    @classmethod
    def run_options(cls, options: dict[str, Any], run_dir: Path) -> dict[str, Any]:
        """The searcher's options as a new run at ``run_dir`` fixes them in its config.json (default: as given);
        e.g. a stored study's name and an absolute storage path, so that a resume from anywhere finds it."""
        return options

    def start_new(self) -> None:
        """Called by a new search (not a resume) after ``setup``, before its run directory exists: raise a
        ``UserError`` when state kept outside the run (a stored Optuna study) would mix into it."""

    def tell(self, genotype: Genotype, result: Result) -> None:
        """Learn from a finished trial (default: count it)."""
        self.told += 1

    def should_prune(self, genotype: Genotype, epoch: int, metrics: Mapping[str, float]) -> bool:
        """Told each per-epoch report of a running trial (in-process runs); True stops it as pruned."""
        return False

    def recover(self, history: Iterable[Result | tuple[Genotype, Result]]) -> None:
        """Rebuild state after a restart by replaying what the searcher was told, in order (journal replay).

        Each item (a result, or a (proposed genotype, result) pair: a duplicate proposal answered with an
        earlier trial's result, a proposal a constraint rejected) is replayed as the ``ask`` that proposed it
        followed by its ``tell``, so the random stream and every counter advance as in the first run: a run of
        sequential trials resumed after ``k`` of them proposes what the uninterrupted run would have
        (``SearcherSuite`` checks this).
        """
        for genotype, result in told_pairs(history):
            self.ask()
            self.tell(genotype, result)

    def recover_in_flight(self, genotypes: Sequence[Genotype]) -> None:
        """After ``recover``: replay the asks of the trials that had started but not finished when the run stopped
        (the runner runs them again under their ids and tells their results), so that the random stream and the
        counters stand where the first run's did: the next new ask is the one the first run would have made."""
        for _ in genotypes:
            self.ask()


@dataclass
class Drive:
    """What the runner hands a self-driven searcher (see ``DrivingSearcher``).

    ``evaluate(genotype, tags)`` runs one trial with the run's evaluator in this process and returns
    its ``Result`` (journalled, shown as a progress line, counted in ``results``); ``record(result)``
    journals a trial evaluated elsewhere (e.g. by Ray Tune) under the next trial id and returns it
    with that id; ``report(trial, epoch, metrics)`` journals a per-epoch report; ``log`` prints an
    information line (suppressed when progress is off); ``add_report_section(title, markdown)`` adds a
    section to ``report.md`` (rating tables, keep probabilities). ``results`` holds the finished trials,
    including those of an earlier run when resumed. Files the searcher keeps (rating tables,
    supernet checkpoints) go under ``run_dir``. Trials tagged ``role=found`` are the search's answers:
    ``best.json`` is the best of them, not a baseline trained beside them.
    """

    run_dir: Path
    config: Mapping[str, Any]
    budget: int
    results: list[Result]
    evaluator_spec: Mapping[str, Any]
    evaluate: Callable[..., Result]
    record: Callable[[Result], Result]
    report: Callable[[int, int, Mapping[str, float]], None]
    log: Callable[[str], None]
    add_report_section: Callable[[str, str], None] = lambda title, markdown: None


class DrivingSearcher(Searcher):
    """A searcher that runs its own search loop instead of ask/tell: weight-sharing supernet searches
    (BossNAS, FBNetV5) and external drivers (Ray Tune). The runner calls ``drive`` once, then writes
    best/report/plots from the journalled results like for any search."""

    counts_budget: bool = False  # True when ``budget.trials`` is the number of trials it runs (Ray Tune)

    def ask(self) -> Genotype | None:
        return None

    @abstractmethod
    def drive(self, drive: Drive) -> None:
        """Run the search, journalling every evaluated architecture through ``drive``."""
