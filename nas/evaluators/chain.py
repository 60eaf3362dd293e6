"""The ``chain`` evaluator: zero-cost proxies, then a short training, then the full training (multi-fidelity).

An evaluator sees one candidate at a time, so "keep the best fraction" is decided online: each stage keeps a
pool of the scores of the candidates that reached it in this process, and a new candidate passes a stage
when fewer than ``keep[i]`` of the candidates seen there, itself included, score strictly better (after
``warmup`` candidates, which always pass). Stage 0 ranks by the rank-sum of ``proxies`` over the pool; stage
1 by the short training's ``valid_accuracy``. A candidate cut by a stage raises ``Pruned`` with the metrics
it has (the runner records it as a pruned trial, which every searcher ranks below any completed one, and
``best.json`` never picks); one that passes both is trained from scratch for ``epochs`` and returns what
``evaluator=train`` would. ``chain_stage`` (0, 1, 2) says how far a candidate went. The pools live in the
evaluator, so with ``runner.workers>1`` or Ray every worker process decides against its own candidates
only; in-process runs rebuild them from the journal on resume (``begin``). Details: docs/evaluators.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from nas.backends.training import Pruned
from nas.core.cost import arch_cost
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.evaluators.base import EVALUATORS, EvalContext, LoadsDataset
from nas.evaluators.train import TrainEvaluator, _number
from nas.evaluators.zero_cost.catalog import DATA_FREE, PROXIES, VOTE, VOTE_MEMBERS, check
from nas.evaluators.zero_cost.scores import proxy_scores
from nas.spaces.resolve import space_of

STAGES = ("proxy", "short", "full")
SHORT = "short_"  # prefix of the short training's metrics (and of its per-epoch reports)


def average_ranks(column: np.ndarray) -> np.ndarray:
    """1-based ranks of ``column`` (1 = lowest), ties sharing their average rank."""
    ordered = np.sort(column)
    below = np.searchsorted(ordered, column, side="left")
    through = np.searchsorted(ordered, column, side="right")
    return (below + through + 1) / 2.0


class StagePool:
    """The scores of the candidates that reached one stage (in this process), to cut a new one against.

    A row holds one score per ranking criterion (higher is better); several criteria are combined by the
    sum of each one's rank over the pool and the new row, so scale (synflow spans tens of orders of
    magnitude) does not matter and one criterion reduces to comparing the raw scores.
    """

    def __init__(self, keep: float, warmup: int) -> None:
        self.keep = keep
        self.warmup = warmup
        self.rows: list[np.ndarray] = []

    def better_fraction(self, row: np.ndarray) -> float:
        """Fraction of the candidates seen, ``row`` included, whose rank-sum is strictly above ``row``'s."""
        table = np.stack([*self.rows, row])
        combined = sum(average_ranks(table[:, j]) for j in range(table.shape[1]))
        return float((combined[:-1] > combined[-1]).sum()) / len(table)

    def decide(self, row: np.ndarray) -> tuple[bool, float, int]:
        """(passes, better fraction, candidates seen before), then remember ``row``. A candidate passes
        during the warm-up (fewer than ``warmup`` seen) or when its better fraction is below ``keep``."""
        seen = len(self.rows)
        fraction = self.better_fraction(row)
        self.rows.append(np.asarray(row, dtype=np.float64))
        return seen < self.warmup or fraction < self.keep, fraction, seen


def _keep(keep: Any) -> tuple[float, float]:
    """``keep`` as two fractions in (0, 1] (proxy -> short, short -> full); else a one-line ``UserError``."""
    items = [keep] if isinstance(keep, (int, float, str)) else list(keep) if keep is not None else []
    if len(items) != 2:
        raise UserError(f"evaluator.keep must be two fractions [proxy->short, short->full], got {keep!r}")
    for value in items:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
            raise UserError(f"evaluator.keep fractions must be numbers in (0, 1], got {keep!r}")
    return float(items[0]), float(items[1])


