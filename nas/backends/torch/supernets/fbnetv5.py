"""The weight-sharing FBNetV5 supernet in torch: every plan fragment lowered once, run under a mask vector.

Each unit of the space's ``Plan`` becomes two modules built by ``nas.backends.torch.build`` from its
fragments (``kept``, and ``skipped`` when the skip is an adapter rather than the identity), so the
supernet and the network a genotype decodes to are the same description. ``forward(x, mask, heads)``
runs only the units the requested heads depend on, choosing per gated unit the kept or the skipped
module from the mask; one call yields every requested head.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import nn

from nas.backends.torch import build
from nas.spaces.fbnet.plan import Plan, Unit, unit_cost

CHANNELS_LAST = torch.channels_last  # NHWC: about 25% faster on CPU for these depthwise-heavy blocks (measured)
TASK_HEADS = {"classification": ("logits",), "segmentation": ("seg",), "detection": ("det.",)}


def heads_of(plan: Plan, task: str) -> tuple[str, ...]:
    """The plan's head outputs that belong to ``task`` (detection: every ``det.*`` output)."""
    prefixes = TASK_HEADS[task]
    return tuple(h for h in plan.outputs if any(h == p or (p.endswith(".") and h.startswith(p)) for p in prefixes))


def units_for(plan: Plan, heads: Iterable[str]) -> tuple[Unit, ...]:
    """The units the given head outputs depend on, in plan order."""
    needed = {plan.outputs[h][0] for h in heads}
    for unit in reversed(plan.units):
        if unit.name in needed:
            needed.update(unit.inputs)
    return tuple(u for u in plan.units if u.name in needed)


def _key(name: str) -> str:
    return name.replace(".", "/")


class Supernet(nn.Module):
    """All fragments of a plan as modules; ``decisions`` orders the mask vector (the plan's decision order)."""

    def __init__(self, plan: Plan, seed: int = 0) -> None:
        super().__init__()
        self.plan = plan
        self.decisions = plan.decisions
        self.index = {d: i for i, d in enumerate(self.decisions)}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.kept = nn.ModuleDict({_key(u.name): build(u.kept) for u in plan.units})
            self.skipped = nn.ModuleDict({_key(u.name): build(u.skipped) for u in plan.units if u.skipped})
        self._schedules: dict[tuple[str, ...], tuple[Unit, ...]] = {}
        self.to(memory_format=CHANNELS_LAST)

    def schedule(self, heads: Sequence[str]) -> tuple[Unit, ...]:
        key = tuple(sorted(heads))
        if key not in self._schedules:
            self._schedules[key] = units_for(self.plan, key)
        return self._schedules[key]

    def forward(self, x: torch.Tensor, mask: Sequence[float] | torch.Tensor,
                heads: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Head name -> tensor for ``heads`` (default: all) under the 0/1 ``mask`` (one entry per decision)."""
        heads = tuple(self.plan.outputs) if heads is None else tuple(heads)
        keep = [bool(v) for v in (mask.tolist() if isinstance(mask, torch.Tensor) else mask)]
        x = x.contiguous(memory_format=CHANNELS_LAST)
        values: dict[tuple[str, str], torch.Tensor] = {(self.plan.input, "out"): x}
        for unit in self.schedule(heads):
            args = [values[(name, "out")] for name in unit.inputs]
            key = _key(unit.name)
            if unit.decision is not None and not keep[self.index[unit.decision]]:
                if key not in self.skipped:
                    values[(unit.name, "out")] = args[0]
                    continue
                module = self.skipped[key]
                names = [h for h, _ in unit.skipped.outputs]  # type: ignore[union-attr]
            else:
                module = self.kept[key]
                names = [h for h, _ in unit.kept.outputs]
            out = module(*args)
            if isinstance(out, dict):
                values.update({(unit.name, h): v for h, v in out.items()})
            else:
                values[(unit.name, names[0])] = out
        return {h: values[self.plan.outputs[h]] for h in heads}


class MaskCost:
    """Analytic MACs of the network a task uses under a mask, from the fragments' costs.

    ``macs(task, mask)`` = the costs of the units the task's heads depend on, each gated unit counted with
    its kept or skipped fragment (an identity skip costs 0); linear in the mask, so it is a dot product.
    ``reach`` (T, B) is 1 where decision b's block lies on a path to task t's heads.
    """

    def __init__(self, plan: Plan, tasks: Sequence[str]) -> None:
        costs = {name: {kind: cost["macs"] for kind, cost in pair.items()} for name, pair in unit_cost(plan).items()}
        index = {d: i for i, d in enumerate(plan.decisions)}
        self.fixed = torch.zeros(len(tasks), dtype=torch.float64)
        self.kept = torch.zeros(len(tasks), len(index), dtype=torch.float64)
        self.skipped = torch.zeros(len(tasks), len(index), dtype=torch.float64)
        for t, task in enumerate(tasks):
            for unit in units_for(plan, heads_of(plan, task)):
                kept, skipped = costs[unit.name]["kept"], costs[unit.name]["skipped"]
                if unit.decision is None:
                    self.fixed[t] += kept
                else:
                    self.kept[t, index[unit.decision]] = kept
                    self.skipped[t, index[unit.decision]] = skipped
        self.reach = torch.zeros(len(tasks), len(index))
        for t, task in enumerate(tasks):
            for unit in units_for(plan, heads_of(plan, task)):
                if unit.decision is not None:
                    self.reach[t, index[unit.decision]] = 1.0

    def macs(self, mask: torch.Tensor) -> torch.Tensor:
        """(T,) MACs per example of every task's network under ``mask`` (B,)."""
        m = mask.double()
        return self.fixed + self.kept @ m + self.skipped @ (1 - m)

    def full(self) -> torch.Tensor:
        """(T,) MACs with every block kept (the reference scale of the FLOPs term)."""
        return self.fixed + self.kept.sum(1)
