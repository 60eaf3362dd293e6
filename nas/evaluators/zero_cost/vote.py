"""Abdelfattah et al.'s vote: a pairwise majority of synflow, jacob_cov and snip.

The vote compares two architectures: one beats another when most proxies score it strictly higher.
Over N architectures, ``vote_scores`` counts each one's wins. A single-candidate evaluator has no second
architecture, so ``VotePool`` keeps the scores seen so far in this process and reports the fraction of
earlier candidates the new one beats (order-dependent by nature; one pool per worker process).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from nas.evaluators.zero_cost.catalog import VOTE_MEMBERS


def beats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether rows of ``a`` beat rows of ``b`` by strict majority (both (n, proxies))."""
    return (a > b).sum(axis=-1) * 2 > a.shape[-1]


def vote_scores(table: dict[str, np.ndarray]) -> np.ndarray:
    """Pairwise majority wins per architecture: ``table`` maps proxy -> N scores (same order).

    Architecture i wins against j when more than half of the proxies score i strictly above j; the
    result counts, for each i, the j it wins against (0 .. N-1). Ties and split votes win nothing.
    """
    if not table:
        raise ValueError("vote_scores needs at least one proxy")
    columns = [np.asarray(v, dtype=np.float64).reshape(-1) for v in table.values()]
    if len({len(c) for c in columns}) != 1:
        raise ValueError("vote_scores: every proxy needs one score per architecture")
    scores = np.stack(columns, axis=1)
    wins = beats(scores[:, None, :], scores[None, :, :])
    return wins.sum(axis=1).astype(np.int64)


class VotePool:
    """The member proxies' scores of the candidates seen so far, to vote a new one against them."""

    def __init__(self, members: tuple[str, ...] = VOTE_MEMBERS) -> None:
        self.members = members
        self.rows: list[np.ndarray] = []

    def vote(self, scores: Mapping[str, float]) -> float:
        """Fraction of earlier candidates this one beats (0.5 for the first: nothing to compare), then
        remember it. ``scores`` holds the members as ``zc_<proxy>`` metrics."""
        row = np.array([scores[f"zc_{name}"] for name in self.members], dtype=np.float64)
        fraction = float(beats(row[None, :], np.stack(self.rows)).mean()) if self.rows else 0.5
        self.rows.append(row)
        return fraction