@EVALUATORS.register("chain")
class ChainEvaluator(LoadsDataset):
    """Proxy -> short training -> full training; each stage passes on the best ``keep`` fraction seen so far."""

    def __init__(self, proxies: Any = ("synflow", "naswot"), keep: Any = (0.5, 0.25), warmup: Any = 4,
                 short_epochs: Any = 1, epochs: Any = 3, proxy_batch_size: Any = 64, backend: str | None = "torch",
                 dataset: dict[str, Any] | None = None, batch_size: Any = 64, lr: Any = 0.05, momentum: Any = 0.9,
                 weight_decay: Any = 5e-4, max_steps_per_epoch: Any = None, device: str | None = None,
                 threads: Any = 1, **_: object) -> None:
        self.keep = _keep(keep)
        self.warmup = _number("warmup", warmup, int, 0)
        self.backend_name = str(backend or "torch")
        names = [proxies] if isinstance(proxies, str) else list(proxies or [])
        unknown = [str(name) for name in names if name not in PROXIES]
        if unknown:
            raise UserError(f"unknown proxy {unknown[0]!r}; valid choices: "
                            f"{', '.join(name for name in PROXIES if name != VOTE)}")
        if VOTE in names:
            raise UserError(f"evaluator.proxies: {VOTE!r} scores a candidate against others, not on its own; "
                            f"list its members ({', '.join(VOTE_MEMBERS)}) to rank by their rank-sum")
        self.proxy_batch_size = _number("proxy_batch_size", proxy_batch_size, int, 1)
        self.proxies = check(names, self.proxy_batch_size, self.backend_name)
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise UserError(f"evaluator.threads must be a positive integer or null, got {threads!r}")
        self.threads = threads
        self.dataset_options = dict(dataset or {"name": "digits"})
        short = _number("short_epochs", short_epochs, int, 1)
        full = _number("epochs", epochs, int, 1)
        if short >= full:
            raise UserError(f"evaluator.short_epochs must be below evaluator.epochs, got {short} >= {full}")
        common = dict(backend=self.backend_name, dataset=self.dataset_options, batch_size=batch_size, lr=lr,
                      momentum=momentum, weight_decay=weight_decay, max_steps_per_epoch=max_steps_per_epoch,
                      device=device, threads=threads)
        self.short = TrainEvaluator(epochs=short, **common)
        self.full = TrainEvaluator(epochs=full, **common)
        self.short_epochs = short
        self.pools = self.empty_pools()

    def empty_pools(self) -> tuple[StagePool, StagePool]:
        """The proxy stage's pool (cut at ``keep[0]``) and the short training's (``keep[1]``), empty."""
        return StagePool(self.keep[0], self.warmup), StagePool(self.keep[1], self.warmup)

    def begin(self, history: Iterable[Result]) -> None:
        """Start a search in this process: empty pools, refilled from its finished trials (a resumed run).

        The runner calls this before the first trial of every in-process search, so a second search in the
        same process does not inherit the first one's scores, and a resumed one decides as the uninterrupted
        run would have (a decision depends on the set of scores seen, not their order). A trial that failed
        after its proxy stage left no metrics and is missing from the rebuilt pool."""
        self.pools = self.empty_pools()
        for result in history:
            metrics = result.metrics
            if "chain_proxy_seen" in metrics:
                self.pools[0].rows.append(self._proxy_row(metrics))
            if "chain_short_seen" in metrics:
                self.pools[1].rows.append(np.array([metrics[SHORT + "valid_accuracy"]], dtype=np.float64))

    def _proxy_row(self, scores: Mapping[str, float]) -> np.ndarray:
        return np.array([scores[f"zc_{name}"] for name in self.proxies], dtype=np.float64)

    def _train(self, stage: TrainEvaluator, genotype: Genotype, ctx: EvalContext, prefix: str, offset: int,
               metrics: dict[str, float], reached: int) -> dict[str, float]:
        """One training stage from scratch under the trial's seed; its per-epoch reports go on to ``ctx`` as
        ``<prefix><metric>`` at epoch ``offset + epoch`` (epochs trained on this trial so far). A searcher that
        prunes it ends the trial as pruned with what the stage had."""
        stage._data = self.data  # both stages read the chain's one copy of the dataset

        def report(epoch: int, values: dict[str, float]) -> bool:
            return ctx.report(offset + epoch, {prefix + k: v for k, v in values.items()})

        try:
            out = stage(genotype, EvalContext(trial=ctx.trial, seed=ctx.seed, worker=ctx.worker, report=report))
        except Pruned as pruned:
            partial = {prefix + k: float(v) for k, v in pruned.metrics.items()}
            raise Pruned(offset + pruned.epoch, {**metrics, **partial, "chain_stage": float(reached)}) from None
        return {prefix + k: float(v) for k, v in out.items()}

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        if self.threads and self.backend_name == "torch":
            import torch

            torch.set_num_threads(int(self.threads))
        data = None if all(name in DATA_FREE for name in self.proxies) else self.data
        scores = proxy_scores(genotype, self.proxies, data, self.proxy_batch_size, ctx.seed, self.backend_name)
        metrics: dict[str, float] = {**scores, **arch_cost(space_of(genotype).decode(genotype)), "chain_stage": 0.0}
        passes, fraction, seen = self.pools[0].decide(self._proxy_row(scores))
        metrics.update(chain_proxy_better=fraction, chain_proxy_seen=float(seen))
        if not passes:
            raise Pruned(0, metrics)
        metrics.update(self._train(self.short, genotype, ctx, SHORT, 0, metrics, 1), chain_stage=1.0)
        passes, fraction, seen = self.pools[1].decide(np.array([metrics[SHORT + "valid_accuracy"]]))
        metrics.update(chain_short_better=fraction, chain_short_seen=float(seen))
        if not passes:
            raise Pruned(self.short_epochs, metrics)
        metrics.update(self._train(self.full, genotype, ctx, "", self.short_epochs, metrics, 2), chain_stage=2.0)
        return metrics
