"""Rating candidate paths toward the population center (torch side; the scoring is in ``embeddings``).

As the released ``ValBestPathHook``: fixed views of fixed images (generated once), BN statistics
recalibrated on one fixed training batch before each candidate (running stats reset, one forward in
train mode, i.e. that batch's statistics), the earlier blocks run on the *target* network along the
entry's prefix, then for every candidate the target projections (averaged over the population into the
center) and the online predictions are kept. Differences, for a CPU budget and a clean state: a prefix
is recalibrated once for all the entries that share it (its statistics do not depend on the candidate),
the predictor's BN is recalibrated as well (the released hook resets it without refilling it), and every
BN buffer and momentum is restored afterwards so rating does not disturb training.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from nas.backends.torch.supernets.blockwise import Path
from nas.evaluators.supernet._bootstrap import Siamese
from nas.evaluators.supernet.embeddings import EmbeddingTable

BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d)


@contextmanager
def preserved_bn(model: nn.Module) -> Iterator[None]:
    """Restore every BN buffer, momentum and the train/eval flags on exit."""
    bns = [m for m in model.modules() if isinstance(m, BN_TYPES)]
    saved = [(m.momentum, m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone()) for m in bns]
    modes = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for m, (momentum, mean, var, count) in zip(bns, saved):
            m.momentum = momentum
            m.running_mean.copy_(mean)
            m.running_var.copy_(var)
            m.num_batches_tracked.copy_(count)
        for m, mode in modes:
            m.training = mode


def _recalibrating(modules: Sequence[nn.Module]) -> None:
    """Reset the BN statistics of ``modules`` and let the next forward set them (cumulative average)."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, BN_TYPES):
                m.reset_running_stats()
                m.momentum = None
                m.train()


def _freeze(modules: Sequence[nn.Module]) -> None:
    for module in modules:
        module.eval()


@torch.no_grad()
def rate_block(model: Siamese, block: int, entries: Sequence[tuple[int, Sequence[Path], Path]],
               view1: torch.Tensor, view2: torch.Tensor, bn_batch: torch.Tensor) -> EmbeddingTable:
    """Embeddings of block ``block``'s entries ``(start level, prefix paths, path)`` (see the module doc)."""
    online, target = model.online, model.target
    o_neck, t_neck, head = model.online_necks[block], model.target_necks[block], model.predictors[block]
    keys, pred1, pred2, tgt1, tgt2 = [], [], [], [], []
    groups: dict[tuple[Path, ...], list[tuple[int, Path]]] = {}
    for start, prefix, path in entries:
        groups.setdefault(tuple(tuple(p) for p in prefix), []).append((start, tuple(path)))
    with preserved_bn(model):
        model.eval()
        for prefix, members in groups.items():
            _recalibrating([target])
            bn_feats, level = target.run_prefix(bn_batch, prefix)
            target.eval()
            feats1, _ = target.run_prefix(view1, prefix)
            feats2, _ = target.run_prefix(view2, prefix)
            for start, path in members:
                if level != start:
                    raise ValueError(f"prefix {list(prefix)} ends at level {level}, not {start}")
                mods = [*online.block_modules(block, start, path), *target.block_modules(block, start, path),
                        o_neck, t_neck, head]
                _recalibrating(mods)
                lvl = target.end_level(block, path)
                t_neck(target.run_block(bn_feats, block, start, path), lvl)
                head(o_neck(online.run_block(bn_feats, block, start, path), lvl))
                _freeze(mods)
                out = []
                for feats in (feats1, feats2):
                    t = t_neck(target.run_block(feats, block, start, path), lvl)
                    q = head(o_neck(online.run_block(feats, block, start, path), lvl))
                    out.append((nn.functional.normalize(q, dim=1), t))
                keys.append((start, path))
                pred1.append(out[0][0].cpu().numpy())
                pred2.append(out[1][0].cpu().numpy())
                tgt1.append(out[0][1].cpu().numpy())
                tgt2.append(out[1][1].cpu().numpy())
    return EmbeddingTable(block, keys, np.stack(pred1), np.stack(pred2), np.stack(tgt1), np.stack(tgt2))
