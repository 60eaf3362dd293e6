"""Optional extras: which feature needs which extra, and the one-line error when it is not installed.

The core install (``pip install nas-engine``) has torch, Hydra, scikit-learn, Optuna and the plotting libraries;
JAX/Flax, Ray, ONNX, pycocotools and the trackers come with extras (pyproject.toml). Code that needs one calls
``check`` before it imports or starts anything, so a missing extra is a ``UserError`` naming the extra
to install, which the CLI prints as one line with exit code 2, instead of an ``ImportError`` deep in a trial.
"""

from __future__ import annotations

import importlib.util

from nas.core.errors import UserError

DIST = "nas-engine"

# The top-level modules of each extra (pyproject.toml's [project.optional-dependencies]); every one must import.
EXTRAS: dict[str, tuple[str, ...]] = {
    "jax": ("jax", "flax", "optax"),
    "ray": ("ray",),
    "export": ("onnx", "onnxruntime", "onnxscript"),
    "detection": ("pycocotools",),
    "tracking": ("tensorboard", "mlflow"),
}

MODULE_EXTRA: dict[str, str] = {module: extra for extra, modules in EXTRAS.items() for module in modules}


class MissingExtraError(UserError, ImportError):
    """A feature whose optional extra is not installed; the message says which extra to install."""


def message(feature: str, extra: str) -> str:
    """The one line shown when ``feature`` lacks ``extra``."""
    return f"{feature} needs the {extra!r} extra: pip install '{DIST}[{extra}]'"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent blocked in sys.modules, or a module without a spec
        return False


def check(extra: str, feature: str) -> None:
    """Raise ``MissingExtraError`` when a module of ``extra`` cannot be found (nothing is imported)."""
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}; valid: {', '.join(EXTRAS)}")
    if not all(_installed(module) for module in EXTRAS[extra]):
        raise MissingExtraError(message(feature, extra))


def extra_of(exc: ModuleNotFoundError) -> str | None:
    """The extra whose module ``exc`` failed to find (None: not a module of an extra)."""
    name = (exc.name or "").partition(".")[0]
    return MODULE_EXTRA.get(name)
