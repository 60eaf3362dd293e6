"""The ``proxy`` evaluator: zero-cost proxies of the untrained network, one metric ``zc_<proxy>`` each.

Options: ``proxies`` (names, see ``nas.evaluators.zero_cost.PROXIES``), ``batch_size`` (examples of the
one batch the data proxies read), ``backend`` (torch, or jax for synflow/naswot/params/macs), ``seed``
(None: the trial's seed draws the weights and the batch; an integer: the same for every candidate, so a
score depends on the architecture alone), ``threads`` (torch threads). Validation happens when the
evaluator is built, which the runner does before it creates the run directory.
"""

from __future__ import annotations

from typing import Any

from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.evaluators.base import EVALUATORS, EvalContext, LoadsDataset
from nas.evaluators.zero_cost.catalog import DATA_FREE, VOTE, check, expand
from nas.evaluators.zero_cost.scores import proxy_scores
from nas.evaluators.zero_cost.vote import VotePool


@EVALUATORS.register("proxy")
class ProxyEvaluator(LoadsDataset):
    """Scores candidates without training; ``zc_vote`` votes against the candidates seen before."""

    def __init__(self, proxies: Any = ("synflow", "naswot"), batch_size: Any = 64, backend: str | None = "torch",
                 seed: Any = None, threads: Any = 1, dataset: dict[str, Any] | None = None, **_: object) -> None:
        self.backend = str(backend or "torch")
        self.proxies = check(list(proxies) if not isinstance(proxies, str) else [proxies], batch_size, self.backend)
        self.batch_size = int(batch_size)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise UserError(f"evaluator.seed must be an integer or null, got {seed!r}")
        self.seed = seed
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise UserError(f"evaluator.threads must be a positive integer or null, got {threads!r}")
        self.threads = threads
        self.dataset_options = dict(dataset or {"name": "digits"})
        self.needs_data = any(name not in DATA_FREE for name in expand(self.proxies))
        self.pool = VotePool() if VOTE in self.proxies else None

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        if self.threads and self.backend == "torch":
            import torch

            torch.set_num_threads(int(self.threads))
        seed = ctx.seed if self.seed is None else self.seed
        data = self.data if self.needs_data else None
        scores = proxy_scores(genotype, self.proxies, data, self.batch_size, seed, self.backend)
        if self.pool is not None:
            scores["zc_vote"] = self.pool.vote(scores)
        return scores
