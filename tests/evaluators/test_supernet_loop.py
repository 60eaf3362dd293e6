"""The step loop both supernet trainers run: progress and checkpoint cadence, and a resumed loop."""

from __future__ import annotations

from nas.backends.torch.optim import warmup_cosine
from nas.evaluators.supernet._loop import eta, run_steps


def _loop(start: int, total: int, log_every: int, checkpoint_every: int) -> tuple[list[int], list[int], list[int]]:
    position = [start]
    stepped, logged, saved = [], [], []

    def step() -> None:
        position[0] += 1
        stepped.append(position[0])

    run_steps(lambda: position[0], step, total, log_every, lambda done, per: logged.append(done), checkpoint_every,
              lambda: saved.append(position[0]))
    return stepped, logged, saved


def test_run_steps_logs_every_k_steps_and_the_last_and_checkpoints_before_the_end() -> None:
    stepped, logged, saved = _loop(0, 10, 4, 5)
    assert stepped == list(range(1, 11))
    assert logged == [4, 8, 10]
    assert saved == [5]  # not at 10: the caller saves the final state


def test_run_steps_resumes_from_the_position_it_is_given() -> None:
    stepped, logged, saved = _loop(6, 10, 4, 3)
    assert stepped == [7, 8, 9, 10] and logged == [8, 10] and saved == [9]
    assert _loop(10, 10, 4, 3) == ([], [], [])


def test_the_progress_line_states_time_per_step_and_eta() -> None:
    assert eta(0.5, 30) == "0.50 s/step, ETA 15 s"


def test_warmup_cosine_rises_linearly_then_decays_to_zero() -> None:
    assert [warmup_cosine(1.0, s, 10, 0.2) for s in (0, 1)] == [0.5, 1.0]
    assert warmup_cosine(1.0, 2, 10, 0.2) == 1.0
    assert abs(warmup_cosine(1.0, 6, 10, 0.2) - 0.5) < 1e-12
    assert warmup_cosine(2.0, 0, 4) == 2.0 and abs(warmup_cosine(2.0, 2, 4) - 1.0) < 1e-12
