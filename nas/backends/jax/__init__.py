"""The JAX backend (Flax NNX): op table, builder, torch weight import, training loop.

Only this package imports jax; the rest of ``nas`` reaches it through ``get_backend("jax")``. Importing it turns
on the persistent compilation cache (``cache``: compiled steps are reused across trials, processes and runs).
"""

from nas.backends.jax.cache import enable_compilation_cache

COMPILATION_CACHE = enable_compilation_cache()

from nas.backends.jax.builder import JaxNetwork, build, count_params, load_torch_weights, torch_state  # noqa: E402
from nas.backends.jax.train import train  # noqa: E402

__all__ = ["COMPILATION_CACHE", "JaxNetwork", "build", "count_params", "load_torch_weights", "torch_state", "train"]
