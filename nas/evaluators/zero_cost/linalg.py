"""The two proxies that end in linear algebra on per-example values, in numpy for both backends."""

from __future__ import annotations

import numpy as np

JACOB_COV_K = 1e-5  # Abdelfattah et al.'s regulariser of the eigenvalues


def hamming_kernel(codes: np.ndarray) -> np.ndarray:
    """``K[i, j]`` = units where examples i and j agree = ``N_A - hamming(c_i, c_j)`` (Mellor et al.).

    ``codes`` is (examples, units) of 0/1: whether each rectifier's input was positive.
    """
    c = np.asarray(codes, dtype=np.float64)
    return c @ c.T + (1.0 - c) @ (1.0 - c).T


def logdet_score(kernel: np.ndarray) -> float:
    """NASWOT's score ``log |K|`` (``slogdet``); ``-inf`` when K is singular (examples not told apart)."""
    sign, logdet = np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))
    return float(logdet) if sign > 0 else float("-inf")


def naswot_score(codes: np.ndarray) -> float:
    """``log |K|`` of the Hamming kernel of ``codes`` (examples, units)."""
    return logdet_score(hamming_kernel(codes))


def jacob_cov_score(jacobian: np.ndarray) -> float:
    """``-sum(log(l + k) + 1 / (l + k))`` over the eigenvalues ``l`` of the examples' correlation matrix.

    ``jacobian`` is (examples, input size): d(sum of outputs)/d(input) per example. NaN when an
    example's row is constant (its correlation is undefined); the caller turns that into the worst score.
    """
    corr = np.corrcoef(np.asarray(jacobian, dtype=np.float64).reshape(len(jacobian), -1))
    if not np.all(np.isfinite(corr)):
        return float("nan")
    eig = np.linalg.eigvalsh(corr)
    return float(-np.sum(np.log(eig + JACOB_COV_K) + 1.0 / (eig + JACOB_COV_K)))
