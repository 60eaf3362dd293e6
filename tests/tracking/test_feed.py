"""The feed from journal events to trackers: steps, best so far, per-epoch reports of a trial's last attempt,
replayed trials a tracker already holds, and a failing tracker that must not stop the others."""

from pathlib import Path

from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.tracking import RunInfo, Tracker, Tracking, TrialRecord

GENOTYPE = Genotype.make("toy", 1, {"op": "conv"})


class Recorder(Tracker):
    name = "recorder"

    def __init__(self, held: set[int] = frozenset(), fail_at: int | None = None) -> None:
        self.held, self.fail_at = set(held), fail_at
        self.calls: list[tuple[str, object]] = []

    def start(self, run: RunInfo) -> None:
        self.calls.append(("start", run.run_dir))

    def has(self, trial: int) -> bool:
        return trial in self.held

    def trial(self, record: TrialRecord) -> None:
        if record.result.trial == self.fail_at:
            raise OSError("store unreachable\nsecond line")
        self.calls.append(("trial", record))

    def finish(self, run_dir: Path) -> None:
        self.calls.append(("finish", run_dir))

    def close(self, completed: bool) -> None:
        self.calls.append(("close", completed))


def finished(trial: int, accuracy: float | None, state: TrialState = TrialState.COMPLETE) -> dict:
    metrics = {} if accuracy is None else {"valid_accuracy": accuracy}
    return {"event": "finished", **Result(trial=trial, genotype=GENOTYPE, state=state, metrics=metrics).to_json()}


def records(tracker: Recorder) -> list[TrialRecord]:
    return [payload for kind, payload in tracker.calls if kind == "trial"]


def feed(trackers, events, live=(), warn=None, completed=True) -> None:
    listeners = []
    tracking = Tracking(trackers, RunInfo(Path("run"), {}, {"valid_accuracy": "max"}), warn)
    tracking.attach(events, listeners.append)
    for event in live:
        listeners[0](event)
    tracking.finish(Path("run"))
    tracking.close(completed)


def test_steps_curve_and_epochs_of_the_last_attempt():
    tracker = Recorder()
    events = [{"event": "started", "trial": 0}, {"event": "reported", "trial": 0, "epoch": 0, "metrics": {"a": 1.0}},
              {"event": "reported", "trial": 0, "epoch": 5, "metrics": {"a": 9.0}},
              # killed here; the resume starts trial 0 again and it reports its epochs anew
              {"event": "started", "trial": 0}, {"event": "reported", "trial": 0, "epoch": 0, "metrics": {"a": 2.0}},
              {"event": "reported", "trial": 0, "epoch": 1, "metrics": {"a": 3.0}}, finished(0, 50.0)]
    live = [finished(1, None, TrialState.FAILED), finished(2, 40.0), finished(2, 40.0), finished(3, 70.0)]
    feed([tracker], events, live)
    got = records(tracker)
    assert [r.step for r in got] == [1, 2, 3, 4] and [r.result.trial for r in got] == [0, 1, 2, 3]
    assert got[0].epochs == ((0, {"a": 2.0}), (1, {"a": 3.0}))
    assert [r.curve for r in got] == [
        {"search/valid_accuracy": 50.0, "search/best_valid_accuracy": 50.0},
        {"search/best_valid_accuracy": 50.0},  # a failed trial has no value, the best so far stays
        {"search/valid_accuracy": 40.0, "search/best_valid_accuracy": 50.0},
        {"search/valid_accuracy": 70.0, "search/best_valid_accuracy": 70.0}]
    assert tracker.calls[0] == ("start", Path("run")) and tracker.calls[-2:] == [("finish", Path("run")),
                                                                                 ("close", True)]


def test_replayed_trials_a_tracker_holds_are_skipped_live_ones_never():
    holds, empty = Recorder(held={0, 1}), Recorder()
    feed([holds, empty], [finished(0, 1.0), finished(1, 2.0), finished(2, 3.0)], live=[finished(3, 4.0)])
    assert [(r.step, r.result.trial) for r in records(holds)] == [(3, 2), (4, 3)]
    assert [(r.step, r.result.trial) for r in records(empty)] == [(1, 0), (2, 1), (3, 2), (4, 3)]


def test_a_failing_tracker_is_dropped_with_one_line_and_the_others_go_on():
    failing, healthy, warnings = Recorder(fail_at=1), Recorder(), []
    feed([failing, healthy], [], live=[finished(0, 1.0), finished(1, 2.0), finished(2, 3.0)], warn=warnings.append)
    assert [r.result.trial for r in records(failing)] == [0]
    assert ("close", True) not in failing.calls
    assert [r.result.trial for r in records(healthy)] == [0, 1, 2]
    assert len(warnings) == 1 and "logger=recorder stopped (OSError: store unreachable)" in warnings[0]


def test_an_interrupted_search_closes_as_not_completed():
    tracker = Recorder()
    feed([tracker], [], live=[finished(0, 1.0)], completed=False)
    assert tracker.calls[-1] == ("close", False)
