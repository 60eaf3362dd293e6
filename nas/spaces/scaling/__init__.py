"""Scaling spaces: SimpleNet and ResNet-RS, searched along depth, width and resolution."""

from nas.spaces.scaling.resnet_rs import ResNetRSSpace
from nas.spaces.scaling.simplenet import SimpleNetSpace

__all__ = ["ResNetRSSpace", "SimpleNetSpace"]
