"""The commands besides ``search``: spaces, show, export, train, report (and ``search --help``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nas.core import extras
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


def search_info() -> str:
    """``nas search --info``: the config groups, their options and defaults, and the sweep syntax."""
    from nas.cli.config import CONF_DIR, GROUPS, compose, group_options

    config = compose([])
    lines = [f"config directory: {CONF_DIR}", "", "config groups (key=option; * the default):"]
    for group in GROUPS:
        chosen = (set(config[group]) or {"none"}) if group == "logger" else {config[group].get("name")}
        shown = [f"{o}*" if o in chosen else o for o in group_options(group)]
        lines.append(f"  {group:<10} {', '.join(shown)}")
    from nas.cli.hydra_app import session

    with session() as app:
        launchers = app.config_loader.get_group_options("hydra/launcher")
    shown = ", ".join(f"{name}*" if name == "basic" else name for name in launchers)
    lines += ["", "sweeps: nas search -m key=a,b key=range(0,3) ... [sweep_dir=<dir>] [sweep.jobs=N]",
              f"  hydra/launcher: {shown} (hydra.launcher.n_jobs=N for joblib; sweep.jobs=N is short for it)",
              "print the composed config: nas search [key=value ...] --cfg job|hydra|all",
              'bash completion: eval "$(nas completion bash)"']
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


def cmd_export(args: Sequence[str], options: dict[str, str]) -> int:
    from nas.cli.main import integer
    from nas.export import check_export, export_model
    from nas.training.sources import resolve_source

    if not args or "=" in args[0]:
        raise UserError("usage: nas export <train_dir|run_dir|arch.json|name> format=onnx|pt2|flax|json "
                        "[weights=<model.safetensors>] [trial=<id>] [task=<head>] [out=<path>]")
    fmt = options.get("format", "json")
    check_export(fmt, options.get("out"))
    seed = integer("seed", options.get("seed", "0"))
    source = resolve_source(args[0], options.get("trial"))
    weights = Path(options["weights"]) if "weights" in options else source.weights
    if weights is not None and not weights.is_file():
        raise UserError(f"no weights file: {weights}")
    if weights is None and fmt != "json":
        print(f"warning: {source.label} has no trained weights; exporting a fresh initialisation (seed={seed}). "
              f"Train it with `nas train {source.label} out=<dir>` and export that directory, or pass "
              "weights=<model.safetensors>", file=sys.stderr)
    task = options.get("task") or source.task
    if source.task and options.get("task") not in (None, source.task):
        raise UserError(f"{source.label} was trained for task={source.task}; it has no weights for "
                        f"task={options['task']}")
    out, model = export_model(source.genotype, fmt, options.get("out") or source.export_dir, weights=weights,
                              seed=seed, task=task)
    for name, value in model.checks.items():
        print(f"check: {name} = {value:.2e}" + ("" if value <= 1e-4 else "  (above 1e-4)"))
    kept = "none (json holds the architecture)" if fmt == "json" else \
        f"trained ({weights})" if weights else "untrained"
    print(f"outputs: {', '.join(model.heads)}; weights: {kept}")
    print(f"exported: {out}")
    return 0


REPORT_USAGE = "usage: nas report <run_dir> [--open]"


def cmd_report(args: Sequence[str]) -> int:
    """``nas report <run_dir> [--open]``: rebuild ``report.html`` (and the plots) from the run directory."""
    flags = [a for a in args if a.startswith("-")]
    positional = [a for a in args if not a.startswith("-")]
    unknown = [f for f in flags if f != "--open"]
    if unknown or len(positional) != 1:
        raise UserError(f"unknown option {unknown[0]!r}; {REPORT_USAGE}" if unknown else REPORT_USAGE)
    from nas.runner.html import write_html_report

    path = write_html_report(positional[0], redraw=True)
    print(f"report: {path}")
    if "--open" in flags:
        import webbrowser

        if not webbrowser.open(path.resolve().as_uri()):
            print("warning: no browser could be started; open the file above yourself", file=sys.stderr)
    return 0


TRAIN_USAGE = ("usage: nas train <run_dir|arch.json|published-name> [recipe=cpu] [recipe.<field>=..] [out=<dir>] "
               "[dataset=digits] [dataset.<key>=..] [backend=torch|jax] [device=cpu|cuda] [seed=0] [trial=<id>] "
               "[task=<head>]; "
               "nas train resume=<train_dir>")
LEGACY_RECIPE_KEYS = ("epochs", "batch_size", "lr")


def cmd_train(args: Sequence[str], options: dict[str, str]) -> int:
    from nas.cli.main import integer
    from nas.training.recipes import DEFAULT_RECIPE, describe, load_recipe
    from nas.training.run import resume_training, train_genotype
    from nas.training.sources import resolve_source

    if options.get("backend") == "jax":
        extras.check("jax", "backend=jax")
    if "threads" in options:
        import torch

        threads = options.pop("threads")
        if not threads.isdigit() or int(threads) < 1:
            raise UserError(f"threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(int(threads))
    if "resume" in options:
        others = sorted(set(options) - {"resume"})
        if args or others:
            dropped = [*args, *(f"{k}={options[k]}" for k in others)]
            raise UserError(f"resume= continues a training directory with its own settings; drop {' '.join(dropped)}")
        trained = resume_training(options["resume"])
    else:
        source_arg = args[0] if args else options.get("arch")
        if not source_arg or (args and "arch" in options):
            raise UserError(TRAIN_USAGE)
        source = resolve_source(source_arg, options.get("trial"))
        overrides = {k.split(".", 1)[1]: v for k, v in options.items() if k.startswith("recipe.")}
        overrides.update({k: options[k] for k in LEGACY_RECIPE_KEYS if k in options})
        recipe = load_recipe(options.get("recipe", DEFAULT_RECIPE), overrides)
        dataset: dict[str, Any] = {"name": options.get("dataset", "digits")}
        for key, value in options.items():
            if key.startswith("dataset."):
                dataset[key.split(".", 1)[1]] = _scalar(value)
        print(describe(recipe), flush=True)
        trained = train_genotype(source.genotype, recipe, dataset, backend=options.get("backend", "torch"),
                                 device=options.get("device"), seed=integer("seed", options.get("seed", "0")),
                                 out=options.get("out"), source=source.label, task=options.get("task"))
    from nas.spaces.resolve import space_of

    print(f"trained {space_of(trained.genotype).describe(trained.genotype)}")
    print("final: " + ", ".join(f"{k}={v:,.4g}" for k, v in trained.metrics.items()))
    if trained.out is not None:
        print(f"out: {trained.out}")
    return 0


def _scalar(value: str) -> Any:
    import yaml

    return yaml.safe_load(value)
