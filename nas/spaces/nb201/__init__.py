"""NAS-Bench-201: the 4-node, 6-edge cell in the NB201 macro network."""

from nas.spaces.nb201.space import NB201_OPS, NB201Space

__all__ = ["NB201_OPS", "NB201Space"]
