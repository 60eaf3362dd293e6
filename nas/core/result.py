"""``Result``: the frozen record of one evaluated trial, and its state."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nas.core.genotype import Genotype


class TrialState(enum.StrEnum):
    """How a trial ended."""

    COMPLETE = "complete"
    FAILED = "failed"
    PRUNED = "pruned"


@dataclass(frozen=True)
class Result:
    """Genotype, metrics and bookkeeping of one finished trial (what searchers are told)."""

    trial: int
    genotype: Genotype
    state: TrialState
    metrics: Mapping[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    epochs: int = 0
    seed: int = 0
    worker: str = ""
    started: float = 0.0
    finished: float = 0.0
    error: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)  # e.g. {"role": "found"} from a self-driven searcher

    @property
    def fingerprint(self) -> str:
        return self.genotype.fingerprint()

    @property
    def ok(self) -> bool:
        return self.state is TrialState.COMPLETE

    def to_json(self) -> dict[str, Any]:
        """The journal's ``finished`` fields (DESIGN §4)."""
        out = {"trial": self.trial, "state": self.state.value, "genotype": self.genotype.to_json(),
               "fingerprint": self.fingerprint, "metrics": dict(self.metrics), "worker": self.worker,
               "seed": self.seed, "seconds": self.seconds, "epochs": self.epochs,
               "started": self.started, "finished": self.finished}
        if self.error:
            out["error"] = self.error
        if self.tags:
            out["tags"] = dict(self.tags)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        return cls(trial=int(data["trial"]), genotype=Genotype.from_json(data["genotype"]),
                   state=TrialState(data["state"]), metrics=dict(data.get("metrics", {})),
                   seconds=float(data.get("seconds", 0.0)), epochs=int(data.get("epochs", 0)),
                   seed=int(data.get("seed", 0)), worker=str(data.get("worker", "")),
                   started=float(data.get("started", 0.0)), finished=float(data.get("finished", 0.0)),
                   error=str(data.get("error", "")), tags=dict(data.get("tags", {})))
