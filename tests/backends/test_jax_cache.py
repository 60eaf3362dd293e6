"""The persistent JAX compilation cache: a computation compiled in one process is read back in the next."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nas.testing.skips import require_extra

require_extra("jax", "jax")

PROGRAM = """
import jax, jax.numpy as jnp
events = []
jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
import nas.backends.jax as backend
def f(x, w):
    for _ in range(12):
        x = jnp.tanh(x @ w) + jnp.sin(x)
    return x.sum()
jax.jit(jax.grad(f)).lower(jnp.ones((8, 8)), jnp.ones((8, 8))).compile()
print(backend.COMPILATION_CACHE)
print(",".join(sorted({e.rsplit("/", 1)[-1] for e in events if "compilation_cache" in e})))
"""


def _compile(env: dict[str, str]) -> tuple[str, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr[-2000:]
    where, events = done.stdout.strip().splitlines()[-2:]
    return where, set(events.split(",")) - {""}


def test_a_second_process_reads_the_compiled_step_from_the_cache(tmp_path) -> None:
    cache = tmp_path / "jax-cache"
    where, first = _compile({"NAS_JAX_CACHE_DIR": str(cache)})
    assert where == str(cache) and "cache_misses" in first and "cache_hits" not in first
    assert any(p.name.endswith("-cache") for p in cache.iterdir())
    _, second = _compile({"NAS_JAX_CACHE_DIR": str(cache)})
    assert "cache_hits" in second


def test_the_default_is_the_user_cache_and_off_turns_it_off(tmp_path) -> None:
    where, _ = _compile({"NAS_JAX_CACHE_DIR": "", "XDG_CACHE_HOME": str(tmp_path)})
    assert where == str(tmp_path / "nas" / "jax")
    where, events = _compile({"NAS_JAX_CACHE_DIR": "off"})
    assert where == "None" and "cache_hits" not in events and "cache_misses" not in events


@pytest.mark.parametrize("value", ["off", "OFF", "none"])
def test_cache_dir_honours_the_switch(monkeypatch, value: str) -> None:
    from nas.backends.jax.cache import cache_dir

    monkeypatch.setenv("NAS_JAX_CACHE_DIR", value)
    assert cache_dir() is None
