"""The searcher's side of FBNetV5's step, as ask/tell over masks: which mask the supernet trains next (with its
importance weights), and how the per-task distributions learn from the losses that mask produced.

``ask(step)`` draws one mask from the proposal (uniform during the warm-up) and its weights r_t;
``tell(proposal, losses)`` turns the per-task losses into costs c_t = l_t + lambda_t macs_t(a) / macs_t(all kept)
and, after the warm-up, makes one REINFORCE step (``_estimator.TaskDistributions``). The weights themselves are
trained by ``nas.evaluators.supernet`` (``MultitaskTrainer``); this class never sees them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from nas.backends.torch.supernets.fbnetv5 import MaskCost
from nas.searchers.fbnetv5._estimator import TaskDistributions


@dataclass(frozen=True)
class Proposal:
    """One asked mask (0/1 float vector over the plan's decisions), its importance weights (T,) and whether it
    was drawn during the warm-up (then the distributions learn nothing from it)."""

    mask: torch.Tensor
    weights: torch.Tensor
    warm: bool


class MaskPolicy:
    """Per-task keep distributions with the shared proposal, asked for masks and told their losses."""

    def __init__(self, tasks: Sequence[str], cost: MaskCost, warmup: int, theta_lr: float = 0.05,
                 uniform_mix: float = 0.1, baseline_decay: float = 0.9,
                 flops_weight: Mapping[str, float] | None = None, seed: int = 0) -> None:
        self.tasks, self.cost, self.warmup = tuple(tasks), cost, int(warmup)
        self.dists = TaskDistributions(self.tasks, cost.reach.shape[1], theta_lr, uniform_mix, baseline_decay,
                                       relevant=cost.reach)
        self.macs_ref = cost.full()
        self.flops_weight = torch.tensor([float((flops_weight or {}).get(t, 0.0)) for t in self.tasks],
                                         dtype=torch.float64)
        self.generator = torch.Generator().manual_seed(seed)

    def ask(self, step: int) -> Proposal:
        """The mask to train at ``step`` and its importance weights."""
        warm = step < self.warmup
        mask = self.dists.sample(self.generator, warm)
        return Proposal(mask, self.dists.weights(mask, warm), warm)

    def tell(self, proposal: Proposal, losses: torch.Tensor) -> None:
        """The per-task training losses (T,) of the asked mask: one REINFORCE step after the warm-up."""
        if not proposal.warm:
            self.dists.reinforce(proposal.mask, self.costs(losses, proposal.mask), proposal.weights)

    def costs(self, losses: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """c_t = l_t + lambda_t * macs_t(mask) / macs_t(all blocks kept)."""
        return (losses.double() + self.flops_weight * self.cost.macs(mask) / self.macs_ref).float()

    def per_task_masks(self, step: int) -> list[torch.Tensor]:
        """One mask from each task's own distribution (uniform during the warm-up): the per-task baseline's."""
        warm = step < self.warmup
        masks = []
        for probs in self.dists.probs:
            probs = torch.full_like(probs, 0.5) if warm else probs
            masks.append((torch.rand(len(probs), generator=self.generator) < probs).float())
        return masks

    def state_dict(self) -> dict[str, object]:
        return {"dists": self.dists.state_dict(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.dists.load_state_dict(state["dists"])  # type: ignore[arg-type]
        self.generator.set_state(state["generator"])  # type: ignore[arg-type]
