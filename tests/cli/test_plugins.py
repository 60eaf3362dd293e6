"""Components from outside ``nas``: the ``nas.register_*`` decorators, the ``nas.plugins`` entry points, and
their config sections made from Python (no yaml in ``nas/cli/conf``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import nas
from nas.cli.config import CONF_DIR, compose, default_options, group_options
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.space import SPACES
from nas.evaluators.base import EVALUATORS, LoadsDataset
from nas.runner.run import evaluator_spec
from nas.searchers.base import SEARCHERS, Searcher
from nas.spaces.nb201.space import NB201Space

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "nas_plugin_example"


@pytest.fixture
def registered() -> Iterator[list[tuple[object, str]]]:
    """Registrations made by a test, removed afterwards (the registries are process-wide)."""
    made: list[tuple[object, str]] = []
    yield made
    for registry, name in made:
        registry._entries.pop(name, None)  # type: ignore[attr-defined]


def test_decorated_searcher_space_evaluator_compose_without_yaml(registered, tmp_path) -> None:
    class Walk(Searcher):
        """Mutates the last genotype it proposed."""

        def __init__(self, steps: int = 3, scale: float = 0.5, tag: str = "w", dims: tuple = (1, 2),
                     hook: object = object(), *, strict: bool = False) -> None:
            self.steps, self.scale, self.tag = steps, scale, tag

        def ask(self) -> Genotype | None:
            self.last = self.space.mutate(self.last, self.rng) if hasattr(self, "last") else self.initial()
            return self.last

    class Tiny(NB201Space):
        presets = {"default": {"channels": 8, "cells_per_stage": 1, "num_classes": 10, "input_shape": [3, 32, 32]}}

    def depth(weight: float = 1.0):
        return lambda genotype, ctx: {"depth": weight * len(genotype.decisions)}

    assert nas.register_searcher("walk_test")(Walk) is Walk
    registered.append((SEARCHERS, "walk_test"))
    nas.register_space("tiny_test")(Tiny)
    registered.append((SPACES, "tiny_test"))
    nas.register_evaluator("depth_test")(depth)
    registered.append((EVALUATORS, "depth_test"))
    for group, name in (("searcher", "walk_test"), ("space", "tiny_test"), ("evaluator", "depth_test")):
        assert not (CONF_DIR / group / f"{name}.yaml").exists()
        assert name in group_options(group)

    config = compose(["space=tiny_test", "searcher=walk_test", "searcher.steps=7", "evaluator=depth_test",
                      "evaluator.weight=2.5"])
    # keyword defaults that a config can hold (a tuple as a list; an arbitrary object is left to the constructor)
    assert config["searcher"] == {"name": "walk_test", "steps": 7, "scale": 0.5, "tag": "w", "dims": [1, 2],
                                  "strict": False}
    assert config["space"] == {"name": "tiny_test", "preset": "default", "macro": {}}
    assert config["evaluator"] == {"name": "depth_test", "weight": 2.5}
    assert Tiny.name == "tiny_test"

    summary = nas.search(space="tiny_test", searcher="walk_test", evaluator="depth_test", progress=False,
                         budget__trials=3, objective="depth:max", run_dir=tmp_path / "run")
    assert len(summary.results) == 3 and all(r.genotype.space == "tiny_test" for r in summary.results)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["searcher"]["steps"] == 3


def test_unknown_or_mistyped_option_of_a_decorated_searcher_is_one_line(registered) -> None:
    class Fixed(Searcher):
        def __init__(self, count: int = 2) -> None:
            self.count = count

        def ask(self) -> Genotype | None:
            return self.initial()

    nas.register_searcher("fixed_test")(Fixed)
    registered.append((SEARCHERS, "fixed_test"))
    with pytest.raises(UserError, match=r"unknown setting 'searcher\.bogus'"):
        compose(["searcher=fixed_test", "searcher.bogus=1"])
    assert default_options("searcher", "fixed_test") == {"name": "fixed_test", "count": 2}


def test_an_evaluator_that_reads_the_dataset_gets_the_runs_dataset_and_backend(registered) -> None:
    class Sized(LoadsDataset):
        def __init__(self, dataset: dict | None = None, backend: str = "torch", scale: float = 1.0) -> None:
            self.dataset_options, self.backend, self.scale = dict(dataset or {}), backend, scale

        def __call__(self, genotype: Genotype, ctx: object) -> dict[str, float]:
            return {"size": self.scale * len(self.data.train_x)}

    nas.register_evaluator("sized_test")(Sized)
    registered.append((EVALUATORS, "sized_test"))
    config = compose(["evaluator=sized_test", "backend=jax", "dataset=digits"])
    assert config["evaluator"] == {"name": "sized_test", "backend": None, "scale": 1.0}
    spec = evaluator_spec(config)
    assert spec["backend"] == "jax" and spec["dataset"]["name"] == "digits"


def test_a_required_constructor_argument_must_be_set(registered) -> None:
    class Needs(Searcher):
        def __init__(self, table: str) -> None:
            self.table = table

        def ask(self) -> Genotype | None:
            return self.initial()

    nas.register_searcher("needs_test")(Needs)
    registered.append((SEARCHERS, "needs_test"))
    with pytest.raises(UserError, match=r"searcher\.table must be set"):
        compose(["searcher=needs_test"])
    assert compose(["searcher=needs_test", "searcher.table=x.csv"])["searcher"]["table"] == "x.csv"


def test_register_checks_what_it_registers(registered) -> None:
    with pytest.raises(TypeError, match="subclass of nas.searchers.base.Searcher"):
        nas.register_searcher("not_a_searcher")(dict)
    with pytest.raises(ValueError, match="identifier"):
        nas.register_evaluator("has space")(lambda: None)
    with pytest.raises(ValueError, match="registered twice"):  # a built-in's name, found before the clash
        nas.register_searcher("random")(type("Other", (Searcher,), {"ask": lambda self: None}))


def _env(*paths: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *map(str, paths)])
    return env


def _nas(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nas.cli.main", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """The example plugin package pip-installed into a temporary folder (not the shared environment)."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(EXAMPLE, work / "src", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(target), str(source)], check=True, capture_output=True, timeout=300)
    assert list(target.glob("nas_hill_climb-*.dist-info"))
    return target


