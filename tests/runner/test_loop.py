"""The loop with results arriving out of order, deduplication and re-run of unfinished trials."""

from nas.core.result import TrialState
from nas.runner.executors import Executor, Job, Outcome
from nas.runner.journal import Journal, read_events, replay
from nas.runner.loop import LoopState, run_loop
from nas.searchers.base import Objective
from nas.searchers.random_search import RandomSearcher
from nas.testing.dummy import DummySpace, dummy_score


class ReversedExecutor(Executor):
    """Holds ``capacity`` jobs and finishes them newest first (out of order)."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.jobs = []
        self.seen = []

    def submit(self, job: Job) -> None:
        self.jobs.append(job)
        self.seen.append(job.trial)

    def wait(self):
        job = self.jobs.pop()
        score = dummy_score(job.genotype)
        state = TrialState.FAILED if job.trial == 2 else TrialState.COMPLETE
        metrics = {} if state is TrialState.FAILED else {"valid_accuracy": score}
        return [Outcome(job.trial, state, metrics, "w", 0.0, float(job.trial), [(1, metrics)])]


def run(tmp_path, state=None, budget=12, dedup=False, capacity=3):
    space = DummySpace()
    searcher = RandomSearcher()
    searcher.setup(space, 0, Objective())
    executor = ReversedExecutor(capacity)
    with Journal(tmp_path / "trials.jsonl") as journal:
        results = run_loop(space, searcher, executor, journal, budget, 0, Objective(), state or LoopState(),
                           dedup=dedup)
    return results, executor


def test_out_of_order_results_fill_the_budget(tmp_path):
    results, executor = run(tmp_path)
    assert len(results) == 12 and sorted(r.trial for r in results) == list(range(12))
    assert [r.trial for r in results] != sorted(r.trial for r in results)
    assert any(r.state is TrialState.FAILED for r in results)
    events = read_events(tmp_path / "trials.jsonl")
    assert sum(e["event"] == "reported" for e in events) == 12
    finished, pending = replay(events)
    assert len(finished) == 12 and not pending


def test_dedup_never_evaluates_a_genotype_twice(tmp_path):
    results, _ = run(tmp_path, budget=60, dedup=True)
    keys = [r.genotype.fingerprint() for r in results]
    assert len(keys) == len(set(keys))


def test_pending_trials_run_again_under_their_ids(tmp_path):
    space = DummySpace()
    jobs = [Job(7, space.sample(1), 11), Job(9, space.sample(2), 12)]
    results, executor = run(tmp_path, LoopState(pending=jobs, next_trial=10), budget=5)
    assert executor.seen[:2] == [7, 9]
    assert sorted(r.trial for r in results) == [7, 9, 10, 11, 12]


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "trials.jsonl"
    run(tmp_path, budget=3)
    with path.open("a") as handle:
        handle.write('{"event": "finished", "trial": 99, "sta')
    finished, _ = replay(read_events(path))
    assert len(finished) == 3


def test_events_after_a_torn_last_line_are_kept(tmp_path):
    """A resumed run appends after the fragment: its first event must start a new line, not extend the torn one."""
    path = tmp_path / "trials.jsonl"
    run(tmp_path, budget=3)
    with path.open("a") as handle:
        handle.write('{"event": "finished", "trial": 99, "sta')
    with Journal(path) as journal:
        journal.append("started", trial=3, genotype={}, fingerprint="x", seed=0)
    events = read_events(path)
    assert events[-1]["event"] == "started" and events[-1]["trial"] == 3
    assert len(path.read_text().splitlines()) == len(events) + 1  # only the fragment is unreadable
