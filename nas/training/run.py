"""``nas train``: train an architecture under a named recipe, optionally into a training directory.

Everything a user can get wrong (source, recipe, dataset, device, output directory) is checked before the
directory is created, so a bad command leaves nothing behind. Progress is one line per epoch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.core import extras
from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.export.exporters import card, single_task

BACKENDS = ("torch", "jax")


@dataclass
class Trained:
    """What a training run leaves: final metrics, the trained torch module (weights in torch naming for both
    backends) and the training directory, if any."""

    genotype: Genotype
    metrics: dict[str, float]
    model: Any
    out: Path | None


def _printer(total: int, enabled: bool) -> Callable[[int, dict[str, float]], None]:
    started = time.perf_counter()

    def show(epoch: int, metrics: dict[str, float]) -> None:
        if not enabled:
            return
        parts = [f"epoch {epoch}/{total}"]
        for key, label in (("train_loss", "loss"), ("train_accuracy", "train"), ("valid_accuracy", "valid")):
            if key in metrics:
                value = metrics[key]
                parts.append(f"{label} {value:.4f}" if key == "train_loss" else f"{label} {value:.2f}%")
        elapsed = time.perf_counter() - started
        parts.append(f"{elapsed:.0f}s")
        print("  ".join(parts), flush=True)

    return show


def train_genotype(genotype: Genotype, recipe: dict[str, Any], dataset: dict[str, Any], backend: str = "torch",
                   device: str | None = None, seed: int = 0, out: str | Path | None = None,
                   progress: bool = True, source: str | None = None, task: str | None = None) -> Trained:
    """Train ``genotype`` (adapted to the dataset's input shape and classes) under ``recipe``; ``task`` picks
    the classification head of a multitask network."""
    from nas.data.base import load_dataset
    from nas.spaces.resolve import space_of
    from nas.training.directory import TrainDir
    from nas.training.recipes import train_config
    from nas.training.sources import adapt_to_data

    if backend not in BACKENDS:
        raise UserError(f"unknown backend {backend!r}; valid choices: {', '.join(BACKENDS)}")
    if backend == "jax":
        extras.check("jax", "backend=jax")
    config = train_config(recipe, seed)
    options = dict(dataset)
    data = load_dataset(options.pop("name"), **options)
    genotype = adapt_to_data(genotype, data.input_shape, data.num_classes)
    arch = single_task(space_of(genotype).decode(genotype), task)
    if tuple(arch.input_shape) != tuple(data.input_shape):
        raise UserError(f"the architecture takes input {list(arch.input_shape)}, the dataset gives "
                        f"{list(data.input_shape)}; train on a matching dataset (or dataset.resolution=)")
    if device:
        _check_device(backend, device)
    settings = {"recipe": recipe, "dataset": dict(dataset), "backend": backend, "device": device, "seed": seed,
                "source": source, "task": task}
    train_dir = TrainDir.create(out, card(genotype), settings) if out is not None else None
    return _run(genotype, arch, data, config, backend, device, train_dir, progress)


def resume_training(path: str | Path, progress: bool = True) -> Trained:
    """Continue the training directory ``path`` from its last finished epoch."""
    from nas.data.base import load_dataset
    from nas.spaces.resolve import space_of
    from nas.training.directory import TrainDir
    from nas.training.recipes import train_config

    train_dir = TrainDir.open(path)
    settings = train_dir.settings
    if settings.get("backend", "torch") != "torch":
        raise UserError(f"{path} was trained with backend={settings['backend']}; resume= continues torch runs only")
    genotype = train_dir.genotype
    config = train_config(settings["recipe"], int(settings.get("seed", 0)))
    arch = single_task(space_of(genotype).decode(genotype), settings.get("task"))
    options = dict(settings["dataset"])
    data = load_dataset(options.pop("name"), **options)
    done = len(train_dir.metrics())
    if progress:
        print(f"resuming {path} after epoch {done} of {config.epochs}", flush=True)
    return _run(genotype, arch, data, config, "torch", settings.get("device"), train_dir, progress)


def _check_device(backend: str, device: str) -> None:
    if backend == "torch":
        from nas.backends.torch.device import torch_device

        torch_device(device)
    else:
        from nas.backends.jax.train import jax_device

        jax_device(device)


def _run(genotype: Genotype, arch: Any, data: Any, config: Any, backend: str, device: str | None,
         train_dir: Any, progress: bool) -> Trained:
    from nas.training.weights import save_weights

    show = _printer(config.epochs, progress)

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        show(epoch, metrics)
        return False

    if backend == "torch":
        from nas.backends.torch import build
        from nas.backends.torch.train import train

        model = build(arch, seed=config.seed)
        metrics = train(arch, data, config, report, device=device or "cpu", checkpoint=train_dir, model=model)
        model = model.cpu().eval()
    else:
        from nas.backends.jax import build as build_jax
        from nas.backends.jax.train import train as train_jax
        from nas.training.convert import torch_from_jax

        jax_model = build_jax(arch, seed=config.seed)

        def report_jax(epoch: int, metrics: dict[str, float]) -> bool:
            if train_dir is not None:
                train_dir.log_epoch(epoch, metrics)
            return report(epoch, metrics)

        metrics = train_jax(arch, data, config, report_jax, device=device, model=jax_model)
        model = torch_from_jax(jax_model, arch).eval()
    if train_dir is not None:
        save_weights(model, train_dir.weights)
    return Trained(genotype, metrics, model, train_dir.path if train_dir is not None else None)
