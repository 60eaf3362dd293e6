"""The training directory that ``nas train out=<dir>`` writes and ``resume=<dir>`` continues.

| file | what |
|---|---|
| ``model.safetensors`` | the trained weights (written at the end) |
| ``arch.json`` | the genotype with its card (cost, shapes, readable form) |
| ``recipe.yaml`` | the resolved recipe, plus what else the run needs to continue (dataset, backend, seed) |
| ``metrics.jsonl`` | one JSON object per finished epoch: loss, train/valid accuracy, learning rate, seconds |
| ``last.ckpt`` | the loop's state after the last finished epoch (model, optimiser, random states) |

``last.ckpt`` is a ``torch.save`` file of tensors and plain data, read back with ``weights_only=True``.
Every file is written to a temporary name and renamed, so a kill leaves the previous epoch's files whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
import yaml

from nas.core.errors import UserError
from nas.core.genotype import Genotype

ARCH_FILE, RECIPE_FILE, METRICS_FILE, CHECKPOINT_FILE = "arch.json", "recipe.yaml", "metrics.jsonl", "last.ckpt"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def is_training_dir(path: Path) -> bool:
    """Whether ``path`` holds a training directory's ``arch.json`` and ``recipe.yaml``."""
    return (path / ARCH_FILE).is_file() and (path / RECIPE_FILE).is_file()


class TrainDir:
    """One training directory; the ``Checkpointer`` of the torch training loop."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, card: dict[str, Any], settings: dict[str, Any]) -> TrainDir:
        """A new directory (refused when ``path`` already holds a training run or other files)."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            hint = f"; `nas train resume={path}` continues it" if is_training_dir(path) else ""
            raise UserError(f"out={path} exists and is not empty{hint}")
        path.mkdir(parents=True, exist_ok=True)
        _write_atomic(path / ARCH_FILE, json.dumps(card, indent=2) + "\n")
        _write_atomic(path / RECIPE_FILE, yaml.safe_dump(settings, sort_keys=False))
        return cls(path)

    @classmethod
    def open(cls, path: str | Path) -> TrainDir:
        """An existing directory (one line when it is not a training directory)."""
        path = Path(path)
        if not path.is_dir() or not is_training_dir(path):
            raise UserError(f"not a training directory (no {ARCH_FILE} and {RECIPE_FILE}): {path}")
        return cls(path)

    @property
    def genotype(self) -> Genotype:
        """The trained architecture (one line naming ``arch.json`` when it is corrupt)."""
        file = self.path / ARCH_FILE
        try:
            data = json.loads(file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{file} is corrupt (not JSON: {exc})") from None
        if not isinstance(data, dict):
            raise UserError(f"{file} is corrupt: not a JSON object")
        return Genotype.from_json(data.get("genotype", data))

    @property
    def settings(self) -> dict[str, Any]:
        """The resolved recipe, dataset and run settings (one line naming ``recipe.yaml`` when it is corrupt)."""
        file = self.path / RECIPE_FILE
        try:
            settings = yaml.safe_load(file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise UserError(f"{file} is corrupt (not YAML: {str(exc).splitlines()[0]})") from None
        if not isinstance(settings, dict) or not isinstance(settings.get("recipe"), dict) \
                or not isinstance(settings.get("dataset"), dict):
            raise UserError(f"{file} is corrupt: it lacks the recipe and dataset of the training")
        return settings

    @property
    def weights(self) -> Path:
        from nas.training.weights import WEIGHTS_FILE

        return self.path / WEIGHTS_FILE

    def metrics(self) -> list[dict[str, Any]]:
        """The finished epochs' metrics, in order."""
        path = self.path / METRICS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def restore(self) -> dict[str, Any] | None:
        """The state after the last finished epoch; ``metrics.jsonl`` is cut back to that epoch."""
        path = self.path / CHECKPOINT_FILE
        if not path.exists():
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a truncated or foreign file: say which, no traceback
            raise UserError(f"{path} is not a readable checkpoint ({exc.__class__.__name__})") from None
        kept = [m for m in self.metrics() if m.get("epoch", 0) <= state["epoch"]]
        _write_atomic(self.path / METRICS_FILE, "".join(json.dumps(m) + "\n" for m in kept))
        return state

    def save(self, epoch: int, state: dict[str, Any], metrics: dict[str, float]) -> None:
        """Append this epoch's metrics, then keep the loop state (a kill in between leaves a metrics line
        ahead of the checkpoint, which ``restore`` drops before the epoch is run again)."""
        self.log_epoch(epoch, metrics)
        tmp = self.path / (CHECKPOINT_FILE + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path / CHECKPOINT_FILE)

    def log_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """Append one epoch's line to ``metrics.jsonl``."""
        with open(self.path / METRICS_FILE, "a") as f:
            f.write(json.dumps({"epoch": epoch, **{k: float(v) for k, v in metrics.items()}}) + "\n")
