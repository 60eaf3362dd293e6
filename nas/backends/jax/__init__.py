"""The JAX backend (Flax NNX): op table, builder, torch weight import, training loop.

Only this package imports jax; the rest of ``nas`` reaches it through ``get_backend("jax")``.
"""

from nas.backends.jax.builder import JaxNetwork, build, count_params, load_torch_weights, torch_state
from nas.backends.jax.train import train

__all__ = ["JaxNetwork", "build", "count_params", "load_torch_weights", "torch_state", "train"]
