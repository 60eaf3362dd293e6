"""NASNet (Zoph et al., CVPR 2018): the cell space, its macro presets and the published NASNet-A."""

from nas.spaces.nasnet.cell import Block, Cell
from nas.spaces.nasnet.droppath import drop_rate, layer_drop_rate
from nas.spaces.nasnet.ops import OP_NAMES
from nas.spaces.nasnet.published import NASNET_A_NORMAL, NASNET_A_REDUCE, paper_cost
from nas.spaces.nasnet.space import NASNetSpace

__all__ = ["NASNET_A_NORMAL", "NASNET_A_REDUCE", "OP_NAMES", "Block", "Cell", "NASNetSpace", "drop_rate",
           "layer_drop_rate", "paper_cost"]
