"""The step loop every supernet trainer runs: step to a total, a progress line with the time per step and the
ETA every ``log_every`` steps (and at the last), a checkpoint every ``checkpoint_every`` steps before the last.

The block-wise (BossNAS) and the multitask (FBNetV5) trainers differ in what one step does, not in how a
long training is driven, watched and made resumable; this keeps that part in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def run_steps(position: Callable[[], int], step: Callable[[], None], total: int, log_every: int,
              progress: Callable[[int, float], None] | None = None, checkpoint_every: int = 0,
              checkpoint: Callable[[], None] | None = None) -> None:
    """Call ``step`` (which advances ``position()`` by one) until ``position()`` reaches ``total``.

    ``progress(done, seconds_per_step)`` is called every ``log_every`` steps and after the last step;
    ``checkpoint()`` every ``checkpoint_every`` steps before the last (the caller saves the final state).
    """
    began, first = time.perf_counter(), position()
    while position() < total:
        step()
        done = position()
        if progress is not None and (done % log_every == 0 or done == total):
            progress(done, (time.perf_counter() - began) / max(done - first, 1))
        if checkpoint is not None and checkpoint_every > 0 and done % checkpoint_every == 0 and done < total:
            checkpoint()


def eta(seconds_per_step: float, remaining: int) -> str:
    """``'0.42 s/step, ETA 120 s'``."""
    return f"{seconds_per_step:.2f} s/step, ETA {seconds_per_step * remaining:.0f} s"
