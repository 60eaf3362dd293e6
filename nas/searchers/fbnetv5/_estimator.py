"""Per-task Bernoulli mask distributions, the shared proposal, importance weights and the REINFORCE update.

Every task t owns logits theta_t (one per binary decision), p_t(a) = prod_b sigma(theta_tb)^a_b
(1 - sigma(theta_tb))^(1 - a_b). One mask a per step is drawn from a proposal q and serves every task.

Proposal (not given by the sources; our choice): after the warm-up, the defensive mixture
q = (1 - eps) * (1/T) sum_t p_t + eps * U, with U uniform over all masks (eps = ``uniform_mix``, 0.1).
Sampling: with probability eps a uniform mask, else a mask from the p_t of a uniformly drawn task.
Its point: each importance weight r_t(a) = p_t(a) / q(a) is bounded by T / (1 - eps) by construction
(q >= (1 - eps) p_t / T), so neither clipping nor self-normalisation is needed for the weight gradient,
and the uniform part keeps every mask reachable when the task distributions have become peaked.
During the warm-up q = U and the logits are frozen at 0, so every r_t = 1 exactly.

Weights: the loss is sum_t gamma_t r_t l_t(a, w), an unbiased estimate of sum_t gamma_t E_{p_t}[l_t].
Distributions: REINFORCE, theta_t <- theta_t - lr * r_t (c_t - b_t) grad log p_t(a) (Adam on the
logits), where c_t = l_t + lambda_t * macs_t(a) / macs_ref_t is the task's cost and b_t its baseline.
Only the logits of decisions that reach task t's heads are updated (the others cannot change its loss;
their score-function gradient would be pure noise), so they stay at p = 0.5 and are reported as such.
The baseline is a self-normalised importance-weighted moving average of c_t: n_t <- beta n_t + r_t c_t,
d_t <- beta d_t + r_t, b_t = n_t / d_t, an estimate of E_{p_t}[c_t] from masks drawn from q.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

LOG_HALF = float(torch.log(torch.tensor(0.5)))


class TaskDistributions:
    """Logits (T, B) of T tasks over B binary decisions, with the proposal and update rules above."""

    def __init__(self, tasks: Sequence[str], num_decisions: int, lr: float = 0.05, uniform_mix: float = 0.1,
                 baseline_decay: float = 0.9, relevant: torch.Tensor | None = None) -> None:
        if not tasks or num_decisions < 1:
            raise ValueError("need at least one task and one decision")
        if not 0 < uniform_mix <= 1:
            raise ValueError(f"uniform_mix must be in (0, 1], got {uniform_mix}")
        self.tasks = tuple(tasks)
        self.logits = torch.zeros(len(tasks), num_decisions, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.logits], lr=lr)
        self.uniform_mix = float(uniform_mix)
        self.baseline_decay = float(baseline_decay)
        self.num = torch.zeros(len(tasks), dtype=torch.float64)
        self.den = torch.zeros(len(tasks), dtype=torch.float64)
        # (T, B) 1 where decision b changes task t's network: only those logits get REINFORCE updates
        self.relevant = torch.ones(len(tasks), num_decisions) if relevant is None else relevant.float()

    @property
    def probs(self) -> torch.Tensor:
        """Keep probabilities (T, B)."""
        return torch.sigmoid(self.logits.detach())

    def log_p(self, mask: torch.Tensor) -> torch.Tensor:
        """log p_t(mask) for every task (T,); ``mask`` is a 0/1 float vector (B,). Differentiable."""
        return -functional_bce(self.logits, mask).sum(1)

    def log_q(self, mask: torch.Tensor, warm: bool) -> torch.Tensor:
        """log q(mask): uniform during the warm-up, else the defensive mixture."""
        uniform = torch.tensor(mask.numel() * LOG_HALF)
        if warm:
            return uniform
        with torch.no_grad():
            mixture = torch.logsumexp(self.log_p(mask), 0) - torch.log(torch.tensor(float(len(self.tasks))))
        eps = self.uniform_mix
        if eps >= 1:
            return uniform
        return torch.logaddexp(mixture + torch.log(torch.tensor(1 - eps)), uniform + torch.log(torch.tensor(eps)))

    def sample(self, generator: torch.Generator, warm: bool) -> torch.Tensor:
        """One mask from the proposal (0/1 float vector)."""
        size = self.logits.shape[1]
        if warm or torch.rand((), generator=generator) < self.uniform_mix:
            return (torch.rand(size, generator=generator) < 0.5).float()
        task = int(torch.randint(len(self.tasks), (), generator=generator))
        return (torch.rand(size, generator=generator) < self.probs[task]).float()

    def weights(self, mask: torch.Tensor, warm: bool) -> torch.Tensor:
        """Importance weights r_t = p_t(mask) / q(mask), (T,), no gradient."""
        with torch.no_grad():
            return torch.exp(self.log_p(mask) - self.log_q(mask, warm))

    def baselines(self) -> torch.Tensor:
        """b_t (T,); NaN for a task with no observation yet."""
        return torch.where(self.den > 0, self.num / self.den.clamp(min=1e-12), torch.full_like(self.num, float("nan")))

    def observe(self, costs: torch.Tensor, weights: torch.Tensor) -> None:
        """Fold one step's costs c_t and weights r_t into the moving-average baselines."""
        self.num = self.baseline_decay * self.num + weights.double() * costs.double()
        self.den = self.baseline_decay * self.den + weights.double()

    def reinforce(self, mask: torch.Tensor, costs: torch.Tensor, weights: torch.Tensor) -> None:
        """One REINFORCE step of every task's logits with advantage r_t (c_t - b_t), then update b_t."""
        base = self.baselines()
        base = torch.where(torch.isnan(base), costs.double(), base).float()
        advantage = (weights * (costs - base)).detach()
        surrogate = (advantage * self.log_p(mask)).sum()
        self.optimizer.zero_grad(set_to_none=True)
        surrogate.backward()
        self.logits.grad *= self.relevant
        self.optimizer.step()
        self.observe(costs, weights)

    def most_probable(self) -> torch.Tensor:
        """The argmax mask of every task (T, B): keep where p > 0.5."""
        return (self.probs > 0.5).float()

    def state_dict(self) -> dict[str, object]:
        return {"logits": self.logits.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "num": self.num.clone(), "den": self.den.clone()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        with torch.no_grad():
            self.logits.copy_(state["logits"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.num, self.den = state["num"], state["den"]  # type: ignore[assignment]


def functional_bce(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """-log Bernoulli(mask | sigmoid(logits)), elementwise."""
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, mask.expand_as(logits), reduction="none")
