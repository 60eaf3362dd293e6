"""Optional extras (nas/core/extras.py): pyproject.toml and the code agree on them, and a missing one is one line.

The one-line CLI errors of each feature (backend=jax, runner=ray, searcher=ray_tune, format=onnx|flax, the
FBNetV5 detection task) are cases of ``tests/cli/test_bad_input_catalogue.py``; the built wheel installed without
extras is ``tests/test_packaging.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas.cli.main import main
from nas.core import extras
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import TrialState
from nas.evaluators.base import EVALUATORS
from nas.runner.executors import Job, evaluate_job

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# The distributions each extra installs, by the modules nas imports from them.
EXTRA_DISTRIBUTIONS = {"jax": {"jax", "flax", "optax"}, "ray": {"ray"}, "export": {"onnx", "onnxruntime", "onnxscript"},
                       "detection": {"pycocotools"}, "tracking": {"tensorboard", "mlflow-skinny"}}
MODULE_OF = {"mlflow-skinny": "mlflow"}  # distributions whose import name differs


def _distribution(requirement: str) -> str:
    """``jax[cpu]>=0.4.35`` -> ``jax``."""
    for stop in "[<>=!~; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()


def test_the_distribution_name_is_the_one_the_messages_name():
    assert PYPROJECT["name"] == extras.DIST
    assert PYPROJECT["scripts"]["nas"] == "nas.cli.main:main"


def test_pyproject_extras_install_the_modules_the_code_asks_for():
    optional = PYPROJECT["optional-dependencies"]
    for extra, modules in extras.EXTRAS.items():
        assert set(modules) == {MODULE_OF.get(d, d) for d in EXTRA_DISTRIBUTIONS[extra]}
        assert {_distribution(r) for r in optional[extra]} >= EXTRA_DISTRIBUTIONS[extra], extra
    (everything,) = optional["all"]
    assert everything.startswith(f"{extras.DIST}[") and set(everything[len(extras.DIST) + 1:-1].split(",")) == \
        set(extras.EXTRAS)


def test_the_core_install_has_none_of_the_extras():
    core = {_distribution(r) for r in PYPROJECT["dependencies"]}
    heavy = set().union(*EXTRA_DISTRIBUTIONS.values()) | {"pycocotools", "jaxlib", "mlflow"}
    assert not core & heavy, core & heavy
    assert {"torch", "hydra-core", "omegaconf", "optuna", "numpy"} <= core


@pytest.mark.parametrize("extra", sorted(extras.EXTRAS))
def test_check_names_the_extra_when_one_of_its_modules_is_missing(extra, monkeypatch):
    monkeypatch.setitem(sys.modules, extras.EXTRAS[extra][-1], None)
    with pytest.raises(extras.MissingExtraError) as caught:
        extras.check(extra, "this feature")
    assert str(caught.value) == f"this feature needs the {extra!r} extra: pip install 'nas-engine[{extra}]'"
    assert isinstance(caught.value, UserError)


def test_check_of_an_unknown_extra_is_a_bug_not_a_user_error():
    with pytest.raises(ValueError, match="unknown extra 'gpu'"):
        extras.check("gpu", "x")


def test_extra_of_names_the_extra_of_a_missing_module_only():
    assert extras.extra_of(ModuleNotFoundError("x", name="pycocotools.coco")) == "detection"
    assert extras.extra_of(ModuleNotFoundError("x", name="jax")) == "jax"
    assert extras.extra_of(ModuleNotFoundError("x", name="nas_no_such_module")) is None
    assert extras.extra_of(ModuleNotFoundError("x")) is None


@pytest.fixture
def needs_mlflow() -> Iterator[str]:
    """An evaluator that imports mlflow in each trial, registered for the test only."""

    def evaluator():
        def evaluate(genotype, ctx):
            import mlflow  # noqa: F401

            return {"x": 1.0}

        return evaluate

    EVALUATORS.register("needs_mlflow_test")(evaluator)
    yield "needs_mlflow_test"
    EVALUATORS._entries.pop("needs_mlflow_test", None)  # type: ignore[attr-defined]


def test_a_trial_that_lacks_an_extra_stops_the_run_instead_of_failing(needs_mlflow, monkeypatch):
    job = Job(0, Genotype.make("nb201", 1, {}), 0)
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(extras.MissingExtraError, match="evaluator needs_mlflow_test needs the 'tracking' extra"):
        evaluate_job({"name": needs_mlflow}, job)


def test_a_trial_that_lacks_another_module_fails_alone(monkeypatch):
    def evaluator():
        def evaluate(genotype, ctx):
            import nas_no_such_module  # noqa: F401

        return evaluate

    EVALUATORS.register("needs_nothing_known_test")(evaluator)
    try:
        outcome = evaluate_job({"name": "needs_nothing_known_test"}, Job(0, Genotype.make("nb201", 1, {}), 0))
    finally:
        EVALUATORS._entries.pop("needs_nothing_known_test", None)  # type: ignore[attr-defined]
    assert outcome.state is TrialState.FAILED
    assert outcome.error == "ModuleNotFoundError: No module named 'nas_no_such_module'"


def test_the_cli_turns_an_unguarded_missing_extra_into_one_line(monkeypatch, capsys):
    from nas.cli import commands

    def spaces(args):
        raise ModuleNotFoundError("No module named 'ray'", name="ray")

    monkeypatch.setattr(commands, "cmd_spaces", spaces)
    assert main(["spaces"]) == 2
    assert capsys.readouterr().err == "error: nas spaces needs the 'ray' extra: pip install 'nas-engine[ray]'\n"

    def broken(args):
        raise ModuleNotFoundError("No module named 'nas_no_such_module'", name="nas_no_such_module")

    monkeypatch.setattr(commands, "cmd_spaces", broken)
    with pytest.raises(ModuleNotFoundError):  # not an extra: a bug, shown with its traceback
        main(["spaces"])


HIDE_EXTRAS = "".join(f"sys.modules[{m!r}] = None; " for m in extras.MODULE_EXTRA)
CORE_ONLY = f"""
import sys; {HIDE_EXTRAS}
import nas
from nas.core.space import SPACES, PUBLISHED
from nas.data.base import DATASETS
from nas.evaluators.base import EVALUATORS
from nas.export.exporters import EXPORTERS
from nas.searchers.base import SEARCHERS
names = [r.names() for r in (SPACES, PUBLISHED, DATASETS, EVALUATORS, EXPORTERS, SEARCHERS)]
from nas.cli.main import main
code = main(["search", "space=nasnet", "evaluator=cost", "budget.trials=2", "run_dir=run", "searcher=random"])
print(sorted(SEARCHERS.names()), code)
"""


def test_every_registry_loads_and_a_search_runs_without_any_extra(tmp_path):
    """Every built-in module that the registries import at discovery imports no extra at module level."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run([sys.executable, "-c", CORE_ONLY], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert "'ray_tune'" in last and "'optuna'" in last and last.endswith(" 0"), last
    finished = (tmp_path / "run" / "trials.jsonl").read_text().count('"event": "finished"')
    assert finished == 2
