"""The commands besides ``search``: spaces, show, export, train (and ``search --help``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.core.errors import UserError


def search_help() -> str:
    from nas.cli.config import GROUPS, compose, group_options

    lines = ["usage: nas search [key=value ...]", "", "config groups (key=option):"]
    lines += [f"  {g:<10} {', '.join(group_options(g))}" for g in GROUPS]
    lines += ["", "settings with their defaults (override any as key=value):"]
    config = compose([])

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        else:
            lines.append(f"  {prefix}={json.dumps(value)}")

    walk("", config)
    return "\n".join(lines)


def print_best(summary: Any) -> None:
    best, space = summary.best, summary.space
    metrics = ", ".join(f"{k}={v:,.4g}" for k, v in best.metrics.items())
    print(f"best: trial {best.trial}  {space.describe(best.genotype)}")
    print(f"      {metrics}")


def cmd_spaces(args: Sequence[str]) -> int:
    from nas.core.space import PUBLISHED, SPACES

    print(f"{'space':<12}{'version':>8}{'size':>14}  presets")
    for name in SPACES.names():
        space = SPACES.get(name)()
        size = space.size()
        shown = "infinite" if not size else f"{size:,}" if size < 10**12 else f"{size:.2e}"
        print(f"{name:<12}{space.version:>8}{shown:>14}  "
              f"{', '.join(space.presets)}")
    print("\npublished architectures: " + ", ".join(PUBLISHED.names()))
    return 0


def cmd_show(args: Sequence[str]) -> int:
    import nas
    from nas.spaces.resolve import space_of

    if len(args) != 1:
        raise UserError("usage: nas show <arch.json|published-name>")
    genotype = nas.load(args[0])
    space = space_of(genotype)
    arch = space.decode(genotype)
    cost = nas.cost(genotype)
    print(f"space:        {genotype.space} v{genotype.version}")
    print(f"architecture: {space.describe(genotype)}")
    print(f"fingerprint:  {genotype.fingerprint()}")
    print(f"macro:        {json.dumps(genotype.macro_dict)}")
    aux = "params_with_aux" in cost
    print(f"params:       {cost['params']:,}" + (f"   (with aux heads: {cost['params_with_aux']:,})" if aux else ""))
    print(f"macs:         {cost['macs']:,}" + (f"   (with aux heads: {cost['macs_with_aux']:,})" if aux else ""))
    print(f"input:        {list(arch.input_shape)}   outputs: "
          + ", ".join(f"{k} {list(v)}" for k, v in arch.output_shapes.items()))
    print(f"nodes:        {len(arch.nodes)}")
    return 0


def _genotype_from(source: str, trial: str | None) -> tuple[Any, Path]:
    import nas
    from nas.core.genotype import Genotype
    from nas.runner.journal import read_events, replay

    path = Path(source)
    if path.is_dir():
        if not (path / "trials.jsonl").exists():
            raise UserError(f"not a run directory (no trials.jsonl): {path}")
        if trial is None:
            if not (path / "best.json").exists():
                raise UserError(f"{path} has no best.json yet; pick a trial with trial=<id>")
            return nas.load(path / "best.json"), path / "export"
        results, _ = replay(read_events(path / "trials.jsonl"))
        match = [r for r in results if str(r.trial) == str(trial)]
        if not match:
            ids = ", ".join(str(r.trial) for r in results[:20])
            raise UserError(f"no finished trial {trial} in {path}; finished trials: {ids}")
        return Genotype.from_json(match[0].genotype.to_json()), path / "export"
    return nas.load(source), Path("export")


def cmd_export(args: Sequence[str], options: dict[str, str]) -> int:
    from nas.export import EXPORTERS, export_genotype

    if not args:
        raise UserError("usage: nas export <run_dir|arch.json> format=json|torchscript|onnx [trial=<id>] [out=<path>]")
    fmt = options.get("format", "json")
    if fmt not in EXPORTERS:
        raise UserError(f"unknown format {fmt!r}; valid choices: {', '.join(EXPORTERS.names())}")
    genotype, default_out = _genotype_from(args[0], options.get("trial"))
    out = export_genotype(genotype, fmt, options.get("out") or default_out, seed=int(options.get("seed", 0)))
    print(f"exported: {out}")
    return 0


def cmd_train(options: dict[str, str]) -> int:
    import nas
    from nas.evaluators.base import EvalContext
    from nas.evaluators.train import TrainEvaluator
    from nas.spaces.resolve import space_of

    if "arch" not in options:
        raise UserError("usage: nas train arch=<arch.json|published-name> [epochs=..] [dataset=..]")
    genotype = nas.load(options["arch"])
    dataset = {"name": options.get("dataset", "digits")}
    if "dataset.root" in options:
        dataset["root"] = options["dataset.root"]
    evaluator = TrainEvaluator(backend=options.get("backend", "torch"), dataset=dataset,
                               epochs=int(options.get("epochs", 5)), batch_size=int(options.get("batch_size", 64)),
                               lr=float(options.get("lr", 0.05)))
    data = evaluator.data
    space = space_of(genotype)
    macro = genotype.macro_dict
    if list(macro.get("input_shape", data.input_shape)) != list(data.input_shape):
        raise UserError(f"{options['arch']} takes input {macro['input_shape']}, the dataset gives "
                        f"{list(data.input_shape)}; train on a matching dataset")

    def report(epoch: int, metrics: dict[str, float]) -> bool:
        print(f"epoch {epoch}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()), flush=True)
        return False

    metrics = evaluator(genotype, EvalContext(seed=int(options.get("seed", 0)), report=report))
    print(f"trained {space.describe(genotype)}")
    print("final: " + ", ".join(f"{k}={v:,.4g}" for k, v in metrics.items()))
    return 0
