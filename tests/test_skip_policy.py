"""The skip policy in ``tests/conftest.py``: allowed reasons pass, any other skip fails the session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from nas.testing.skips import NEEDS_BROWSER, NEEDS_GPU, extra_reason, skip_allowed

ROOT = Path(__file__).resolve().parents[1]

ALLOWED = f'''
import pytest
from nas.testing.skips import require_extra

def test_runs():
    pass

def test_gpu():
    pytest.skip("{NEEDS_GPU}: none here")

def test_extra():
    require_extra("surely_not_installed_module", "fancy")
'''


def run_pytest(tmp_path: Path, body: str) -> subprocess.CompletedProcess:
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(body)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_reasons() -> None:
    assert skip_allowed(f"Skipped: {NEEDS_GPU} for this")
    assert skip_allowed(extra_reason("ray", "ray"))
    assert skip_allowed(f"{NEEDS_BROWSER}: no chromium on the PATH")
    assert not skip_allowed("NB201 table not found at /x")
    assert not skip_allowed("could not import 'jax': No module named 'jax'")


def test_allowed_skips_pass_and_any_other_skip_fails_the_session(tmp_path: Path) -> None:
    allowed = run_pytest(tmp_path, ALLOWED)
    assert allowed.returncode == 0, allowed.stdout[-2000:]
    assert "1 passed, 2 skipped" in allowed.stdout and "needs the optional extra 'fancy'" in allowed.stdout
    bad = run_pytest(tmp_path, ALLOWED + '\n\ndef test_data():\n    pytest.skip("table not found")\n')
    assert bad.returncode == 1, bad.stdout[-2000:]
    assert "skips that are not allowed" in bad.stdout and "test_sample.py::test_data" in bad.stdout
