"""The only reasons a test may skip, and helpers that skip with them.

``tests/conftest.py`` fails the session when a test skips for any other reason, so a missing data
file or a broken import cannot silently turn a test into a skip.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path
from types import ModuleType

import pytest

NEEDS_GPU = "needs a GPU"
NEEDS_CUDA = "needs CUDA"
NEEDS_NO_GPU = "needs no GPU"  # tests of the error raised when a requested device is missing
NEEDS_EXTRA = "needs the optional extra"
NEEDS_BROWSER = "needs a browser"  # the report.html test drives the system's chromium

ALLOWED_SKIP_PREFIXES: tuple[str, ...] = (NEEDS_GPU, NEEDS_CUDA, NEEDS_NO_GPU, NEEDS_EXTRA, NEEDS_BROWSER)


def skip_allowed(reason: str) -> bool:
    """Whether a skip with this reason is allowed (pytest may prefix it with ``Skipped: ``)."""
    reason = reason.removeprefix("Skipped: ").strip()
    return reason.startswith(ALLOWED_SKIP_PREFIXES)


def extra_reason(extra: str, module: str) -> str:
    """The allowed skip reason for an optional extra whose module is not installed."""
    return f"{NEEDS_EXTRA} {extra!r} that is not installed (no module {module!r})"


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` from the optional extra ``extra`` or skip the calling test with the allowed reason."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise  # the extra is installed but one of its own imports is broken: that is a failure
        pytest.skip(extra_reason(extra, module), allow_module_level=True)


def require_shared_data(path: Path) -> Path:
    """``path`` in the shared data folder beside the repository; a missing one fails the test, never skips it."""
    if not path.exists():
        pytest.fail(f"shared data not found at {path}: tests of real data need the shared data folder beside the "
                    "repository (as in CI)", pytrace=False)
    return path


def require_browser(name: str = "chromium") -> Path:
    """The system browser ``name`` on the PATH, or skip the calling test with the allowed reason (``make install``
    installs Debian's chromium where it can: as root with apt-get)."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{NEEDS_BROWSER}: no {name} on the PATH (apt-get install -y {name}; `make install` does it as "
                    "root)")
    return Path(found)
