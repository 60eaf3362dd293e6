"""The block-wise self-supervised supernet trainer (ensemble bootstrapping), shared by every block-wise space.

``BlockwiseTrainer`` owns the online/target supernets with their necks, the data, the augmented views, the
random streams and the optimizer of the block in training. A searcher tells it which block to train, which
prefix and candidates to sample each step (``train_block``) and which entries to rate (``rate``); the policy
(what is chosen after a block, the final architecture) stays with the searcher. Every ``log_every`` steps
the collapse gates of the training batch (batch cosines of predictions, online projections and ensemble
targets) go to ``collapse.csv`` and the log; ``rate`` adds the rating's gates (prediction and target batch
cosines, spread of the scores, their Spearman between two halves of the rating images). ``state``/``restore``
checkpoint everything a resumed run needs to continue bit for bit.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.backends.torch.optim import set_lr, warmup_cosine
from nas.backends.torch.supernets.blockwise import BlockSupernet
from nas.backends.torch.supernets.blockwise import Path as BlockPath
from nas.data.base import ArrayDataset
from nas.evaluators.supernet._bootstrap import Siamese, ema_momentum, make_optimizer, sample_paths, train_step
from nas.evaluators.supernet._loop import eta, run_steps
from nas.evaluators.supernet._rating import rate_block
from nas.evaluators.supernet._views import Views
from nas.evaluators.supernet.embeddings import EmbeddingTable, rating_gates

COLLAPSE_COLUMNS = ("block", "step", "pred_batch_cos", "proj_batch_cos", "target_batch_cos", "rating_spread",
                    "rating_reproducibility")
PrefixSampler = Callable[[random.Random], tuple[int, Sequence[BlockPath]]]


@dataclass(frozen=True)
class BootstrapConfig:
    """Options of the block-wise training and rating (the searcher's yaml documents each)."""

    steps_per_block: int = 150
    batch_size: int = 16
    paths_per_step: int = 4
    optimizer: str = "lars"
    lr: float = 2.0
    lars_eta: float = 0.01
    predictor_lr: float = 1.0
    momentum: float = 0.9
    weight_decay: float = 1e-6
    warmup: float = 0.1
    base_momentum: float = 0.99
    neck_hidden: int = 256
    neck_dim: int = 64
    projector_bn: bool = False
    prefix_grad: bool = True
    target_centering: bool = False
    rating_samples: int = 128
    rating_views: int = 1
    bn_batch: int = 64
    min_crop: float = 0.08
    log_every: int = 25
    checkpoint_every: int = 50
    device: str = "cpu"


class BlockwiseTrainer:
    """Online and target supernets trained block by block toward the ensemble of sampled paths."""

    def __init__(self, make_supernet: Callable[[], BlockSupernet], data: ArrayDataset, config: BootstrapConfig,
                 seed: int, run_dir: Path | None = None, log: Callable[[str], None] = print,
                 resample_necks: bool = True) -> None:
        self.cfg, self.seed, self.log = config, seed, log
        self.run_dir = None if run_dir is None else Path(run_dir)
        from nas.backends.torch.device import torch_device

        torch.manual_seed(seed)
        self.device = torch_device(config.device)
        self.model = Siamese(make_supernet, config.neck_hidden, config.neck_dim, resample_necks,
                             config.projector_bn).to(self.device)
        self.train_x = torch.from_numpy(data.train_x)
        low, high = float(self.train_x.min()), float(self.train_x.max())
        fixed = Views(low, high, seed=seed + 1, min_crop=config.min_crop)
        rate_x = torch.from_numpy(data.valid_x[:config.rating_samples])
        if len(rate_x) < 4:
            raise ValueError(f"rating needs at least 4 validation images, the dataset has {len(rate_x)}")
        # views are drawn on the CPU (one seeded generator, identical on every device), then moved; with several
        # view pairs per image the rows are image-major (image i's pairs are rows i*k .. i*k+k-1), so the halves of
        # the reproducibility gate split the images, not the views
        pairs = [(fixed.view(rate_x, "A"), fixed.view(rate_x, "B")) for _ in range(config.rating_views)]
        self.view1 = torch.stack([a for a, _ in pairs], 1).flatten(0, 1).to(self.device)
        self.view2 = torch.stack([b for _, b in pairs], 1).flatten(0, 1).to(self.device)
        self.bn_batch = fixed.view(self.train_x[:config.bn_batch], "A").to(self.device)
        self.views = Views(low, high, seed=seed, min_crop=config.min_crop)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.step = 0
        self.optimizer: torch.optim.Optimizer | None = None
        self._opt_state: dict | None = None

    @property
    def blocks(self) -> int:
        return self.model.online.blocks

    # --- training ---------------------------------------------------------------------------------
    def train_block(self, block: int, sample_prefix: PrefixSampler,
                    candidates: Callable[[int], Sequence[BlockPath]],
                    checkpoint: Callable[[], None] | None = None, fair: bool = False) -> dict[str, float]:
        """Train block ``block`` from ``self.step`` to ``steps_per_block``; each step draws a prefix (start
        level, earlier paths) and ``paths_per_step`` candidates of that start level drawn uniformly, or with
        ``fair`` the supernet's FairNAS-fair set (every choice of every position once). Returns the last gates."""
        cfg = self.cfg
        self.optimizer = make_optimizer(self.model, block, cfg.lr, cfg.momentum, cfg.weight_decay, cfg.optimizer,
                                        cfg.lars_eta, cfg.predictor_lr)
        if self._opt_state is not None:
            self.optimizer.load_state_dict(self._opt_state)
            self._opt_state = None
        self.model.train()
        total = cfg.steps_per_block
        window: list[dict[str, float]] = []
        last: dict[str, float] = {}

        def one_step() -> None:
            step = self.step
            set_lr(self.optimizer, warmup_cosine(cfg.lr, step, total, cfg.warmup))
            start, prefix = sample_prefix(self.rng)
            paths = (self.model.online.fair_paths(block, start, self.rng) if fair
                     else sample_paths(candidates(start), cfg.paths_per_step, self.rng))
            idx = torch.from_numpy(self.np_rng.choice(len(self.train_x), cfg.batch_size, replace=False))
            views_a, views_b = self.views.pairs(self.train_x[idx], len(paths))
            views_a, views_b = [v.to(self.device) for v in views_a], [v.to(self.device) for v in views_b]
            self.optimizer.zero_grad(set_to_none=True)
            window.append(train_step(self.model, block, prefix, paths, views_a, views_b, cfg.prefix_grad,
                                     cfg.target_centering))
            self.optimizer.step()
            self.model.momentum_update(block, ema_momentum(cfg.base_momentum, step, total))
            self.step += 1

        def progress(done: int, per_step: float) -> None:
            last.update({k: float(np.mean([w[k] for w in window])) for k in window[0]})
            window.clear()
            self._collapse_row(block, done, last)
            self.log(f"bossnas block {block + 1}/{self.blocks} step {done}/{total} loss {last['loss']:.4f} "
                     f"pred/proj/target batch cos {last['pred_batch_cos']:.3f}/{last['proj_batch_cos']:.3f}/"
                     f"{last['target_batch_cos']:.3f} ({eta(per_step, total - done)} of the block)")

        run_steps(lambda: self.step, one_step, total, cfg.log_every, progress, cfg.checkpoint_every, checkpoint)
        self.optimizer = None
        return last

    def _collapse_row(self, block: int, step: int, values: Mapping[str, float]) -> None:
        if self.run_dir is None:
            return
        path = self.run_dir / "collapse.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(COLLAPSE_COLUMNS)
            writer.writerow([block, step, *(("" if values.get(k) is None else f"{values[k]:.6f}")
                                            for k in COLLAPSE_COLUMNS[2:])])

    # --- rating -----------------------------------------------------------------------------------
    def rate(self, block: int, entries: Sequence[tuple[int, Sequence[BlockPath], BlockPath]],
             proj_batch_cos: float | None = None) -> tuple[EmbeddingTable, dict[str, float]]:
        """Embeddings of ``entries`` (start level, prefix, path) on the fixed rating views and their gates
        (written to ``collapse.csv`` as the block's rating row)."""
        table = rate_block(self.model, block, entries, self.view1, self.view2, self.bn_batch)
        self.model.train()
        gates = {**rating_gates(table), "proj_batch_cos": proj_batch_cos}
        self._collapse_row(block, self.cfg.steps_per_block, gates)
        return table, gates

    # --- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"step": self.step, "model": self.model.state_dict(),
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
                "rng": self.rng.getstate(), "np_rng": self.np_rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "views_rng": self.views.gen.get_state(),
                "config": asdict(self.cfg)}

    def restore(self, state: Mapping[str, Any], block: int) -> None:
        """Continue from a checkpoint taken at ``block`` (``collapse.csv`` loses the rows written after it)."""
        self.model.load_state_dict({k: v.to(self.device) for k, v in state["model"].items()})
        self.step = int(state["step"])
        self.rng.setstate(state["rng"])
        self.np_rng.bit_generator.state = state["np_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.views.gen.set_state(state["views_rng"])
        self._opt_state = state["optimizer"]
        path = None if self.run_dir is None else self.run_dir / "collapse.csv"
        if path is not None and path.exists():
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            kept = [r for r in rows[1:] if (int(r[0]), int(r[1])) <= (block, self.step)]
            if self.step == 0:
                kept = [r for r in kept if int(r[0]) < block]
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows([rows[0], *kept])

    def new_block(self) -> None:
        """Start the next block's step count (after a block's rating)."""
        self.step = 0
