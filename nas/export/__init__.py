"""Export found architectures: JSON genotype, TorchScript, ONNX (and the arch card)."""

from nas.export.exporters import EXPORTERS, export_genotype

__all__ = ["EXPORTERS", "export_genotype"]
