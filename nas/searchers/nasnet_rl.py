"""The NASNet controller (Zoph et al. 2018): a one-layer LSTM trained by PPO on the rewards it is told.

The controller emits one softmax per categorical (``Choice``) decision of the space, in spec order,
each step fed the embedding of the previous choice; on NASNet that is the paper's 2 x 5B decisions
(inputs, ops, combiner per block). Integer and float ranges are sampled uniformly and inactive
conditional decisions are skipped, so any space works. Rewards (the objective's score; failures get
the worst reward seen) are buffered; every ``batch_size`` rewards the policy takes ``ppo_epochs``
Adam steps on the clipped PPO objective with advantage = reward - an exponential moving-average
baseline, plus an entropy bonus. The "old" policy of the ratio is the controller before the update,
so an update depends only on the ordered tells: ``recover`` replays them and reaches the same state.
Torch is imported only when a searcher is set up.
"""

from __future__ import annotations

import math
from typing import Any

from nas.core.decisions import Choice
from nas.core.genotype import Genotype
from nas.core.result import Result
from nas.searchers.base import SEARCHERS, Searcher


@SEARCHERS.register("nasnet_rl")
class NASNetRL(Searcher):
    """Policy-gradient (PPO) search with an LSTM controller; defaults are the paper's settings."""

    def __init__(self, hidden_size: int = 100, lr: float = 0.00035, batch_size: int = 20, ppo_epochs: int = 4,
                 clip: float = 0.2, entropy_weight: float = 1e-5, baseline_decay: float = 0.95,
                 init_range: float = 0.1, temperature: float = 1.0) -> None:
        if batch_size < 1 or ppo_epochs < 1 or hidden_size < 1:
            raise ValueError("nasnet_rl needs batch_size, ppo_epochs and hidden_size >= 1")
        self.hidden_size = int(hidden_size)
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.ppo_epochs = int(ppo_epochs)
        self.clip = float(clip)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        self.init_range = float(init_range)
        self.temperature = float(temperature)

    def setup(self, space, seed=0, objective=None) -> None:
        import torch

        super().setup(space, seed, objective)
        self.choices = [d for d in space.spec() if isinstance(d, Choice)]
        self._slot = {d.label: i for i, d in enumerate(self.choices)}
        gen = torch.Generator().manual_seed(int(seed))
        h = self.hidden_size
        self.net = torch.nn.ModuleDict({
            "lstm": torch.nn.LSTMCell(h, h),
            "heads": torch.nn.ModuleList([torch.nn.Linear(h, d.size) for d in self.choices]),
            "embed": torch.nn.ModuleList([torch.nn.Embedding(d.size, h) for d in self.choices]),
        })
        self.start = torch.nn.Parameter(torch.zeros(1, h))
        with torch.no_grad():
            for p in [*self.net.parameters(), self.start]:
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * self.init_range - self.init_range)
        self.optimizer = torch.optim.Adam([*self.net.parameters(), self.start], lr=self.lr)
        self.baseline: float | None = None
        self.buffer: list[tuple[list[tuple[int, int]], float]] = []
        self.rewards: list[float] = []
        self.updates = 0

    # --- the policy --------------------------------------------------------------------------
    def _log_probs(self, batch: list[list[tuple[int, int]]]) -> tuple[Any, Any]:
        """Log-probabilities and entropies (one each per sequence) of ``(slot, option)`` action sequences.

        Sequences with the same decisions (all of them, on a space without conditions) run as one batch.
        """
        import torch

        logp, entropy = [torch.zeros(())] * len(batch), [torch.zeros(())] * len(batch)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, actions in enumerate(batch):
            groups.setdefault(tuple(slot for slot, _ in actions), []).append(i)
        for slots, members in groups.items():
            options = torch.tensor([[o for _, o in batch[i]] for i in members], dtype=torch.long)
            n = len(members)
            h = c = torch.zeros(n, self.hidden_size)
            x = self.start.expand(n, -1)
            lp = ent = torch.zeros(n)
            for t, slot in enumerate(slots):
                h, c = self.net["lstm"](x, (h, c))
                dist = torch.log_softmax(self.net["heads"][slot](h) / self.temperature, dim=-1)
                lp = lp + dist.gather(1, options[:, t:t + 1])[:, 0]
                ent = ent - (dist.exp() * dist).sum(-1)
                x = self.net["embed"][slot](options[:, t])
            for k, i in enumerate(members):
                logp[i], entropy[i] = lp[k], ent[k]
        return torch.stack(logp), torch.stack(entropy)

    def ask(self) -> Genotype | None:
        import torch

        values: dict[str, Any] = {}
        spec = self.space.spec()
        with torch.no_grad():
            h = c = torch.zeros(1, self.hidden_size)
            x = self.start
            for decision in spec:
                if not spec.is_active(decision, values):
                    continue
                if not isinstance(decision, Choice):
                    values[decision.label] = decision.sample(self.rng)
                    continue
                slot = self._slot[decision.label]
                h, c = self.net["lstm"](x, (h, c))
                probs = torch.softmax(self.net["heads"][slot](h)[0] / self.temperature, dim=-1).tolist()
                option = self.rng.choices(range(len(probs)), weights=probs)[0]
                values[decision.label] = decision.options[option]
                x = self.net["embed"][slot](torch.tensor([option]))
        return self.space.make(values)

    def actions(self, genotype: Genotype) -> list[tuple[int, int]]:
        """The controller's ``(slot, option)`` actions that produce ``genotype``'s categorical values."""
        values = genotype.values
        return [(self._slot[d.label], d.index(values[d.label])) for d in self.choices if d.label in values]

    # --- learning ------------------------------------------------------------------------------
    def tell(self, genotype: Genotype, result: Result) -> None:
        super().tell(genotype, result)
        score = self.objective.score(result)
        if math.isinf(score) or math.isnan(score):
            score = min(self.rewards, default=0.0)
        self.rewards.append(score)
        self.buffer.append((self.actions(genotype), score))
        if len(self.buffer) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        import torch

        advantages = []
        for _, reward in self.buffer:
            baseline = reward if self.baseline is None else self.baseline
            advantages.append(reward - baseline)
            self.baseline = self.baseline_decay * baseline + (1 - self.baseline_decay) * reward
        actions = [a for a, _ in self.buffer]
        adv = torch.tensor(advantages)
        with torch.no_grad():
            old = self._log_probs(actions)[0]
        for _ in range(self.ppo_epochs):
            logp, entropy = self._log_probs(actions)
            ratio = torch.exp(logp - old)
            clipped = torch.clamp(ratio, 1 - self.clip, 1 + self.clip)
            loss = (-torch.min(ratio * adv, clipped * adv) - self.entropy_weight * entropy).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        self.buffer = []
        self.updates += 1

    def mean_log_prob(self, genotypes: list[Genotype]) -> float:
        """Average log-probability of ``genotypes`` under the current policy (for diagnostics)."""
        import torch

        if not genotypes:
            return 0.0
        with torch.no_grad():
            return float(self._log_probs([self.actions(g) for g in genotypes])[0].mean())
