"""Evaluations as Ray tasks on a cluster; the driver keeps the loop and the journal.

``address=None`` starts a local cluster bound to 127.0.0.1 (dashboard off) and stops it at the end;
``address="auto"`` or ``"host:port"`` joins a running one. Each trial is a task with
``cpus_per_trial``/``gpus_per_trial``; at most ``max_in_flight`` run at once (default: as many as
the cluster's CPUs allow). A task whose worker process dies is retried by Ray up to ``max_retries``
times; past that the trial is recorded as failed and the search goes on.
"""

from __future__ import annotations

import os
import time
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


class RayExecutor(Executor):
    """Runs ``evaluate_job`` as Ray tasks; ``wait`` returns whichever finish first."""

    def __init__(self, evaluator_spec: dict[str, Any], address: str | None = None, cpus_per_trial: float = 1,
                 gpus_per_trial: float = 0, max_in_flight: int | None = None, max_retries: int = 2,
                 num_cpus: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("runner=ray needs Ray: pip install 'ray[tune]'") from None
        self._ray = ray
        self._started = connect(address, num_cpus)
        self.spec = evaluator_spec
        self._modules = evaluator_modules(evaluator_spec)
        self._task = ray.remote(evaluate_job).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial,
                                                       max_retries=max_retries, retry_exceptions=False)
        cluster_cpus = int(ray.cluster_resources().get("CPU", 1))
        self.capacity = int(max_in_flight or max(1, cluster_cpus // max(cpus_per_trial, 1)))
        self._running: dict[Any, tuple[Job, float]] = {}

    def submit(self, job: Job) -> None:
        ref = self._task.remote(self.spec, job, None, self._modules)
        self._running[ref] = (job, time.time())

    def wait(self) -> list[Outcome]:
        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        outcomes = []
        for ref in ready:
            job, started = self._running.pop(ref)
            try:
                outcomes.append(self._ray.get(ref))
            except UserError:
                raise
            except Exception as exc:  # the worker died more often than max_retries allows
                error = error_line(exc)
                outcomes.append(Outcome(job.trial, TrialState.FAILED, {}, "ray", started, time.time(), error=error))
        return outcomes

    def shutdown(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._started:
            self._ray.shutdown()
