"""HyTra (BossNAS, Li et al. ICCV 2021): the hybrid CNN-transformer fabric, its layers and BossNet-T."""

from nas.spaces.hytra.layers import LayerConfig, add_layer
from nas.spaces.hytra.published import PAPER
from nas.spaces.hytra.space import HyTraSpace, build_network, layer_config, tokens_of

__all__ = ["PAPER", "HyTraSpace", "LayerConfig", "add_layer", "build_network", "layer_config", "tokens_of"]
