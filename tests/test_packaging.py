"""The built distributions: ``python -m build`` makes a wheel and an sdist that ``twine check`` accepts, and the wheel
installed without extras into a fresh venv (no system site-packages, torch==2.13.0 first as in the Makefile) runs
the core searches and names the extra a missing feature needs.

Slow (building and installing take minutes); ``make test`` runs it with the other slow tests, so CI does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from nas.core.extras import DIST, MODULE_EXTRA

ROOT = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"

pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """``command`` with the environment of a fresh shell: no PYTHONPATH, so ``nas`` is the installed one."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist of this checkout, built in isolation (build's own venv with setuptools)."""
    out = tmp_path_factory.mktemp("dist")
    ok(run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], out))
    return out


@pytest.fixture(scope="module")
def core_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with torch and the wheel without extras."""
    venv = tmp_path_factory.mktemp("core") / "venv"
    ok(run([sys.executable, "-m", "venv", str(venv)], venv.parent))
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    ok(run([*pip, TORCH], venv.parent))
    (wheel,) = dist.glob("*.whl")
    ok(run([*pip, str(wheel), TORCH], venv.parent))
    return venv


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist):
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"{DIST.replace('-', '_')}-0.1.0-py3-none-any.whl"]
    assert len(sdists) == 1
    out = ok(run([sys.executable, "-m", "twine", "check", "--strict", str(wheels[0]), str(sdists[0])], dist))
    assert out.count("PASSED") == 2, out
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "nas/py.typed" in names and "nas/cli/conf/config.yaml" in names
    assert not [n for n in names if n.startswith("tests/")]


def test_the_core_install_has_no_extra(core_venv, tmp_path):
    code = ("import importlib.util, json, nas; "
            f"print(json.dumps([nas.__file__, [m for m in {sorted(MODULE_EXTRA)!r} if importlib.util.find_spec(m)]]))")
    where, present = json.loads(ok(run([str(core_venv / "bin" / "python"), "-c", code], tmp_path)))
    assert where.startswith(str(core_venv)), where  # the installed wheel, not this checkout
    assert present == []


def test_the_core_install_searches_nb201(core_venv, tmp_path):
    out = ok(run([str(core_venv / "bin" / "nas"), "search", "space=nb201", "space.preset=small", "budget.trials=2",
                  "evaluator.epochs=1", "evaluator.max_steps_per_epoch=4", "run_dir=nb201"], tmp_path))
    assert out.strip().splitlines()[-1] == "run: nb201"
    assert (tmp_path / "nb201" / "best.json").is_file()


def test_the_core_install_searches_nasnet_by_cost(core_venv, tmp_path):
    out = ok(run([str(core_venv / "bin" / "nas"), "search", "space=nasnet", "evaluator=cost", "budget.trials=3",
                  "objective=params:min", "run_dir=nasnet"], tmp_path))
    assert out.strip().splitlines()[-1] == "run: nasnet"
    assert (tmp_path / "nasnet" / "best.json").is_file()


@pytest.mark.parametrize("args, extra", [(["search", "backend=jax", "evaluator=cost"], "jax"),
                                         (["search", "runner=ray", "evaluator=cost"], "ray"),
                                         (["export", "nb201-best-cifar10", "format=onnx"], "export")])
def test_the_core_install_names_the_missing_extra_in_one_line(core_venv, tmp_path, args, extra):
    proc = run([str(core_venv / "bin" / "nas"), *args], tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.endswith(f" needs the {extra!r} extra: pip install '{DIST}[{extra}]'\n")
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert list(tmp_path.iterdir()) == []  # nothing written
