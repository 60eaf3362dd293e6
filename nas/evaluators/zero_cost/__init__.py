"""Zero-cost proxies: scores of an untrained network that rank architectures without training.

``proxy_scores`` computes them for one genotype (torch for all; JAX for synflow, naswot, params, macs),
``vote_scores`` votes over many. Definitions and references: ``docs/evaluators.md``. The framework
modules (``_torch``, ``_jax``) are private so that discovering evaluators imports neither framework.
"""

from nas.evaluators.zero_cost.catalog import BACKENDS, PROXIES, WORST
from nas.evaluators.zero_cost.scores import arch_scores, proxy_scores
from nas.evaluators.zero_cost.vote import VotePool, vote_scores

__all__ = ["BACKENDS", "PROXIES", "WORST", "VotePool", "arch_scores", "proxy_scores", "vote_scores"]
