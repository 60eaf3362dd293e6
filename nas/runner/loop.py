"""The search loop: ask -> dedup -> evaluate -> journal -> tell, with several trials in flight.

Results may arrive in any order. Every event is journalled before the loop moves on, so a killed
run is resumed by replaying the journal: finished trials are told to the searcher again, trials
that had started but not finished are run again under their own ids, and the budget counts
finished trials only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.core.space import SearchSpace
from nas.runner.executors import Executor, Job, Outcome
from nas.runner.journal import Journal
from nas.searchers.base import Objective, Searcher

MAX_DUPLICATE_STREAK = 1000  # proposals in a row that are duplicates or rejected: the space is exhausted


@dataclass
class LoopState:
    """Everything the loop knows: finished results, trials to re-run, the next free trial id."""

    results: list[Result] = field(default_factory=list)
    pending: list[Job] = field(default_factory=list)
    next_trial: int = 0
    told: list[tuple[Genotype, Result]] = field(default_factory=list)  # a resumed searcher's replay, in order


def trial_seed(seed: int, trial: int) -> int:
    """The seed of one trial: fixed by the run seed and the trial id (stable across resume)."""
    return (seed * 1_000_003 + trial) % 2**31


def run_loop(space: SearchSpace, searcher: Searcher, executor: Executor, journal: Journal, budget: int,
             seed: int, objective: Objective, state: LoopState, dedup: bool = False,
             on_result: Callable[[Result, list[Result]], None] | None = None,
             admit: Callable[[Genotype], str | None] | None = None) -> list[Result]:
    """Run until ``budget`` trials have finished (or the searcher has nothing left to propose).

    ``admit`` may reject a genotype before it is evaluated (a hard constraint) by returning the
    reason: the rejection is journalled, told to the searcher as a failed trial, and costs no budget.
    """
    results = state.results
    cache: dict[str, Result] = {}
    for result in results:
        cache.setdefault(_key(space, result.genotype, dedup), result)
    in_flight: dict[int, Job] = {}
    in_flight_keys: set[str] = set()
    pending = list(state.pending)
    next_trial = state.next_trial
    streak = 0
    exhausted = False
    while len(results) < budget:
        while not exhausted and len(in_flight) < executor.capacity and len(results) + len(in_flight) < budget:
            if pending:
                job = pending.pop(0)
            else:
                genotype = searcher.ask()
                if genotype is None:
                    exhausted = True
                    break
                key = _key(space, genotype, dedup)
                if dedup and (key in cache or key in in_flight_keys):
                    of_trial = cache[key].trial if key in cache else None
                    journal.append("duplicate", genotype=genotype.to_json(), fingerprint=genotype.fingerprint(),
                                   of_trial=of_trial)  # journalled so that a resume replays this ask and tell
                    if key in cache:
                        searcher.tell(genotype, cache[key])
                    streak += 1
                    if streak > MAX_DUPLICATE_STREAK:
                        exhausted = True
                    continue
                reason = admit(genotype) if admit is not None else None
                if reason:
                    journal.append("rejected", genotype=genotype.to_json(), fingerprint=genotype.fingerprint(),
                                   reason=reason)
                    searcher.tell(genotype, Result(trial=-1, genotype=genotype, state=TrialState.FAILED,
                                                   error=reason))
                    streak += 1
                    if streak > MAX_DUPLICATE_STREAK:
                        exhausted = True
                    continue
                streak = 0
                job = Job(next_trial, genotype, trial_seed(seed, next_trial))
                next_trial += 1
            journal.append("started", trial=job.trial, genotype=job.genotype.to_json(),
                           fingerprint=job.genotype.fingerprint(), seed=job.seed)
            executor.submit(job)
            in_flight[job.trial] = job
            in_flight_keys.add(_key(space, job.genotype, dedup))
        if not in_flight:
            break
        for outcome in executor.wait():
            job = in_flight.pop(outcome.trial)
            in_flight_keys.discard(_key(space, job.genotype, dedup))
            result = _result(job, outcome)
            if not executor.reports_live:
                for epoch, metrics in outcome.reports:
                    journal.append("reported", trial=job.trial, epoch=epoch, metrics=metrics)
            journal.finished(result)
            results.append(result)
            cache.setdefault(_key(space, job.genotype, dedup), result)
            searcher.tell(job.genotype, result)
            if on_result is not None:
                on_result(result, results)
    state.next_trial = next_trial
    return results


def _key(space: SearchSpace, genotype: Genotype, dedup: bool) -> str:
    return space.canonical(genotype) if dedup else genotype.fingerprint()


def _result(job: Job, outcome: Outcome) -> Result:
    return Result(trial=job.trial, genotype=job.genotype, state=outcome.state, metrics=outcome.metrics,
                  seconds=outcome.finished - outcome.started, epochs=outcome.epochs, seed=job.seed,
                  worker=outcome.worker, started=outcome.started, finished=outcome.finished,
                  error=outcome.error)