def test_installed_plugin_searcher_runs_from_the_cli(installed_example, tmp_path) -> None:
    run = tmp_path / "run"
    done = _nas(["search", "searcher=hill_climb", "searcher.patience=50", "evaluator=cost", "budget.trials=4",
                 "space=nb201", "objective=params:min", f"run_dir={run}"], _env(installed_example), tmp_path)
    assert done.returncode == 0, done.stderr
    config = json.loads((run / "config.json").read_text())
    assert config["searcher"] == {"name": "hill_climb", "patience": 50, "mutations": 1, "restart": True,
                                  "warm_start": None, "warm_start_pool": 1000, "warm_start_top": 10,
                                  "warm_start_scores": None}
    events = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "finished"]
    assert [e["state"] for e in finished] == ["complete"] * 4
    # hill climbing: every trial after the first is one decision away from the best (fewest params) before it
    best = finished[0]
    for e in finished[1:]:
        changed = [k for k, v in e["genotype"]["decisions"].items() if best["genotype"]["decisions"][k] != v]
        assert len(changed) == 1, (best["genotype"], e["genotype"])
        best = min(best, e, key=lambda x: x["metrics"]["params"])

    # a resume reads the searcher's name from config.json (no compose): the registry loads the plugin
    resumed = _nas(["search", f"resume={run}", "budget.trials=6"], _env(installed_example), tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    events = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    assert len([e for e in events if e["event"] == "finished"]) == 6

    refused = _nas(["search", "searcher=hill_climb", "searcher.bogus=1", "evaluator=cost"], _env(installed_example),
                   tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("error: unknown setting 'searcher.bogus'; see `nas search --help` for the "
                                      "keys (add new keys with +key=value)")


def _dist(site: Path, name: str, value: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nas.plugins]\n{name} = {value}\n")


def test_a_plugin_that_fails_to_load_is_one_line_naming_it(tmp_path) -> None:
    site = tmp_path / "site"
    _dist(site, "broken_plugin", "broken_plugin_module")
    (site / "broken_plugin_module.py").write_text("import a_module_that_is_not_installed\n")
    done = _nas(["search", "evaluator=cost", "budget.trials=1"], _env(site), tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: plugin 'broken_plugin' (broken_plugin_module) failed to load: "
                                   "ModuleNotFoundError: No module named 'a_module_that_is_not_installed'")


def test_a_callable_entry_point_is_called(tmp_path) -> None:
    site = tmp_path / "site"
    _dist(site, "called_plugin", "called_plugin_module:register")
    (site / "called_plugin_module.py").write_text(
        "import nas\nfrom nas.searchers.random_search import RandomSearcher\n\n\n"
        "def register():\n    nas.register_searcher('random_again')(type('Again', (RandomSearcher,), {}))\n")
    done = _nas(["search", "searcher=random_again", "evaluator=cost", "budget.trials=2", f"run_dir={tmp_path / 'r'}"],
                _env(site), tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "r" / "config.json").read_text())["searcher"]["name"] == "random_again"
