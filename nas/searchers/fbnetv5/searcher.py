"""``searcher=fbnetv5``: FBNetV5's one-run multitask search (Wu et al., arXiv 2111.10007) as a self-driven searcher.

This module registers the searcher and checks its options without importing torch; the run itself lives in
``_driver`` (data, supernet training, keep-probability tables, final trainings), the policy in ``_policy`` and
``_estimator``, the step in ``_search``, the supernet in ``nas.backends.torch.supernets.fbnetv5``, its trainer in
``nas.evaluators.supernet`` and the task losses in ``nas.evaluators.multitask``. docs/searchers/fbnetv5.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nas.core import extras
from nas.core.errors import UserError
from nas.core.space import SearchSpace
from nas.searchers.base import SEARCHERS, Drive, DrivingSearcher, MultiObjective, Objective
from nas.spaces.fbnet.supernet import TASKS


@SEARCHERS.register("fbnetv5")
class FBNetV5Searcher(DrivingSearcher):
    """FBNetV5-style multitask search; every option is documented in ``nas/cli/conf/searcher/fbnetv5.yaml``."""

    backend_phases = {"multitask supernet training": ("torch",),
                      "final trainings of the found and random networks": ("torch",)}
    uses_evaluator = False  # the final trainings are its own (multitask heads), recorded through drive.record

    def __init__(self, tasks: Sequence[str] | None = None, steps: int = 300, warmup: int = 75, batch_size: int = 16,
                 lr: float = 2e-3, theta_lr: float = 0.1, uniform_mix: float = 0.1, baseline_decay: float = 0.9,
                 gamma: Mapping[str, float] | None = None, flops_weight: Mapping[str, float] | float | None = 0.2,
                 data: Mapping[str, Any] | None = None, samples: int = 3, final_size: str | None = None,
                 final_steps: int = 120, final_batch_size: int = 32, final_lr: float = 3e-3,
                 cost_tolerance: float = 0.05, random_tries: int = 2000, log_every: int = 20,
                 checkpoint_every: int = 50, device: str = "cpu", sandwich: bool = True) -> None:
        self.tasks = list(tasks) if tasks else None
        if self.tasks and any(t not in TASKS for t in self.tasks):
            raise UserError(f"fbnetv5: tasks must be among {', '.join(TASKS)}; got {self.tasks}")
        if steps < 1 or not 0 <= warmup <= steps:
            raise UserError(f"fbnetv5: need steps >= 1 and 0 <= warmup <= steps; got steps={steps}, warmup={warmup}")
        if not isinstance(sandwich, bool):
            raise UserError(f"fbnetv5: sandwich must be true or false; got {sandwich!r}")
        weights = flops_weight if isinstance(flops_weight, Mapping) else {t: float(flops_weight or 0.0) for t in TASKS}
        self.search_options = dict(steps=int(steps), warmup=int(warmup), batch_size=int(batch_size), lr=float(lr),
                                   theta_lr=float(theta_lr), uniform_mix=float(uniform_mix),
                                   baseline_decay=float(baseline_decay), gamma=dict(gamma or {}),
                                   flops_weight=dict(weights), device=str(device),
                                   sandwich=sandwich)
        self.data_options = dict(data or {"source": "digits"})
        self.samples, self.final_size = int(samples), final_size
        self.final = dict(steps=int(final_steps), batch_size=int(final_batch_size), lr=float(final_lr))
        self.cost_tolerance, self.random_tries = float(cost_tolerance), int(random_tries)
        self.log_every, self.checkpoint_every = int(log_every), int(checkpoint_every)

    def setup(self, space: SearchSpace, seed: int = 0, objective: Objective | MultiObjective | None = None) -> None:
        """As any searcher; a search with the detection task needs pycocotools (COCO mAP), checked here so that a
        missing ``detection`` extra stops the run before its directory exists."""
        super().setup(space, seed, objective)
        if "detection" in (self.tasks or space.macro.get("tasks") or ()):
            extras.check("detection", "the fbnetv5 detection task (COCO mAP)")

    def drive(self, drive: Drive) -> None:
        """Run the search, write its tables and record the found and random architectures' trainings."""
        from nas.searchers.fbnetv5._driver import Driver

        Driver(self).run(drive)
