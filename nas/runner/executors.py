"""Executors run evaluations: in this process, or in a pool of worker processes.

Both take jobs and hand back outcomes as they finish (possibly out of order), so the loop is the
same for one worker, many, or a cluster (the Ray executor implements the same two calls).
"""

from __future__ import annotations

import importlib
import itertools
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import time
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nas.backends.training import Pruned
from nas.core import extras
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import TrialState
from nas.evaluators.base import EVALUATORS, EvalContext, make_evaluator


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


def evaluator_modules(evaluator_spec: dict[str, Any]) -> tuple[str, ...]:
    """The module that registered the spec's evaluator, for a worker process to import first (an evaluator
    registered outside ``nas.evaluators``, by a user's module or a test helper, is then known there too)."""
    module = getattr(EVALUATORS.get(str(evaluator_spec["name"])), "__module__", None)
    return (module,) if module and module != "__main__" else ()


def error_line(exc: BaseException) -> str:
    """``Type: message`` on one line (just ``Type`` when the message is empty, as for a bare MemoryError)."""
    text = str(exc).strip()
    return (f"{type(exc).__name__}: {text}" if text else type(exc).__name__).splitlines()[0][:500]


def evaluate_job(evaluator_spec: dict[str, Any], job: Job, live_report: Any = None,
                 modules: tuple[str, ...] = ()) -> Outcome:
    """Run one job with the evaluator described by ``evaluator_spec`` (built once per process).

    ``modules`` are imported first (see ``evaluator_modules``). A ``UserError`` (bad configuration)
    propagates: retrying cannot fix it, nor a module of an optional extra that is not installed (raised as a
    ``MissingExtraError``, a ``UserError``). Any other exception (a crash, ``MemoryError``, a diverged
    training loss) becomes a failed trial with the exception's first line kept as its error.
    """
    for module in modules:
        importlib.import_module(module)
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
        extra = extras.extra_of(exc) if isinstance(exc, ModuleNotFoundError) else None
        if extra is not None:  # every trial would fail alike: stop the run, naming the extra to install
            raise extras.MissingExtraError(extras.message(f"evaluator {evaluator_spec['name']}", extra)) from None
        metrics, state, error = {}, TrialState.FAILED, error_line(exc)
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
    """Limit a worker's compute threads; torch, when an evaluator imports it later, reads OMP_NUM_THREADS."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads={threads}"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _worker_main(conn: Any, spec: dict[str, Any], modules: tuple[str, ...], threads: int) -> None:
    """A pool worker: evaluate each job received on ``conn`` and send back ("outcome", Outcome) or
    ("raise", exception); a ``None`` job or a closed pipe (the driver is gone) ends it."""
    _init_worker(threads)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            reply: tuple[str, Any] = ("outcome", evaluate_job(spec, job, modules=modules))
        except BaseException as exc:  # a UserError (or an interrupt): the driver re-raises it
            reply = ("raise", exc)
        try:
            try:
                conn.send(reply)
            except (BrokenPipeError, ConnectionResetError):
                return
            except Exception:  # an exception that does not pickle: send its text
                conn.send(("raise", RuntimeError(error_line(reply[1]))))
        except OSError:
            return


def death_reason(exitcode: int | None) -> str:
    """Why a worker process ended, in words (``exitcode`` is negative for a signal)."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"worker process killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"worker process killed by signal {-exitcode}"
    return f"worker process exited with code {exitcode}"


@dataclass
class _Worker:
    """One pool process, the driver's end of its pipe, and the job it runs (None when idle)."""

    process: Any
    conn: Any
    job: Job | None = None
    started: float = 0.0


