"""``searcher=bossnas``: BossNAS (Li et al., ICCV 2021) on a block-wise space (hytra, nb201), self-driven.

The runner hands the run over (``DrivingSearcher.drive``); the search trains the supernet block by
block (ensemble bootstrapping), rates every block's candidates toward the population center, picks
the architecture from the block tables (``strategy``: ``greedy`` = the released chaining, ``dp`` = the
exact minimum of the summed block scores, ``evolution`` = whole architectures evolved toward the
current population's center), then trains the found architecture and a random one of the same space
with the run's evaluator. Files: ``ratings_block<k>.csv``/``.md``/``.npz``, ``collapse.csv`` (the gates),
``supernet.pt`` (resumable), ``bossnas.json``. The supernet is torch only (the JAX backend is not used for the
search); this module imports no torch, the search itself lives in ``_search``.
"""

from __future__ import annotations

from typing import Any

from nas.core.errors import UserError
from nas.searchers.base import SEARCHERS, Drive, DrivingSearcher

OPTIMIZERS = ("lars", "adamw", "sgd")  # nas.evaluators.supernet._bootstrap.OPTIMIZERS (imported lazily: torch)

STRATEGIES = ("greedy", "dp", "evolution")
PREFIXES = ("per_level", "greedy")


INTEGER_OPTIONS = {"steps_per_block": 1, "batch_size": 2, "paths_per_step": 1, "rating_samples": 4, "rating_views": 1,
                   "bn_batch": 2, "checkpoint_every": 1, "log_every": 1, "population": 2,
                   "supernets": 1}


