"""The FBNetV5 multitask search: one supernet, one mask per step, every task's loss from one forward pass.

``MultitaskSearch.step`` is the algorithm, split between the policy and the trainer:
the policy (``_policy.MaskPolicy``, ask/tell) draws a mask a from the proposal with importance weights r_t;
the trainer (``nas.evaluators.supernet.MultitaskTrainer``) runs the supernet once for all heads and updates the
shared weights with sum_t gamma_t r_t l_t (AdamW, cosine); after the warm-up the policy updates every task's
logits by REINFORCE with its cost c_t = l_t + lambda_t macs_t(a) / macs_t(all kept). The REINFORCE signal is the
training-batch loss of the forward pass just made (before the weight update), so a step costs one forward and
one backward pass whatever the number of tasks. ``naive_step`` is the baseline the benchmark compares with: one
mask from each task's own distribution and one forward/backward pass per task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from nas.backends.torch.supernets.fbnetv5 import MaskCost, Supernet
from nas.data.multitask import MultitaskData
from nas.evaluators.multitask._batches import SHORT
from nas.evaluators.supernet._loop import eta, run_steps
from nas.evaluators.supernet._multitask import MultitaskTrainer
from nas.searchers.fbnetv5._estimator import TaskDistributions
from nas.searchers.fbnetv5._policy import MaskPolicy
from nas.spaces.fbnet.plan import Plan


@dataclass
class SearchConfig:
    """Hyperparameters of the search (every value is ours: the paper's are unknown)."""

    steps: int = 300
    warmup: int = 80
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 1e-4
    theta_lr: float = 0.05
    uniform_mix: float = 0.1
    baseline_decay: float = 0.9
    gamma: Mapping[str, float] = field(default_factory=dict)
    flops_weight: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    sandwich: bool = False


class MultitaskSearch:
    """The trainer (supernet weights) and the policy (per-task distributions) of one search, stepped together."""

    def __init__(self, plan: Plan, data: MultitaskData, tasks: Sequence[str], config: SearchConfig) -> None:
        self.plan, self.tasks, self.config = plan, tuple(tasks), config
        self.trainer = MultitaskTrainer(plan, data, self.tasks, steps=config.steps, batch_size=config.batch_size,
                                        lr=config.lr, weight_decay=config.weight_decay, gamma=config.gamma,
                                        sandwich=config.sandwich, seed=config.seed, device=config.device)
        self.policy = MaskPolicy(self.tasks, MaskCost(plan, self.tasks), config.warmup, config.theta_lr,
                                 config.uniform_mix, config.baseline_decay, config.flops_weight, seed=config.seed)

    @property
    def supernet(self) -> Supernet:
        return self.trainer.supernet

    @property
    def dists(self) -> TaskDistributions:
        return self.policy.dists

    @property
    def cost(self) -> MaskCost:
        return self.policy.cost

    @property
    def device(self) -> torch.device:
        return self.trainer.device

    @property
    def step_count(self) -> int:
        return self.trainer.step_count

    def step(self) -> dict[str, float]:
        """One search step (one forward and backward pass for all tasks); returns losses and weights."""
        proposal = self.policy.ask(self.step_count)
        losses = self.trainer.train_step(proposal.mask, proposal.weights)
        self.policy.tell(proposal, losses)
        return {**{t: float(v) for t, v in zip(self.tasks, losses)},
                **{f"r_{t}": float(v) for t, v in zip(self.tasks, proposal.weights)}}

    def naive_step(self) -> dict[str, float]:
        """The per-task baseline: each task draws its own mask and runs its own forward/backward pass."""
        masks = self.policy.per_task_masks(self.step_count)
        return dict(zip(self.tasks, self.trainer.per_task_step(masks)))

    def run(self, log: Callable[[str], None] | None = None, every: int = 20,
            checkpoint: Callable[[], None] | None = None, checkpoint_every: int = 50) -> None:
        """Step to ``config.steps``, logging every ``every`` steps and checkpointing every ``checkpoint_every``."""
        total, last = self.config.steps, {}

        def one_step() -> None:
            last.update(self.step())

        def progress(done: int, per_step: float) -> None:
            if log is None:
                return
            phase = "warm-up" if done <= self.config.warmup else "search"
            losses = " ".join(f"{SHORT[t]} {last[t]:.3f}" for t in self.tasks)
            keep = " ".join(f"{SHORT[t]} {float(p.mean()):.2f}" for t, p in zip(self.tasks, self.dists.probs))
            log(f"fbnetv5 step {done}/{total} {phase} | loss {losses} | mean keep {keep} | "
                f"{eta(per_step, total - done)}")

        run_steps(lambda: self.step_count, one_step, total, every, progress, checkpoint_every, checkpoint)

    def state_dict(self) -> dict[str, object]:
        return {**self.trainer.state_dict(), **self.policy.state_dict()}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.trainer.load_state_dict(state)
        self.policy.load_state_dict(state)
