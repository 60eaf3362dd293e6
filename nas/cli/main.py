"""``nas``: search, resume, show, list spaces, export and train architectures, rebuild a run's report.

A user's mistake prints one ``error:`` line and exits with code 2; no traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nas.core.errors import UserError

USAGE = """usage: nas <command> [key=value ...]

commands:
  search [key=value ...]     run a search (space=, searcher=, evaluator=, backend=, dataset=, runner=,
                             budget.trials=, seed=, run_dir=, resume=<run_dir>); `nas search --help` lists all
  search -m key=a,b ...      a sweep: one search per combination [sweep_dir=..] [sweep.jobs=N]
                             [hydra/launcher=basic|joblib hydra.launcher.n_jobs=N];
                             `--cfg job|hydra|all` prints the composed config, `--info` the config groups
  completion bash            a bash completion script: eval "$(nas completion bash)"
  spaces                     the registered search spaces and published architectures
  show <arch.json|name>      an architecture: decisions, cost, shapes
  train <run_dir|arch.json|name> [recipe=cpu] [out=<dir>] [dataset=..] [backend=torch|jax] [device=..]
                             train an architecture into a model; `nas train resume=<dir>` continues one
  export <train_dir|run_dir|arch.json|name> format=onnx|pt2|flax|json [weights=..] [task=..] [out=..]
  report <run_dir> [--open]  rebuild the run's report.html (self-contained page) and open it in a browser
"""


TRAIN_KEYS = {"arch", "trial", "recipe", "out", "resume", "dataset", "backend", "device", "seed", "epochs",
              "batch_size", "lr", "threads", "task", "recipe.*", "dataset.*"}


def integer(key: str, text: str, minimum: int = 0) -> int:
    """``text`` as an integer of at least ``minimum``; a one-line ``UserError`` naming ``key`` otherwise."""
    try:
        value = int(text.strip())
    except ValueError:
        value = None
    if value is None or value < minimum:
        kind = "a non-negative integer" if minimum == 0 else f"an integer >= {minimum}"
        raise UserError(f"{key} must be {kind}, got {text!r}")
    return value


def _pairs(args: Sequence[str], allowed: set[str], command: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in args:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"malformed argument {item!r} for `nas {command}`: expected key=value")
        if key not in allowed and f"{key.split('.')[0]}.*" not in allowed:
            raise UserError(f"`nas {command}` has no option {key!r}; valid: {', '.join(sorted(allowed))}")
        out[key] = value
    return out


def cmd_search(args: Sequence[str]) -> int:
    if "--help" in args or "-h" in args:
        from nas.cli.commands import search_help

        print(search_help())
        return 0
    flags = [a for a in args if a.startswith("-")]
    if flags:
        return _search_flags(list(args), flags)
    from nas.cli.config import compose
    from nas.runner.run import search

    _no_hydra_settings(args)
    resume = [a for a in args if a.startswith("resume=")]
    if resume and len(args) > 1:
        others = [a for a in args if not a.startswith(("resume=", "budget.trials="))]
        if others:
            raise UserError(f"resume= continues a run with its own config; drop {' '.join(others)}")
    if resume:
        from nas.runner.run import resume as resume_run

        budget = next((a.split("=", 1)[1] for a in args if a.startswith("budget.trials=")), None)
        summary = resume_run(resume[0].split("=", 1)[1],
                             budget=None if budget is None else integer("budget.trials", budget))
    else:
        summary = search(compose(list(args)))
    if summary.best is not None:
        from nas.cli.commands import print_best

        print_best(summary)
    print(f"run: {summary.run_dir}")
    return 0


def _search_flags(args: list[str], flags: list[str]) -> int:
    """``-m``/``--multirun`` (a sweep), ``--cfg job|hydra|all`` (print the composed config), ``--info`` (groups)."""
    from nas.cli import multirun

    known = {"-m", "--multirun", "--cfg", "--info"}
    unknown = [f for f in flags if f not in known]
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r} for `nas search`; valid: -m/--multirun, --cfg job|hydra|all, "
                        "--info, --help")
    sweep = "-m" in args or "--multirun" in args
    rest = [a for a in args if a not in ("-m", "--multirun")]
    if "--info" in rest:
        from nas.cli.commands import search_info

        print(search_info())
        return 0
    if "--cfg" in rest:
        at = rest.index("--cfg")
        part = rest[at + 1] if at + 1 < len(rest) else None
        if part not in ("job", "hydra", "all"):
            raise UserError("--cfg takes job (the search's config), hydra (Hydra's) or all; it prints it as yaml "
                            "and exits")
        print_config(rest[:at] + rest[at + 2:], part, sweep)
        return 0
    if not sweep:
        _no_hydra_settings(rest)
    return multirun.multirun(rest)


def _no_hydra_settings(args: Sequence[str]) -> None:
    """A single search takes no Hydra setting (they choose how a sweep's jobs are launched)."""
    from nas.cli.hydra_app import is_hydra_override

    hydra = [a for a in args if is_hydra_override(a)]
    if hydra:
        raise UserError(f"{hydra[0]}: Hydra's settings apply to a sweep (nas search -m ...)")


def print_config(args: list[str], part: str, sweep: bool) -> None:
    """``--cfg``: the composed config of the search (each job's for a sweep) and/or Hydra's, as yaml."""
    import yaml

    from nas.cli import multirun
    from nas.cli.config import compose
    from nas.cli.hydra_app import hydra_yaml

    overrides, options, hydra = multirun.split_sweep_options(args)
    if not sweep and (options or hydra):
        raise UserError(f"{(list(options) or hydra)[0]}: a sweep's setting; add -m")
    hydra = multirun.launcher_overrides(options, hydra) if sweep else hydra
    if "sweep_dir" in options:
        from nas.cli.hydra_app import escape

        hydra.append(f"hydra.sweep.dir={escape(options['sweep_dir'])}")
    jobs = multirun.expand(overrides) if sweep else [overrides]
    if part in ("hydra", "all"):
        print(hydra_yaml(jobs[0], hydra, sweep), end="" if part == "hydra" else "---\n")
    if part in ("job", "all"):
        if not sweep:
            print(yaml.safe_dump(compose(overrides), sort_keys=False), end="")
            return
        for k, job in enumerate(jobs):
            print(f"# job {k}: {' '.join(job)}\n" + yaml.safe_dump(compose(job), sort_keys=False), end="---\n")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    try:
        if command == "search":
            return cmd_search(rest)
        from nas.cli import commands

        if command == "completion":
            from nas.cli.completion import cmd_completion

            return cmd_completion(rest)
        if command == "spaces":
            return commands.cmd_spaces(rest)
        if command == "show":
            return commands.cmd_show(rest)
        if command == "export":
            return commands.cmd_export(rest, _pairs(rest[1:], {"format", "trial", "out", "seed", "weights", "task"},
                                                    "export"))
        if command == "report":
            return commands.cmd_report(rest)
        if command == "train":
            positional = [a for a in rest[:1] if "=" not in a]
            return commands.cmd_train(positional, _pairs(rest[len(positional):], TRAIN_KEYS, "train"))
        raise UserError(f"unknown command {command!r}; valid: search, spaces, show, export, train, report, completion")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # a path not guarded by nas.core.extras.check: still one line, exit 2
        from nas.core.extras import extra_of, message

        extra = extra_of(exc)
        if extra is None:
            raise
        print(f"error: {message(f'nas {command}', extra)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted; a search continues with `nas search resume=<run_dir>`", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
