"""The PyTorch backend: op table, builder, training loop."""

from nas.backends.torch.builder import TorchNetwork, build, count_params
from nas.backends.torch.train import accuracy, train

__all__ = ["TorchNetwork", "accuracy", "build", "count_params", "train"]
