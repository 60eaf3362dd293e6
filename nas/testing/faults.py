"""``_faulty``: a test evaluator that misbehaves on chosen trials, for the runner's fault tests.

Registered on import (``import nas.testing.faults``); worker processes and Ray workers import it too,
since the executors import the module that registered the run's evaluator (``python -c CLI search ...`` runs
the ``nas`` CLI with it registered, for tests that start a search in a new process). Each trial sleeps
``seconds`` and scores its genotype by a hash, unless ``faults`` names a fault for its trial id:

- ``kill_once``: the worker process SIGKILLs itself on the trial's first attempt (a marker file under
  ``marks`` records the attempt and the killed pid), then the trial runs normally;
- ``kill``: the worker process SIGKILLs itself on every attempt;
- ``raise``: a ``RuntimeError``; ``memory``: a ``MemoryError``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

from nas.core.genotype import Genotype
from nas.evaluators.base import EVALUATORS, EvalContext

FAULTS = ("kill_once", "kill", "raise", "memory")
CLI = "import sys, nas.testing.faults; from nas.cli.main import main; sys.exit(main())"  # `python -c CLI search ...`


def score(genotype: Genotype) -> float:
    """A stable made-up accuracy in [0, 100) from the genotype's fingerprint."""
    return int(hashlib.sha256(genotype.fingerprint().encode()).hexdigest()[:8], 16) % 10_000 / 100


def killed_pids(marks: str | os.PathLike) -> dict[int, int]:
    """trial -> pid of the worker a ``kill_once`` fault killed (from the marker files)."""
    return {int(p.stem): int(p.read_text()) for p in Path(marks).glob("*.killed")}


@EVALUATORS.register("_faulty")
class FaultyEvaluator:
    """Scores genotypes by hash after ``seconds``; ``faults`` maps trial ids to one of ``FAULTS``."""

    def __init__(self, faults: dict[int, str] | None = None, marks: str | None = None, seconds: float = 0.0,
                 **_: object) -> None:
        self.faults = {int(trial): str(kind) for trial, kind in (faults or {}).items()}
        unknown = set(self.faults.values()) - set(FAULTS)
        if unknown:
            raise ValueError(f"unknown faults {sorted(unknown)}; valid: {', '.join(FAULTS)}")
        self.marks = Path(marks) if marks else None
        self.seconds = float(seconds)

    def __call__(self, genotype: Genotype, ctx: EvalContext) -> dict[str, float]:
        time.sleep(self.seconds)
        fault = self.faults.get(ctx.trial)
        if fault == "kill_once":
            assert self.marks is not None, "kill_once needs marks (a directory for its marker files)"
            mark = self.marks / f"{ctx.trial}.killed"
            if not mark.exists():
                mark.write_text(str(os.getpid()))
                os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif fault == "raise":
            raise RuntimeError(f"candidate {ctx.trial} crashed")
        elif fault == "memory":
            raise MemoryError
        return {"valid_accuracy": score(genotype)}
