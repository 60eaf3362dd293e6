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
  search -m key=a,b ...      a sweep: one search per combination [sweep_dir=..] [sweep.jobs=N];
                             `--cfg job` prints the composed config, `--info` the config groups
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
    """``-m``/``--multirun`` (a sweep), ``--cfg job`` (print the composed config), ``--info`` (config groups)."""
    from nas.cli import multirun

    known = {"-m", "--multirun", "--cfg", "--info"}
    unknown = [f for f in flags if f not in known]
    if unknown:
        raise UserError(f"unknown option {unknown[0]!r} for `nas search`; valid: -m/--multirun, --cfg job, --info, "
                        "--help")
    sweep = "-m" in args or "--multirun" in args
    rest = [a for a in args if a not in ("-m", "--multirun")]
    if "--info" in rest:
        from nas.cli.commands import search_info

        print(search_info())
        return 0
    if "--cfg" in rest:
        at = rest.index("--cfg")
        if rest[at + 1:at + 2] != ["job"]:
            raise UserError("--cfg takes `job` (print the composed config as yaml and exit)")
        rest = rest[:at] + rest[at + 2:]
        import yaml

        from nas.cli.config import compose

        if not sweep:
            print(yaml.safe_dump(compose(rest), sort_keys=False), end="")
            return 0
        overrides, _ = multirun.split_sweep_options(rest)
        for k, job in enumerate(multirun.expand(overrides)):
            print(f"# job {k}: {' '.join(job)}\n" + yaml.safe_dump(compose(job), sort_keys=False), end="---\n")
        return 0
    return multirun.multirun(rest)


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
        raise UserError(f"unknown command {command!r}; valid: search, spaces, show, export, train, report")
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
