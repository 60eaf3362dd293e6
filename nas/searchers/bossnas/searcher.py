"""``searcher=bossnas``: BossNAS (Li et al., ICCV 2021) on the HyTra space, as a self-driven searcher.

The runner hands the run over (``DrivingSearcher.drive``); the search trains the supernet block by
block (ensemble bootstrapping), rates every block's candidates toward the population center, picks
the architecture from the block tables (``strategy``: ``greedy`` = the released chaining, ``dp`` = the
exact minimum of the summed block scores, ``evolution`` = whole architectures evolved toward the
current population's center), then trains the found architecture and a random one of the same space
with the run's evaluator. Files: ``ratings_block<k>.csv``/``.md``/``.npz``, ``supernet.pt`` (resumable),
``bossnas.json``. The supernet is torch only (the JAX backend is not used for the search); this module
imports no torch, the search itself lives in ``_search``.
"""

from __future__ import annotations

from typing import Any

from nas.core.errors import UserError
from nas.searchers.base import SEARCHERS, Drive, DrivingSearcher

STRATEGIES = ("greedy", "dp", "evolution")
PREFIXES = ("per_level", "greedy")


@SEARCHERS.register("bossnas")
class BossNAS(DrivingSearcher):
    """Block-wise self-supervised supernet search (see the module docstring and ``docs/spaces/hytra.md``).

    Options: ``steps_per_block``, ``batch_size``, ``paths_per_step`` (4), ``lr``/``momentum``/``weight_decay``/
    ``warmup`` (SGD with warm-up and cosine decay, restarting each block), ``base_momentum`` (EMA, 0.99 -> 1),
    ``neck_hidden``/``neck_dim`` (projector and predictor sizes), ``rating_samples`` (fixed rating
    images, two views each), ``bn_batch`` (the recalibration batch), ``strategy``, ``prefixes``
    (``per_level``: each block is trained and rated after the best prefix ending at every level it can
    start at, which the DP and the evolution need; ``greedy``: only after the greedy chain, as released),
    ``evolution`` (population, generations, tournament, mutation_rate), ``checkpoint_every`` (steps),
    ``log_every`` (steps), ``threads`` (torch threads of the search, 1 like the ``train`` evaluator's trials:
    on a shared 2-core machine torch's default of 2 threads ran more than 10 times slower; null: torch's default).
    """

    def __init__(self, steps_per_block: int = 24, batch_size: int = 16, paths_per_step: int = 4, lr: float = 0.05,
                 momentum: float = 0.9, weight_decay: float = 1e-6, warmup: float = 0.1, base_momentum: float = 0.99,
                 neck_hidden: int = 512, neck_dim: int = 64, rating_samples: int = 32, bn_batch: int = 32,
                 strategy: str = "greedy", prefixes: str = "greedy", evolution: dict[str, Any] | None = None,
                 checkpoint_every: int = 10, log_every: int = 5, threads: int | None = 1,
                 zero_init_residual: bool = True, optimizer: str = "sgd", lars_eta: float = 0.001) -> None:
        if strategy not in STRATEGIES:
            raise UserError(f"bossnas strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if prefixes not in PREFIXES:
            raise UserError(f"bossnas prefixes must be one of {', '.join(PREFIXES)}, got {prefixes!r}")
        if prefixes == "greedy" and strategy != "greedy":
            raise UserError(f"bossnas strategy={strategy} needs prefixes=per_level (with prefixes=greedy each block "
                            "is rated only after the greedy chain)")
        for key, value, low in (("steps_per_block", steps_per_block, 1), ("batch_size", batch_size, 2),
                                ("paths_per_step", paths_per_step, 1), ("rating_samples", rating_samples, 2),
                                ("bn_batch", bn_batch, 2), ("checkpoint_every", checkpoint_every, 1),
                                ("log_every", log_every, 1)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"bossnas {key} must be an integer >= {low}, got {value!r}")
        if not 0.0 <= float(base_momentum) <= 1.0:
            raise UserError(f"bossnas base_momentum must be in [0, 1], got {base_momentum!r}")
        if not 0.0 <= float(warmup) < 1.0:
            raise UserError(f"bossnas warmup must be a fraction in [0, 1), got {warmup!r}")
        if optimizer not in ("lars", "sgd"):
            raise UserError(f"bossnas optimizer must be lars or sgd, got {optimizer!r}")
        if not float(lars_eta) > 0:
            raise UserError(f"bossnas lars_eta must be positive, got {lars_eta!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise UserError(f"bossnas threads must be a positive integer or null, got {threads!r}")
        evolution = dict(evolution or {})
        unknown = set(evolution) - {"population", "generations", "tournament", "mutation_rate"}
        if unknown:
            raise UserError(f"bossnas evolution has no options {sorted(unknown)}; "
                            "valid: population, generations, tournament, mutation_rate")
        self.options = dict(steps_per_block=steps_per_block, batch_size=batch_size, paths_per_step=paths_per_step,
                            lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay),
                            warmup=float(warmup), base_momentum=float(base_momentum), neck_hidden=int(neck_hidden),
                            neck_dim=int(neck_dim), rating_samples=rating_samples, bn_batch=bn_batch,
                            strategy=strategy, prefixes=prefixes, checkpoint_every=checkpoint_every,
                            log_every=log_every, threads=threads, zero_init_residual=bool(zero_init_residual),
                            optimizer=optimizer, lars_eta=float(lars_eta),
                            evolution={"population": 32, "generations": 20, "tournament": 4, "mutation_rate": 0.5,
                                       **evolution})

    def setup(self, space, seed=0, objective=None) -> None:
        if space.name != "hytra":
            raise UserError(f"searcher bossnas searches the hytra space, not {space.name!r} (use space=hytra)")
        super().setup(space, seed, objective)

    def drive(self, drive: Drive) -> None:
        from nas.searchers.bossnas._search import run_search

        run_search(self.space, self.seed, self.options, drive)
