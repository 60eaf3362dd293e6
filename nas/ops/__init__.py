"""The op vocabulary: names, parameter schemas, shape and cost rules (no framework imports)."""

from nas.ops.base import OPS, SAME, OpDef, conv_out, define, pair, same_pads, spatial_pads
from nas.ops.primitives import ACTIVATIONS, INITS

__all__ = ["ACTIVATIONS", "INITS", "OPS", "SAME", "OpDef", "conv_out", "define", "pair", "same_pads", "spatial_pads"]