@SEARCHERS.register("bossnas")
class BossNAS(DrivingSearcher):
    """Block-wise self-supervised supernet search (see the module docstring, ``docs/searchers/bossnas.md``).

    Training (``nas.evaluators.supernet``): ``steps_per_block``, ``batch_size``, ``path_sampling`` (``auto``:
    FairNAS-fair sets where the supernet offers them, NB201, as the released NATS/MBConv configs; otherwise
    ``paths_per_step`` uniform paths, HyTra, as released), ``paths_per_step`` (4, uniform sampling only),
    ``optimizer`` (``lars``: trust ratios on every tensor, ``lars_eta``; ``adamw``; ``sgd``), ``lr``,
    ``predictor_lr`` (the predictor's learning rate as a multiple of ``lr``),
    ``momentum``, ``weight_decay``, ``warmup`` (fraction of a block's steps, then cosine to 0), ``base_momentum``
    (EMA, 0.99 -> 1), ``neck_hidden``/``neck_dim``, ``projector_bn`` (the projector ends in a BN without
    affine parameters, as SimSiam's, so projections are centred over the batch), ``prefix_grad`` (earlier
    blocks keep training, as released),
    ``min_crop`` (least crop area of the views), ``target_centering`` (subtract the batch mean of the ensemble
    targets before the loss, as DINO centers its teacher, so a constant prediction earns nothing),
    ``rating_samples`` (fixed rating images; halves give the reproducibility gate), ``rating_views`` (fixed
    pairs of augmented views per rating image, the scores averaged over all of them), ``bn_batch`` (the
    recalibration batch), ``zero_init_residual`` (HyTra's ops; null: the supernet's default). Policy:
    ``strategy``/``prefixes``/``evolution`` (chained spaces),
    ``population``/``population_seed``/``shared_prefix`` (spaces with one path in every block: how many paths
    are rated; ``same``: each after itself in the earlier blocks, training draws random earlier paths;
    ``greedy``: training and rating after the best-rated path of each earlier block, as the released code;
    ``center_top``/``center_iterations``: the population center evolves with the population, as in the paper:
    ``center_iterations`` times, the center becomes the mean target embedding of the best-rated ``center_top``
    fraction of the rated paths; 1.0 keeps the center of all of them; ``supernets``: that many supernets
    (seeds ``seed``, ``seed + 1``, ...) each rate the population, which is ranked by the sum of their ranks).
    Run: ``checkpoint_every``, ``log_every`` (steps), ``threads`` (torch threads; null: torch's default),
    ``device`` (torch device of the supernet, e.g. ``cuda``; checked before the run starts).
    """

    backend_phases = {"block-wise supernet training and rating": ("torch",)}  # the final evaluations use the evaluator

    def __init__(self, steps_per_block: int = 150, batch_size: int = 16, paths_per_step: int = 4,
                 optimizer: str = "lars", lr: float = 2.0, lars_eta: float = 0.01, predictor_lr: float = 1.0,
                 momentum: float = 0.9,
                 weight_decay: float = 1e-6, warmup: float = 0.1, base_momentum: float = 0.99,
                 neck_hidden: int = 256, neck_dim: int = 64, projector_bn: bool = False, prefix_grad: bool = True,
                 min_crop: float = 0.08,
                 target_centering: bool = False,
                 rating_samples: int = 128, rating_views: int = 1, bn_batch: int = 64, strategy: str = "greedy",
                 prefixes: str = "greedy",
                 evolution: dict[str, Any] | None = None, population: int = 64, population_seed: int | None = None,
                 shared_prefix: str = "same", path_sampling: str = "auto", center_top: float = 0.33,
                 center_iterations: int = 5, supernets: int = 1,
                 checkpoint_every: int = 50, log_every: int = 25, threads: int | None = 1,
                 zero_init_residual: bool | None = None, device: str = "cpu") -> None:
        if strategy not in STRATEGIES:
            raise UserError(f"bossnas strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
        if prefixes not in PREFIXES:
            raise UserError(f"bossnas prefixes must be one of {', '.join(PREFIXES)}, got {prefixes!r}")
        if prefixes == "greedy" and strategy != "greedy":
            raise UserError(f"bossnas strategy={strategy} needs prefixes=per_level (with prefixes=greedy each block "
                            "is rated only after the greedy chain)")
        ints = dict(steps_per_block=steps_per_block, batch_size=batch_size, paths_per_step=paths_per_step,
                    rating_samples=rating_samples, rating_views=rating_views, bn_batch=bn_batch,
                    checkpoint_every=checkpoint_every, log_every=log_every, population=population,
                    supernets=supernets)
        for key, low in INTEGER_OPTIONS.items():
            value = ints[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"bossnas {key} must be an integer >= {low}, got {value!r}")
        if population_seed is not None and (not isinstance(population_seed, int) or isinstance(population_seed, bool)):
            raise UserError(f"bossnas population_seed must be an integer or null, got {population_seed!r}")
        if not 0.0 <= float(base_momentum) <= 1.0:
            raise UserError(f"bossnas base_momentum must be in [0, 1], got {base_momentum!r}")
        if not 0.0 <= float(warmup) < 1.0:
            raise UserError(f"bossnas warmup must be a fraction in [0, 1), got {warmup!r}")
        if not 0.0 < float(min_crop) <= 1.0:
            raise UserError(f"bossnas min_crop must be in (0, 1], got {min_crop!r}")
        if path_sampling not in ("auto", "fair", "uniform"):
            raise UserError(f"bossnas path_sampling must be auto, fair or uniform, got {path_sampling!r}")
        if isinstance(center_top, bool) or not isinstance(center_top, (int, float)) or not 0.0 < center_top <= 1.0:
            raise UserError(f"bossnas center_top must be a fraction in (0, 1], got {center_top!r}")
        if not isinstance(center_iterations, int) or isinstance(center_iterations, bool) or center_iterations < 0:
            raise UserError(f"bossnas center_iterations must be an integer >= 0, got {center_iterations!r}")
        if shared_prefix not in ("same", "greedy"):
            raise UserError(f"bossnas shared_prefix must be same or greedy, got {shared_prefix!r}")
        if optimizer not in OPTIMIZERS:
            raise UserError(f"bossnas optimizer must be one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
        for name, value in (("lr", lr), ("lars_eta", lars_eta), ("predictor_lr", predictor_lr)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise UserError(f"bossnas {name} must be positive, got {value!r}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise UserError(f"bossnas threads must be a positive integer or null, got {threads!r}")
        evolution = dict(evolution or {})
        unknown = set(evolution) - {"population", "generations", "tournament", "mutation_rate"}
        if unknown:
            raise UserError(f"bossnas evolution has no options {sorted(unknown)}; "
                            "valid: population, generations, tournament, mutation_rate")
        self.options = dict(ints, optimizer=optimizer, lr=float(lr), lars_eta=float(lars_eta),
                            predictor_lr=float(predictor_lr),
                            momentum=float(momentum), weight_decay=float(weight_decay), warmup=float(warmup),
                            base_momentum=float(base_momentum), neck_hidden=int(neck_hidden),
                            neck_dim=int(neck_dim), projector_bn=bool(projector_bn),
                            prefix_grad=bool(prefix_grad), min_crop=float(min_crop),
                            target_centering=bool(target_centering),
                            strategy=strategy, prefixes=prefixes, population_seed=population_seed,
                            shared_prefix=shared_prefix, path_sampling=path_sampling,
                            center_top=float(center_top), center_iterations=center_iterations, threads=threads,
                            zero_init_residual=zero_init_residual, device=str(device),
                            evolution={"population": 32, "generations": 20, "tournament": 4, "mutation_rate": 0.5,
                                       **evolution})

    def setup(self, space, seed=0, objective=None) -> None:
        if getattr(space, "block_supernet", None) is None:
            raise UserError(f"searcher bossnas needs a space that declares blocks (hytra, nb201), not {space.name!r}")
        if space.name != "hytra" and (self.options["strategy"] != "greedy" or self.options["prefixes"] != "greedy"):
            raise UserError(f"bossnas strategy/prefixes apply to hytra; space {space.name!r} rates a population of "
                            "paths (searcher.population)")
        if space.name == "hytra" and (self.options["population"] != 64 or self.options["population_seed"] is not None
                                      or self.options["shared_prefix"] != "same" or self.options["center_top"] != 0.33
                                      or self.options["center_iterations"] != 5 or self.options["supernets"] != 1):
            raise UserError("bossnas population/population_seed/shared_prefix/center_top/center_iterations/supernets "
                            "apply to "
                            "spaces with one path in every "
                            "block (nb201); "
                            "hytra rates every candidate of a block")
        super().setup(space, seed, objective)

    def drive(self, drive: Drive) -> None:
        from nas.searchers.bossnas._search import run_search

        run_search(self.space, self.seed, self.options, drive)
