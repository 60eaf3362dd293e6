"""Shared test fixtures and the skip policy.

Data. ``nb201_table`` is the real NAS-Bench-201 table in the shared data folder beside the repository
(never copied into it); CI runs in a clone beside that folder. Tests that check the benchmark's own
numbers use it, and a missing table makes them *fail* with the path they looked at, never skip. Tests
of data-free logic (the loop, multi-objective runs, searchers, adapters) use ``synthetic_nb201_table``
instead: every NB201 cell with made-up but plausible accuracies, written to a temporary folder.

Skips. A test may skip only for a reason in ``nas.testing.skips.ALLOWED_SKIP_PREFIXES`` (needs a GPU,
needs CUDA, needs no GPU, needs an optional extra that is not installed); use the helpers there. Any
other skip, e.g. a ``pytest.skip("data not found")`` or an ``importorskip`` of a core dependency, makes
the session fail, and ``-rs`` in the pytest options prints every skip's reason.
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import random
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, settings

from nas.testing.skips import ALLOWED_SKIP_PREFIXES, require_shared_data, skip_allowed

# CI shares two cores with other jobs: a draw stalled by the machine must not fail a property test (Hypothesis's
# speed checks and deadlines measure the machine, not the code); the example counts are unchanged
settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared-machine")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NB201_TABLE = SHARED_DATA / "nb201" / "nb201_combined.csv"

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_GAIN = {"none": 0.0, "skip_connect": 1.0, "nor_conv_1x1": 3.0, "nor_conv_3x3": 4.5, "avg_pool_3x3": 0.5}


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="session")
def benchmark_script() -> Callable[[str], ModuleType]:
    """``load(name)``: the module of ``benchmarks/<name>.py`` (scripts, not a package), for tests of their logic."""
    def load(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def nb201_table() -> Path:
    """The real NB201 table (fails when the shared data folder lacks it)."""
    return require_shared_data(NB201_TABLE)


def write_synthetic_nb201_table(path: Path, seed: int = 0) -> Path:
    """All 15625 NB201 cells in the real table's format, accuracies made up from the ops plus noise."""
    rng = random.Random(seed)
    columns = ["arch_index", "arch_str", "cifar10_test_200ep", "cifar100_test_200ep", "imagenet16_test_200ep",
               "cifar10valid_val_12ep", "cifar100_val_12ep", "imagenet16_val_12ep"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for index, ops in enumerate(itertools.product(NB201_OPS, repeat=6)):
            arch = "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|".format(*ops)
            quality = sum(NB201_GAIN[op] for op in ops) + rng.gauss(0, 1.5)
            if ops[3] == ops[4] == ops[5] == "none":  # nothing reaches the output node
                quality = -10.0
            valid = [min(99.0, max(10.0, base + quality)) for base in (60.0, 30.0, 10.0)]
            test = [min(99.5, v + 5 + rng.random()) for v in valid]
            writer.writerow([index, arch, *(f"{v:.4f}" for v in test), *(f"{v:.4f}" for v in valid)])
    return path


@pytest.fixture(scope="session")
def synthetic_nb201_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A made-up NB201 table (every cell) for tests whose logic does not depend on the benchmark's numbers."""
    return write_synthetic_nb201_table(tmp_path_factory.mktemp("nb201") / "nb201_synthetic.csv")


class SkipPolicy:
    """Records skips whose reason is not allowed and makes the session fail when there are any."""

    def __init__(self) -> None:
        self.bad: list[tuple[str, str]] = []

    def _record(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        if not report.skipped or hasattr(report, "wasxfail"):
            return
        longrepr = report.longrepr
        reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
        if not skip_allowed(reason):
            self.bad.append((report.nodeid, reason))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        self._record(report)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.bad:
            terminalreporter.section("skips that are not allowed", sep="=", red=True, bold=True)
            terminalreporter.line(f"allowed reasons start with: {', '.join(map(repr, ALLOWED_SKIP_PREFIXES))}")
            for nodeid, reason in self.bad:
                terminalreporter.line(f"{nodeid}: {reason}", red=True)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.bad and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(SkipPolicy(), "nas-skip-policy")
