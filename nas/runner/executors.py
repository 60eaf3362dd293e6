"""Executors run evaluations: in this process, or in a pool of worker processes.

Both take jobs and hand back outcomes as they finish (possibly out of order), so the loop is the
same for one worker, many, or a cluster (the Ray executor implements the same two calls).
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import os
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from nas.backends.training import Pruned
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import TrialState
from nas.evaluators.base import EvalContext, make_evaluator


@dataclass(frozen=True)
class Job:
    """One trial to evaluate."""

    trial: int
    genotype: Genotype
    seed: int


@dataclass
class Outcome:
    """What came back from a job: state, metrics, per-epoch reports and timing."""

    trial: int
    state: TrialState
    metrics: dict[str, float]
    worker: str
    started: float
    finished: float
    reports: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    error: str = ""
    epochs: int = 0


_EVALUATOR_CACHE: dict[str, Any] = {}


def evaluate_job(evaluator_spec: dict[str, Any], job: Job, live_report: Any = None) -> Outcome:
    """Run one job with the evaluator described by ``evaluator_spec`` (built once per process).

    A ``UserError`` (bad configuration) propagates: retrying cannot fix it. Any other exception
    becomes a failed trial with its traceback's last line kept.
    """
    key = repr(sorted(evaluator_spec.items()))
    if key not in _EVALUATOR_CACHE:
        options = dict(evaluator_spec)
        _EVALUATOR_CACHE[key] = make_evaluator(options.pop("name"), **options)
    evaluator = _EVALUATOR_CACHE[key]
    reports: list[tuple[int, dict[str, float]]] = []

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        reports.append((epoch, dict(metrics)))
        return bool(live_report(job.trial, epoch, metrics)) if live_report else False

    worker = f"{os.uname().nodename}:{os.getpid()}"
    started = time.time()
    ctx = EvalContext(trial=job.trial, seed=job.seed, worker=worker, report=report)
    try:
        metrics = evaluator(job.genotype, ctx)
        state, error = TrialState.COMPLETE, ""
    except UserError:
        raise
    except Pruned as pruned:
        metrics, state, error = dict(pruned.metrics), TrialState.PRUNED, ""
    except Exception as exc:  # a candidate that fails must not end the search
        metrics, state = {}, TrialState.FAILED
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        traceback.print_exc()
    return Outcome(job.trial, state, {k: float(v) for k, v in metrics.items()}, worker, started, time.time(),
                   reports, error, epochs=len(reports))


class Executor(ABC):
    """``submit`` jobs up to ``capacity``; ``wait`` returns at least one finished outcome."""

    capacity: int = 1
    reports_live: bool = False  # True when per-epoch reports were journalled while the job ran

    @abstractmethod
    def submit(self, job: Job) -> None: ...

    @abstractmethod
    def wait(self) -> list[Outcome]: ...

    def shutdown(self) -> None:
        """Release workers."""


class InProcessExecutor(Executor):
    """Evaluates in the calling process, one job at a time; reports reach the journal live."""

    def __init__(self, evaluator_spec: dict[str, Any], live_report: Any = None, prune: Any = None) -> None:
        """``live_report(trial, epoch, metrics)`` journals a report; ``prune(genotype, epoch, metrics)``
        (a searcher's ``should_prune``) may stop the trial: either returning True prunes it."""
        self.spec = evaluator_spec
        self.live_report = live_report
        self.prune = prune
        self.capacity = 1
        self.reports_live = live_report is not None
        self._queue: list[Job] = []

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def wait(self) -> list[Outcome]:
        job = self._queue.pop(0)
        if self.live_report is None and self.prune is None:
            return [evaluate_job(self.spec, job)]

        def live(trial: int, epoch: int, metrics: dict[str, float]) -> bool:
            stop = bool(self.live_report(trial, epoch, metrics)) if self.live_report is not None else False
            pruned = bool(self.prune(job.genotype, epoch, metrics)) if self.prune is not None else False
            return stop or pruned

        return [evaluate_job(self.spec, job, live)]


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        pass


class ProcessPoolExecutor(Executor):
    """``workers`` spawned processes, each with ``threads`` compute threads (jobs run in parallel)."""

    def __init__(self, evaluator_spec: dict[str, Any], workers: int, threads: int | None = None) -> None:
        self.spec = evaluator_spec
        self.capacity = workers
        threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._pool = futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_init_worker, initargs=(threads,))
        self._running: set[futures.Future] = set()

    def submit(self, job: Job) -> None:
        self._running.add(self._pool.submit(evaluate_job, self.spec, job))

    def wait(self) -> list[Outcome]:
        done, self._running = futures.wait(self._running, return_when=futures.FIRST_COMPLETED)
        return [f.result() for f in done]

    def shutdown(self) -> None:
        self._pool.shutdown(cancel_futures=True)
