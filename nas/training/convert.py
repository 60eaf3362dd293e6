"""Weights across backends: a torch network's weights into a Flax NNX network and back, by node name.

Both backends lower the same ``ArchSpec`` and name every variable after its node, so conversion is a copy
under the same keys (``nas.backends.jax.load_torch_weights`` / ``torch_state``); the counts and shapes are
checked on the way. Torch's ``num_batches_tracked`` counters have no JAX counterpart and are kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nas.core.ir import ArchSpec


def jax_from_torch(torch_model: torch.nn.Module, arch: ArchSpec) -> Any:
    """A Flax NNX network of ``arch`` holding ``torch_model``'s weights and batch statistics."""
    from nas.backends.jax import build, load_torch_weights

    return load_torch_weights(build(arch, seed=0), torch_model.cpu())


def torch_from_jax(jax_model: Any, arch: ArchSpec) -> torch.nn.Module:
    """A ``TorchNetwork`` of ``arch`` holding ``jax_model``'s weights and batch statistics."""
    from nas.backends.jax import torch_state
    from nas.backends.torch import build

    model = build(arch, seed=0)
    state = torch_state(jax_model)
    target = model.state_dict()
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    extra = [k for k in state if k not in target]
    if missing or extra:
        raise KeyError(f"JAX and torch networks differ: missing {missing[:3]}, unexpected {extra[:3]}")
    loaded = {k: (torch.as_tensor(np.asarray(state[k])).to(v.dtype).reshape(v.shape) if k in state else v)
              for k, v in target.items()}
    model.load_state_dict(loaded)
    return model
