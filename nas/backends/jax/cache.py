"""A persistent XLA compilation cache for everything nas compiles with JAX.

Compiling a new architecture's train step costs XLA 6-30 s on a CPU, and a search, its worker processes, a
resumed run and the test suite compile the same computations again and again. JAX can keep compiled executables
on disk (off by default); with it, a computation compiled before in any process is read back in about a second.
Where: ``$NAS_JAX_CACHE_DIR``, else ``$XDG_CACHE_HOME/nas/jax`` (``~/.cache/nas/jax``), at most ``MAX_BYTES``
(JAX evicts the least recently used entries). ``NAS_JAX_CACHE_DIR=off`` leaves JAX's default (no cache); a cache
directory configured in JAX itself is kept. A cache directory that cannot be created leaves the cache off rather
than failing a run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import jax

ENV = "NAS_JAX_CACHE_DIR"
MAX_BYTES = 2 * 1024**3
MIN_COMPILE_SECONDS = 0.1  # skip trivial computations (their entries would cost more to read than to compile)


def cache_dir() -> Path | None:
    """The directory nas asks JAX to cache in, or None when ``NAS_JAX_CACHE_DIR=off``."""
    chosen = os.environ.get(ENV, "").strip()
    if chosen.lower() in ("off", "none", "0", "false"):
        return None
    if chosen:
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nas" / "jax"


def enable_compilation_cache() -> Path | None:
    """Point JAX's persistent compilation cache at ``cache_dir()`` (unless JAX already has one); the directory in
    use, or None when the cache is off."""
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    path = cache_dir()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if importlib.util.find_spec("filelock") is not None:  # JAX's size bound locks the directory with it
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    return path
