"""Where an architecture (and maybe its trained weights) comes from: a training directory, a search run
directory (its best or one trial), an arch JSON, or a published name (``nasnet_a_mobile`` = ``nasnet-a-mobile``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nas.core.errors import UserError
from nas.core.genotype import Genotype


@dataclass(frozen=True)
class Source:
    """A resolved architecture source: the genotype, its trained weights if the source has them, and where
    exports of it go by default."""

    genotype: Genotype
    weights: Path | None
    label: str
    export_dir: Path
    task: str | None = None  # the head a training directory's weights were trained for


def published_name(name: str) -> str | None:
    """The registered published name for ``name`` (underscores accepted for hyphens), or None."""
    from nas.core.space import PUBLISHED

    for candidate in (name, name.replace("_", "-")):
        if candidate in PUBLISHED:
            return candidate
    return None


def _from_run_dir(path: Path, trial: str | None) -> Genotype:
    import nas
    from nas.runner.journal import read_events, replay

    if trial is None:
        if not (path / "best.json").exists():
            raise UserError(f"{path} has no best.json yet; pick a trial with trial=<id>")
        return nas.load(path / "best.json")
    results, _ = replay(read_events(path / "trials.jsonl"))
    match = [r for r in results if str(r.trial) == str(trial)]
    if not match:
        ids = ", ".join(str(r.trial) for r in results[:20])
        raise UserError(f"no finished trial {trial} in {path}; finished trials: {ids}")
    return Genotype.from_json(match[0].genotype.to_json())


def resolve_source(source: str, trial: str | None = None) -> Source:
    """Resolve ``source`` (see the module doc); one line when it is none of them."""
    import nas
    from nas.training.directory import TrainDir, is_training_dir

    path = Path(source)
    if path.is_dir():
        if is_training_dir(path):
            if trial is not None:
                raise UserError("trial= picks a trial of a search run directory, not of a training directory")
            train_dir = TrainDir.open(path)
            weights = train_dir.weights if train_dir.weights.exists() else None
            return Source(train_dir.genotype, weights, str(path), path / "export", train_dir.settings.get("task"))
        if (path / "trials.jsonl").exists():
            return Source(_from_run_dir(path, trial), None, str(path), path / "export")
        raise UserError(f"not a run or training directory (no trials.jsonl, no arch.json): {path}")
    if trial is not None:
        raise UserError("trial= needs a search run directory as the source")
    if path.exists():
        return Source(nas.load(path), None, str(path), Path("export"))
    name = published_name(source)
    if name is None:
        from nas.core.space import PUBLISHED

        raise UserError(f"no such file, directory or published architecture: {source} "
                        f"(published: {', '.join(PUBLISHED.names())})")
    return Source(nas.load(name), None, name, Path("export"))


def adapt_to_data(genotype: Genotype, input_shape: tuple[int, int, int] | None = None,
                  num_classes: int | None = None) -> Genotype:
    """The same decisions with the input shape and classes of a dataset, where the space's macro has them
    (a published ImageNet network trained on CIFAR-10 gets a 10-way classifier and a 32x32 input)."""
    from nas.spaces.resolve import space_of

    macro = genotype.macro_dict
    changed = dict(macro)
    if input_shape is not None and "input_shape" in macro:
        changed["input_shape"] = list(input_shape)
    if num_classes is not None and "num_classes" in macro:
        changed["num_classes"] = int(num_classes)
    if changed == macro:
        return genotype
    adapted = Genotype.make(genotype.space, genotype.version, genotype.values, changed)
    space_of(adapted).decode(adapted)  # fails here, with the space's message, if the shape does not fit
    return adapted
