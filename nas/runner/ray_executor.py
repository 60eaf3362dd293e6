"""Evaluations as Ray tasks on a cluster; the driver keeps the loop and the journal.

``address=None`` starts a local cluster bound to 127.0.0.1 (dashboard off) and stops it at the end;
``address="auto"`` or ``"host:port"`` joins a running one. Each trial is a task with
``cpus_per_trial``/``gpus_per_trial``; at most ``max_in_flight`` run at once (default: as many as
the cluster's CPUs allow). A trial whose worker process dies, or whose node is lost, is submitted again by
this executor (Ray's own task retries are off, so that each retry is seen and journalled) up to ``max_retries``
times; past that it is recorded as failed with the reason and the search goes on.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from nas.core.errors import UserError
from nas.core.result import TrialState
from nas.runner.executors import Executor, Job, Outcome, error_line, evaluate_job, evaluator_modules


def connect(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address``, or start a local one on 127.0.0.1 (dashboard off) when None.

    Returns True when this call started Ray (the caller then shuts it down); False when Ray was
    already initialised in this process or a running cluster was joined.
    """
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
        return False
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    return True


def lost_worker_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task whose worker process or node went away (retrying may succeed elsewhere), as
    opposed to the task's own exception (``RayTaskError``, e.g. a ``UserError``) or a cancel."""
    from ray import exceptions

    return (exceptions.WorkerCrashedError, exceptions.NodeDiedError, exceptions.OutOfMemoryError,
            exceptions.ObjectLostError)


class RayExecutor(Executor):
    """Runs ``evaluate_job`` as Ray tasks; ``wait`` returns whichever finish first.

    A task lost with its worker or node is resubmitted here rather than by Ray (``max_retries=0`` on the task):
    Ray's retries are invisible to the driver, and the run's journal must show each one. ``on_retry(job,
    attempt, reason)`` is told of each retry (the runner journals it as ``retried``)."""

    def __init__(self, evaluator_spec: dict[str, Any], address: str | None = None, cpus_per_trial: float = 1,
                 gpus_per_trial: float = 0, max_in_flight: int | None = None, max_retries: int = 2,
                 num_cpus: int | None = None, on_retry: Callable[[Job, int, str], None] | None = None) -> None:
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise UserError(f"runner.max_retries must be a non-negative integer, got {max_retries!r}")
        try:
            import ray
        except ImportError:
            raise UserError("runner=ray needs Ray: pip install 'ray[tune]'") from None
        self._ray = ray
        self._started = connect(address, num_cpus)
        self.spec = evaluator_spec
        self.max_retries = max_retries
        self.on_retry = on_retry
        self._lost = lost_worker_errors()
        self._modules = evaluator_modules(evaluator_spec)
        self._task = ray.remote(evaluate_job).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                                       max_retries=0, retry_exceptions=False)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = int(max_in_flight or max(1, cluster_cpus // max(cpus_per_trial, 1)))
        self._running: dict[Any, tuple[Job, float]] = {}
        self._losses: dict[int, int] = {}  # trial -> attempts lost with their worker or node

    def submit(self, job: Job) -> None:
        ref = self._task.remote(self.spec, job, None, self._modules)
        self._running[ref] = (job, time.time())

    def wait(self) -> list[Outcome]:
        while True:
            ready, _ = self._ray.wait(list(self._running), num_returns=1)
            outcomes = []
            for ref in ready:
                job, started = self._running.pop(ref)
                try:
                    outcomes.append(self._ray.get(ref))
                except UserError:
                    raise
                except self._lost as exc:
                    outcomes += self._lost_attempt(job, started, error_line(exc))
                except Exception as exc:  # anything else Ray raises for the task: retrying would not help
                    outcomes.append(Outcome(job.trial, TrialState.FAILED, {}, "ray", started, time.time(),
                                            error=error_line(exc)))
            if outcomes:
                return outcomes

    def _lost_attempt(self, job: Job, started: float, reason: str) -> list[Outcome]:
        """Submit the job again, or fail it once it has been lost ``max_retries + 1`` times."""
        losses = self._losses[job.trial] = self._losses.get(job.trial, 0) + 1
        if losses <= self.max_retries:
            if self.on_retry is not None:
                self.on_retry(job, losses, reason)
            self.submit(job)
            return []
        error = f"{reason} ({losses} attempt{'s' if losses > 1 else ''})"
        return [Outcome(job.trial, TrialState.FAILED, {}, "ray", started, time.time(), error=error)]

    def shutdown(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._started:
            self._ray.shutdown()