class ProcessPoolExecutor(Executor):
    """``workers`` spawned processes, each with ``threads`` compute threads (jobs run in parallel).

    Each worker runs one job at a time, so a worker that dies (killed, out of memory) is charged to the job it
    ran: that worker is replaced, the other workers' trials run on untouched, and the job is run again up to
    ``max_retries`` times, then ends as a failed trial with the reason. ``on_retry(job, attempt, reason)`` is
    told of each retry (the runner journals it).

    Hand-written rather than ``concurrent.futures.ProcessPoolExecutor``: that pool breaks as a whole when one
    worker dies (``BrokenProcessPool`` on every pending future, the other workers killed) without saying
    which job was on the dead process, and ``multiprocessing.Pool`` waits forever for a dead worker's task.
    """

    def __init__(self, evaluator_spec: dict[str, Any], workers: int, threads: int | None = None,
                 max_retries: int = 2, on_retry: Callable[[Job, int, str], None] | None = None) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise UserError(f"runner.max_retries must be a non-negative integer, got {max_retries!r}")
        self.spec = evaluator_spec
        self.capacity = workers
        self.max_retries = max_retries
        self.on_retry = on_retry
        self._threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._modules = evaluator_modules(evaluator_spec)
        self._context = multiprocessing.get_context("spawn")
        self._started = itertools.count()
        self._workers = [self._start() for _ in range(workers)]
        self._queue: list[Job] = []  # submitted, or to be retried, and not yet on a worker
        self._deaths: dict[int, int] = {}  # trial -> worker deaths while running it

    def _start(self) -> _Worker:
        here, there = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(there, self.spec, self._modules, self._threads),
                                        name=f"nas-worker-{next(self._started)}")
        process.start()
        there.close()  # only the worker holds its end: the driver sees EOF when the worker dies
        return _Worker(process, here)

    def _replace(self, worker: _Worker) -> _Worker:
        """A new process in a dead worker's place."""
        worker.conn.close()
        worker.process.join(timeout=5)
        fresh = self._start()
        self._workers[self._workers.index(worker)] = fresh
        return fresh

    def submit(self, job: Job) -> None:
        self._queue.append(job)
        self._dispatch()

    def _dispatch(self) -> None:
        for worker in self._workers:
            if not self._queue:
                return
            if worker.job is None:
                if not worker.process.is_alive():  # died while idle (no trial to charge): just replace it
                    worker = self._replace(worker)
                job = self._queue.pop(0)
                worker.job, worker.started = job, time.time()
                try:
                    worker.conn.send(job)
                except OSError:  # it died while idle: the next wait() sees it and runs the job again
                    pass

    def wait(self) -> list[Outcome]:
        while True:
            busy = [w for w in self._workers if w.job is not None]
            if not busy:
                raise RuntimeError("wait() with no job submitted")
            multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            outcomes: list[Outcome] = []
            for worker in busy:
                if worker.conn.poll():
                    try:
                        kind, payload = worker.conn.recv()
                    except (EOFError, OSError):
                        outcomes += self._died(worker)
                        continue
                    worker.job = None
                    if kind == "raise":
                        raise payload
                    outcomes.append(payload)
                elif not worker.process.is_alive():
                    outcomes += self._died(worker)
            self._dispatch()
            if outcomes:
                return outcomes

    def _died(self, worker: _Worker) -> list[Outcome]:
        """Replace a dead worker; retry its job, or fail it once it has died ``max_retries + 1`` times."""
        job, started = worker.job, worker.started
        assert job is not None
        worker.process.join(timeout=5)
        reason = death_reason(worker.process.exitcode)
        name = f"{os.uname().nodename}:{worker.process.pid}"
        self._replace(worker)
        deaths = self._deaths[job.trial] = self._deaths.get(job.trial, 0) + 1
        if deaths <= self.max_retries:
            if self.on_retry is not None:
                self.on_retry(job, deaths, reason)
            self._queue.insert(0, job)
            return []
        error = f"{reason} while running this trial ({deaths} attempt{'s' if deaths > 1 else ''})"
        return [Outcome(job.trial, TrialState.FAILED, {}, name, started, time.time(), error=error)]

    def shutdown(self) -> None:
        """Stop idle workers; kill busy ones (the loop ended early, e.g. on an error)."""
        for worker in self._workers:
            try:
                if worker.job is None:
                    worker.conn.send(None)
                else:
                    worker.process.kill()
            except OSError:
                pass
        for worker in self._workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers = []
        self._queue.clear()
