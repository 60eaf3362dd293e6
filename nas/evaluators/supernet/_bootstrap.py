"""BossNAS's block-wise self-supervised training with ensemble bootstrapping (torch).

An online supernet is trained; a target supernet is its EMA (no gradients). Each block has an online
and a target projector and an online predictor. One step of block k (``train_step``):

1. Sample up to ``paths`` distinct candidate paths of block k (the same for online and target).
2. Path p sees its own pair of views (A_p, B_p). Earlier blocks run along their chosen paths (online
   weights for the online branch, target weights for the target branch; the online prefix keeps
   receiving gradients, as in the released code).
3. Target ensemble: the L2-normalised target projections of every sampled path, averaged over paths
   (t_A, t_B).
4. Each online path p: loss_p = l(online_p(A_p), t_B) + l(online_p(B_p), t_A), backpropagated one path at
   a time, with l(q, t) = -2 mean cos(predictor(q), t) (BYOL's head).
5. One optimizer step, then target <- m target + (1 - m) online over the backbone and block k's
   projector, with m going from ``base`` to 1 on a cosine over the block's steps.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import torch
from torch import nn

from nas.backends.torch.supernets.blockwise import BlockSupernet, Path
from nas.evaluators.supernet._lars import LARS
from nas.evaluators.supernet._necks import Predictor, Projector


def ema_momentum(base: float, step: int, total: int) -> float:
    """BYOL's target momentum at ``step`` of ``total``: 1 - (1 - base) (cos(pi step / total) + 1) / 2."""
    return 1.0 - (1.0 - base) * (math.cos(math.pi * step / max(total, 1)) + 1.0) / 2.0


def byol_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-2 times the batch mean cosine similarity of prediction and target (normalised MSE minus 2)."""
    p = nn.functional.normalize(prediction, dim=1)
    t = nn.functional.normalize(target, dim=1)
    return -2.0 * (p * t).sum(1).mean()


def ensemble_target(projections: Sequence[torch.Tensor]) -> torch.Tensor:
    """The bootstrapping target: the mean over sampled paths of their L2-normalised target projections."""
    return torch.stack([nn.functional.normalize(p, dim=1) for p in projections]).mean(0)


class Siamese(nn.Module):
    """Online and target supernets with per-block projectors and online predictors."""

    def __init__(self, make_supernet: Callable[[], BlockSupernet], hidden: int, dim: int,
                 resample: bool = True, projector_bn: bool = False) -> None:
        super().__init__()
        self.online = make_supernet()
        blocks, channels = self.online.blocks, self.online.channels
        neck = lambda: Projector(channels, hidden, dim, resample, projector_bn)  # noqa: E731
        self.online_necks = nn.ModuleList(neck() for _ in range(blocks))
        self.predictors = nn.ModuleList(Predictor(dim, hidden) for _ in range(blocks))
        self.target = make_supernet()  # built afresh and loaded: much faster than deep-copying the graphs
        self.target.load_state_dict(self.online.state_dict())
        self.target_necks = nn.ModuleList(neck() for _ in range(blocks))
        self.target_necks.load_state_dict(self.online_necks.state_dict())
        for p in [*self.target.parameters(), *self.target_necks.parameters()]:
            p.requires_grad_(False)

    def trainable(self, block: int) -> list[nn.Parameter]:
        """What block ``block``'s optimizer updates: the online backbone, that block's projector and predictor."""
        return [*self.online.parameters(), *self.online_necks[block].parameters(),
                *self.predictors[block].parameters()]

    @torch.no_grad()
    def momentum_update(self, block: int, m: float) -> None:
        """target <- m target + (1 - m) online, over the backbone and block ``block``'s projector."""
        pairs = [(self.online, self.target), (self.online_necks[block], self.target_necks[block])]
        for online, target in pairs:
            for po, pt in zip(online.parameters(), target.parameters()):
                pt.mul_(m).add_(po.detach(), alpha=1.0 - m)

    def embed(self, net: BlockSupernet, neck: Projector, x: torch.Tensor, prefix: Sequence[Path], block: int,
              path: Path) -> torch.Tensor:
        """Projection of block ``block``'s output along ``prefix`` then ``path``."""
        feats, level = net.run_prefix(x, prefix)
        return neck(net.run_block(feats, block, level, path), net.end_level(block, path))


def sample_paths(candidates: Sequence[Path], k: int, rng: random.Random) -> list[Path]:
    """``k`` distinct paths drawn uniformly (all of them when there are fewer)."""
    return rng.sample(list(candidates), min(k, len(candidates)))


