"""The op vocabulary: names, parameter schemas, shape and cost rules (no framework imports)."""

from nas.ops.base import OPS, OpDef, conv_out, define, pair
from nas.ops.primitives import ACTIVATIONS

__all__ = ["ACTIVATIONS", "OPS", "OpDef", "conv_out", "define", "pair"]
