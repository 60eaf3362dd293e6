"""Rated embeddings of one block's candidates, and BossNAS's distance to the population center (numpy only).

For every rated entry (the level the block starts at, the block's path) the table keeps the normalised
online predictions on two fixed views of the rating images and the raw target projections on them. The
distance of an entry to a population is BYOL's loss toward the population's mean target embedding (the
"population center"): ``-2 mean cos(pred_1, center_2) - 2 mean cos(pred_2, center_1)``; lower is better.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Path = tuple[int, ...]
Entry = tuple[int, Path]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def center_distance(pred1: np.ndarray, pred2: np.ndarray, center1: np.ndarray, center2: np.ndarray) -> float:
    """BYOL's symmetric loss of normalised predictions toward a center: ``-2 cos`` per view, batch mean."""
    return float(-2.0 * (pred1 * _unit(center2)).sum(-1).mean() - 2.0 * (pred2 * _unit(center1)).sum(-1).mean())


PRED_COS_MAX = 0.9  # gate: the predictions' batch cosine at rating time stays below this
REPRO_MIN = 0.7  # gate: ratings on two disjoint halves of the rating images agree at least this much (Spearman)
SPREAD_MIN = 1e-3  # gate: the scores of a block's candidates are not tied


@dataclass
class EmbeddingTable:
    """One block's rated entries and their embeddings on the fixed rating views.

    ``pred1``/``pred2``: (entries, samples, dim) normalised online predictions of views 1 and 2;
    ``target1``/``target2``: the raw target projections of the same views (averaged into centers).
    """

    block: int
    entries: list[Entry]
    pred1: np.ndarray
    pred2: np.ndarray
    target1: np.ndarray
    target2: np.ndarray

    def __post_init__(self) -> None:
        self.index = {entry: i for i, entry in enumerate(self.entries)}
        n = len(self.entries)
        for name in ("pred1", "pred2", "target1", "target2"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows for {n} entries")

    def distance(self, entry: Entry, rows: Sequence[int]) -> float:
        """Distance of ``entry`` to the center of the entries at ``rows`` (repeats count as weights)."""
        i = self.index[entry]
        rows = np.asarray(rows)
        return center_distance(self.pred1[i], self.pred2[i], self.target1[rows].mean(0), self.target2[rows].mean(0))

    def save(self, path) -> None:
        """Write the table as ``.npz`` (entries as start level and tokens)."""
        starts = np.array([s for s, _ in self.entries], dtype=np.int64)
        paths = np.array([p for _, p in self.entries], dtype=np.int64)
        np.savez(path, block=self.block, starts=starts, paths=paths, pred1=self.pred1, pred2=self.pred2,
                 target1=self.target1, target2=self.target2)

    @classmethod
    def load(cls, path) -> EmbeddingTable:
        with np.load(path) as z:
            entries = [(int(s), tuple(int(t) for t in p)) for s, p in zip(z["starts"], z["paths"])]
            return cls(int(z["block"]), entries, z["pred1"], z["pred2"], z["target1"], z["target2"])



    def subset(self, samples: Sequence[int] | np.ndarray) -> EmbeddingTable:
        """The same entries on a subset of the rating images (e.g. one half, for the reproducibility gate)."""
        idx = np.asarray(samples)
        return EmbeddingTable(self.block, list(self.entries), self.pred1[:, idx], self.pred2[:, idx],
                              self.target1[:, idx], self.target2[:, idx])

    def pooled_scores(self) -> np.ndarray:
        """Every entry's distance to the center of all entries (one population), in entry order."""
        return self.scores_to(np.arange(len(self.entries)))

    def scores_to(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Every entry's distance to the center of the entries at ``rows``, in entry order."""
        rows = np.asarray(rows)
        c1, c2 = _unit(self.target1[rows].mean(0)), _unit(self.target2[rows].mean(0))
        return -2.0 * (self.pred1 * c2).sum(-1).mean(1) - 2.0 * (self.pred2 * c1).sum(-1).mean(1)

    def batch_cosine(self, which: str = "pred") -> float:
        """Median over entries of the mean cosine between different rating images' vectors (``pred``: the
        online predictions, ``target``: the target projections); near 1 means collapsed. The median, because
        a candidate whose output is constant (an NB201 cell with no path to its output) answers every image
        alike by construction."""
        x = _unit(self.pred1 if which == "pred" else self.target1)
        n = x.shape[1]
        total = x.sum(1)
        return float(np.median(((total * total).sum(-1) - n) / max(n * (n - 1), 1)))


def rating_gates(table: EmbeddingTable) -> dict[str, float]:
    """The collapse gates of one block's ratings: batch cosines of predictions and targets, the spread of the
    pooled scores, and their reproducibility (Spearman) between the two halves of the rating images."""
    from scipy.stats import spearmanr

    scores = table.pooled_scores()
    n = table.pred1.shape[1]
    half_a, half_b = table.subset(np.arange(n // 2)).pooled_scores(), table.subset(np.arange(n // 2, n)).pooled_scores()
    repro = float(spearmanr(half_a, half_b)[0]) if len(scores) > 2 and np.ptp(half_a) > 0 and np.ptp(half_b) > 0 \
        else float("nan")
    return {"pred_batch_cos": table.batch_cosine("pred"), "target_batch_cos": table.batch_cosine("target"),
            "rating_spread": float(np.std(scores)), "rating_reproducibility": repro}


def gate_failures(block: int, gates: Mapping[str, float]) -> list[str]:
    """Which of block ``block``'s collapse gates fail, one phrase each (empty when the gates pass)."""
    out = []
    if not gates["pred_batch_cos"] < PRED_COS_MAX:
        out.append(f"block {block + 1}: predictions' batch cosine {gates['pred_batch_cos']:.3f} >= {PRED_COS_MAX} "
                   "(collapsed toward one direction)")
    repro = gates["rating_reproducibility"]
    if not repro >= REPRO_MIN:
        out.append(f"block {block + 1}: ratings reproduce between two image sets with Spearman {repro:.2f} < "
                   f"{REPRO_MIN}")
    if not gates["rating_spread"] >= SPREAD_MIN:
        out.append(f"block {block + 1}: ratings tied (spread {gates['rating_spread']:.2e})")
    return out
