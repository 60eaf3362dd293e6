"""Exporters: architectures and trained models in portable formats (see ``exporters``)."""

from nas.export.exporters import EXPORTERS, card, check_export, export_model, inference_model, load_flax

__all__ = ["EXPORTERS", "card", "check_export", "export_model", "inference_model", "load_flax"]
