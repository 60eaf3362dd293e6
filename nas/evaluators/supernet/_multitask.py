"""The multitask supernet trainer (FBNetV5): the shared weights of one supernet with every task's heads.

``train_step(mask, weights)`` is the weight side of one search step: one batch, one forward pass of the supernet
under ``mask`` for every task's heads, the loss sum_t gamma_t r_t l_t (``weights`` are the importance weights r_t
the searcher's policy gives with the mask), one backward pass and one AdamW step on a cosine schedule. It returns
the per-task training losses of that forward pass (before the update), which are the policy's REINFORCE signal.
With ``sandwich`` the step also adds the gradients of the largest and the smallest network on the same batch.
What mask to train, and how the distributions learn from the losses, is the searcher's (the policy); this class
never draws a mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from nas.backends.torch.device import torch_device
from nas.backends.torch.optim import fused_adamw, set_lr, warmup_cosine
from nas.backends.torch.supernets.fbnetv5 import Supernet, heads_of
from nas.data.multitask import MultitaskData
from nas.evaluators.multitask import _tasks as T
from nas.evaluators.multitask._batches import Batch, Batches, levels_of, task_loss
from nas.spaces.fbnet.plan import Plan


class MultitaskTrainer:
    """Supernet, heads, optimiser and training batches of one multitask search."""

    def __init__(self, plan: Plan, data: MultitaskData, tasks: Sequence[str], steps: int, batch_size: int,
                 lr: float, weight_decay: float = 1e-4, gamma: Mapping[str, float] | None = None,
                 sandwich: bool = False, seed: int = 0, device: str = "cpu") -> None:
        self.plan, self.tasks = plan, tuple(tasks)
        self.steps, self.batch_size, self.lr, self.sandwich = int(steps), int(batch_size), float(lr), bool(sandwich)
        self.size = int(plan.input_shape[1])
        self.levels = levels_of(plan, self.size) if "detection" in self.tasks else []
        self.heads = {t: heads_of(plan, t) for t in self.tasks}
        self.all_heads = tuple(h for t in self.tasks for h in self.heads[t])
        self.device = torch_device(device)
        self.supernet = Supernet(plan, seed=seed).to(self.device)
        for module in self.supernet.kept.values():
            T.set_class_prior(module)
        self.optimizer = fused_adamw(self.supernet.parameters(), lr=lr, weight_decay=weight_decay)
        self.gamma = torch.tensor([float((gamma or {}).get(t, 1.0)) for t in self.tasks], device=self.device)
        self.batches = Batches(data.train, self.levels, self.device)
        self.rng = np.random.default_rng(seed)
        self.step_count = 0

    def batch(self) -> Batch:
        """The next training batch (drawn without replacement within the batch)."""
        return self.batches.take(self.rng.choice(len(self.batches), self.batch_size, replace=False))

    def _train_mode(self) -> None:
        """Train mode for the supernet, walking its modules only when something switched it (3-5 ms a walk)."""
        if not self.supernet.training:
            self.supernet.train()

    def _losses(self, batch: Batch, mask: torch.Tensor) -> torch.Tensor:
        out = self.supernet(batch.images, mask, self.all_heads)
        return torch.stack([task_loss(t, out, batch, self.levels) for t in self.tasks])

    def train_step(self, mask: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """One weight update under ``mask`` with importance weights ``weights`` (T,); the per-task losses (T,) of
        the forward pass, on the CPU."""
        batch = self.batch()
        self._train_mode()
        losses = self._losses(batch, mask)
        set_lr(self.optimizer, warmup_cosine(self.lr, self.step_count, self.steps))
        self.optimizer.zero_grad(set_to_none=True)
        (self.gamma * weights.to(self.device) * losses).sum().backward()
        if self.sandwich:
            self._sandwich(batch)
        self.optimizer.step()
        self.step_count += 1
        return losses.detach().cpu()

    def _sandwich(self, batch: Batch) -> None:
        """The sandwich rule (BigNAS, once-for-all): add the gradients of the largest (every block kept) and the
        smallest (every block skipped) network on the same batch, so that the extremes of the space, which
        uniform masks rarely draw, train as much as the middle. Costs two more forward/backward passes a step."""
        for keep in (1.0, 0.0):
            mask = torch.full((len(self.plan.decisions),), keep)
            (self.gamma * self._losses(batch, mask)).sum().backward()

    def per_task_step(self, masks: Sequence[torch.Tensor]) -> list[float]:
        """The per-task baseline of the step-time benchmark: task t trains under its own ``masks[t]`` with its own
        forward/backward pass (T passes a step instead of one); the losses."""
        batch = self.batch()
        self._train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        losses = []
        for t, (task, mask) in enumerate(zip(self.tasks, masks)):
            out = self.supernet(batch.images, mask, self.heads[task])
            loss = task_loss(task, out, batch, self.levels)
            (self.gamma[t] * loss).backward()
            losses.append(float(loss.detach()))
        self.optimizer.step()
        self.step_count += 1
        return losses

    def loss_under(self, task: str, mask: torch.Tensor, batches: Batches, batch_size: int = 64) -> float:
        """Mean loss of ``task`` under ``mask`` over a split: train-mode BN (batch statistics, as in the search's
        forward passes), no gradients. The supernet's score of a mask."""
        self.supernet.train()
        losses = []
        with torch.no_grad():
            for start in range(0, len(batches), batch_size):
                b = batches.take(np.arange(start, min(start + batch_size, len(batches))))
                out = self.supernet(b.images, mask, self.heads[task])
                losses.append(float(task_loss(task, out, b, self.levels)))
        return float(np.mean(losses))

    def state_dict(self) -> dict[str, object]:
        return {"supernet": self.supernet.state_dict(), "optimizer": self.optimizer.state_dict(),
                "step": self.step_count, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: Mapping[str, object]) -> None:
        self.supernet.load_state_dict(state["supernet"])  # type: ignore[arg-type]
        self.optimizer.load_state_dict(state["optimizer"])  # type: ignore[arg-type]
        self.step_count = int(state["step"])  # type: ignore[arg-type]
        self.rng.bit_generator.state = state["rng"]
