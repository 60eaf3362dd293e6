"""Model weights as safetensors files (no pickle), checked against the architecture they are loaded into."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from nas.core.errors import UserError

WEIGHTS_FILE = "model.safetensors"


def save_weights(model: nn.Module, path: Path) -> Path:
    """Write ``model``'s state dict (parameters and buffers) to ``path`` atomically."""
    tmp = path.with_name(path.name + ".tmp")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, path)
    return path


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; one line when it is missing or not a safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no weights file: {path}")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path} is not a readable safetensors file ({exc})") from None


def check_fit(expected: Mapping[str, torch.Tensor], tensors: Mapping[str, torch.Tensor], source: str,
              allow_extra: bool = False) -> None:
    """Refuse weights of another architecture, naming the first tensor that is missing or of another shape."""
    for key, value in expected.items():
        if key not in tensors:
            raise UserError(f"{source} does not fit this architecture: it has no tensor {key!r}")
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise UserError(f"{source} does not fit this architecture: tensor {key!r} has shape "
                            f"{list(tensors[key].shape)}, the architecture needs {list(value.shape)}")
    extra = [k for k in tensors if k not in expected]
    if extra and not allow_extra:
        raise UserError(f"{source} does not fit this architecture: unexpected tensor {extra[0]!r} "
                        f"({len(extra)} in all)")


def load_weights(model: nn.Module, path: str | Path, allow_extra: bool = False) -> nn.Module:
    """Load a safetensors file into ``model`` after checking every tensor's name and shape.

    ``allow_extra`` accepts tensors the model lacks (an inference model without the auxiliary heads the
    weights were trained with).
    """
    tensors = read_weights(path)
    expected = model.state_dict()
    check_fit(expected, tensors, str(path), allow_extra)
    model.load_state_dict({k: tensors[k] for k in expected})
    return model