def batch_cosine(x: torch.Tensor) -> float:
    """Mean cosine between the vectors of different samples of a batch: near 1 when they all point one way
    (a collapsed embedding), near 0 for spread-out ones."""
    u = nn.functional.normalize(x.detach().float(), dim=1)
    n = u.shape[0]
    total = u.sum(0)
    return float(((total @ total) - n) / max(n * (n - 1), 1))


def train_step(model: Siamese, block: int, prefix: Sequence[Path], paths: Sequence[Path],
               views_a: Sequence[torch.Tensor], views_b: Sequence[torch.Tensor],
               prefix_grad: bool = True, center_targets: bool = False) -> dict[str, float]:
    """Forward and backward of one ensemble-bootstrapping step (gradients accumulate; no optimizer step).

    ``prefix_grad=False`` runs the earlier blocks without gradients (they are not trained by later blocks).
    ``center_targets`` subtracts the batch mean of the ensemble targets (both views) before the loss: when the
    targets share a large common direction, a predictor that outputs that direction for every input lowers the
    loss without reading its input (the predictions collapse); centred targets leave it nothing to gain.
    Returns the mean over paths of the symmetric loss and the batch cosines of the predictions, online
    projections and ensemble targets (the collapse gates).
    """
    with torch.no_grad():
        t_a = ensemble_target([model.embed(model.target, model.target_necks[block], views_a[i], prefix, block, p)
                               for i, p in enumerate(paths)])
        t_b = ensemble_target([model.embed(model.target, model.target_necks[block], views_b[i], prefix, block, p)
                               for i, p in enumerate(paths)])
        target_cos = batch_cosine(t_a)
        if center_targets:
            center = torch.cat([t_a, t_b]).mean(0, keepdim=True)
            t_a, t_b = t_a - center, t_b - center
    neck, head, net = model.online_necks[block], model.predictors[block], model.online
    total, pred_cos, proj_cos = 0.0, 0.0, 0.0
    for i, path in enumerate(paths):
        zs = []
        for view in (views_a[i], views_b[i]):
            with torch.set_grad_enabled(prefix_grad):
                feats, level = net.run_prefix(view, prefix)
            zs.append(neck(net.run_block(feats, block, level, path), net.end_level(block, path)))
        q_a, q_b = head(zs[0]), head(zs[1])
        loss = byol_loss(q_a, t_b) + byol_loss(q_b, t_a)
        loss.backward()
        total += float(loss.detach())
        pred_cos += batch_cosine(q_a)
        proj_cos += batch_cosine(zs[0])
    k = len(paths)
    return {"loss": total / k, "pred_batch_cos": pred_cos / k, "proj_batch_cos": proj_cos / k,
            "target_batch_cos": target_cos}


OPTIMIZERS = ("lars", "adamw", "sgd")


def make_optimizer(model: Siamese, block: int, lr: float, momentum: float, weight_decay: float,
                   kind: str = "lars", eta: float = 0.01, predictor_lr: float = 1.0) -> torch.optim.Optimizer:
    """The optimizer of one block's training; BN and bias tensors never take weight decay.

    ``lars`` (default): the released optimiser with trust ratios on every tensor (``LARS``): each step moves a
    tensor by about ``lr * eta`` of its norm whatever the gradient's scale, so the predictor's tiny initial
    outputs (whose cosine-loss gradients scale with 1/|q|) cannot blow up its weights; ``adamw``: per-element
    steps bounded by ``lr``; ``sgd``: heavy-ball momentum (collapses at small batches, kept for comparison).
    ``predictor_lr`` scales the predictor's learning rate (groups carry ``lr_scale``; the schedule multiplies
    it in): BYOL and SimSiam report that a predictor trained faster than the encoder tracks the targets instead
    of emitting their common direction (the predictions' batch cosine gate).
    """
    head = {id(p) for p in model.predictors[block].parameters()} if predictor_lr != 1.0 else set()
    groups = []
    for scale, members in ((1.0, [p for p in model.trainable(block) if id(p) not in head]),
                           (predictor_lr, [p for p in model.trainable(block) if id(p) in head])):
        if members:
            groups += [{"params": [p for p in members if p.ndim > 1], "weight_decay": weight_decay, "lr_scale": scale},
                       {"params": [p for p in members if p.ndim <= 1], "weight_decay": 0.0, "lr_scale": scale}]
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(momentum, 0.999))
    if kind == "lars":
        return LARS(groups, lr=lr, momentum=momentum, eta=eta)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise ValueError(f"unknown optimizer {kind!r}; valid: {', '.join(OPTIMIZERS)}")
