"""Backends lower an ``ArchSpec`` into a native module; imported lazily (torch/jax are heavy)."""

from __future__ import annotations

from typing import Any, Protocol

from nas.core import extras
from nas.core.errors import UnknownNameError
from nas.core.ir import ArchSpec

BACKENDS = ("torch", "jax")


class Backend(Protocol):
    """What a backend module offers: ``build`` a native module, ``train`` it on arrays."""

    def build(self, arch: ArchSpec, seed: int = 0) -> Any: ...


def get_backend(name: str) -> Any:
    """The backend module ``nas.backends.<name>`` (imported on first use)."""
    if name not in BACKENDS:
        raise UnknownNameError(f"unknown backend {name!r}; valid choices: {', '.join(BACKENDS)}")
    if name == "jax":
        extras.check("jax", "backend=jax")
    import importlib

    return importlib.import_module(f"nas.backends.{name}")


def check_device(backend: str, device: str) -> None:
    """Raise a one-line ``UserError`` when ``backend`` has no device ``device`` on this machine."""
    if backend == "jax":
        extras.check("jax", "backend=jax")
        from nas.backends.jax.train import jax_device

        jax_device(device)
    else:
        from nas.backends.torch.device import torch_device

        torch_device(device)
