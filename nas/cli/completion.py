"""Shell completion: ``eval "$(nas completion bash)"`` completes commands, and for ``nas search`` Hydra's completion
over our config (groups and their options, nested keys, ``hydra/launcher=``), as a ``hydra.main`` app has it.

The bash function sends the line up to the cursor to ``nas completion query`` (in ``COMP_LINE``, as Hydra's
bash completion does), which prints the candidates. ``nas search`` candidates come from Hydra's own
``CompletionPlugin._query`` on the config loader of ``nas/cli/conf`` (with the components registered from
Python put in the ConfigStore first), plus our flags and sweep options. When nothing matches, bash completes
file names (``-o default``), e.g. for ``nas show <arch.json>``.
"""

from __future__ import annotations

import re
from pathlib import Path

from nas.core.errors import UserError

COMMANDS = ("search", "spaces", "show", "train", "export", "completion")
SEARCH_EXTRAS = ("-m", "--multirun", "--cfg", "--info", "--help", "sweep_dir=", "sweep.jobs=")
EXPORT_KEYS = ("format=onnx", "format=pt2", "format=flax", "format=json", "trial=", "out=", "seed=", "weights=",
               "task=")
TRAIN_KEYS = ("recipe=", "out=", "resume=", "dataset=", "backend=torch", "backend=jax", "device=", "seed=", "trial=",
              "task=", "threads=")

SCRIPT = """# bash completion for {prog}: eval "$({prog} completion bash)"
_nas_completion()
{{
    local choices
    choices=$(COMP_LINE="${{COMP_LINE:0:$COMP_POINT}}" {prog} completion query 2>/dev/null)
    COMPREPLY=($(compgen -W "$choices" -- "${{COMP_WORDS[COMP_CWORD]}}"))
}}
COMP_WORDBREAKS=${{COMP_WORDBREAKS//=}}
complete -o nospace -o default -F _nas_completion {prog}
"""


def bash_script(prog: str = "nas") -> str:
    """The bash completion script (``=`` is taken out of ``COMP_WORDBREAKS``, as Hydra's script does, so that
    ``space=nb201`` is one word)."""
    return SCRIPT.format(prog=prog)


def _search(rest: str) -> list[str]:
    """Candidates for the words after ``nas search``: Hydra's completion over our config, and our flags."""
    from hydra._internal.core_plugins.bash_completion import BashCompletion

    from nas.cli.config import REGISTERED_GROUPS, _store_registered, group_options
    from nas.cli.hydra_app import session
    from nas.core.plugins import load_plugins

    words = rest.split()
    word = "" if not rest or rest[-1].isspace() else words[-1]
    if (words[-1:] if not word else words[-2:-1]) == ["--cfg"]:
        return [p for p in ("job", "hydra", "all") if p.startswith(word)]
    load_plugins()
    _store_registered([f"{group}={name}" for group in REGISTERED_GROUPS for name in group_options(group)])
    hydra_words = [w for w in words if w not in ("--cfg", "job", "hydra", "all", "--info", "--help")]
    line = " ".join(hydra_words) + (" " if not word and hydra_words else "")
    with session() as app:
        try:
            found = BashCompletion(app.config_loader)._query("config", line)
        except SystemExit:  # Hydra's argument parser on a line it cannot parse
            found = []
    extras = [e for e in SEARCH_EXTRAS if word and e.startswith(word)]
    return sorted(set(found) | set(extras))


def _keys(word: str, keys: tuple[str, ...], conf: Path | None = None) -> list[str]:
    options = list(keys)
    if conf is not None:
        options += [f"recipe={p.stem}" for p in sorted(conf.glob("*.yaml"))]
    return [o for o in options if o.startswith(word)]


def query(line: str) -> list[str]:
    """The completions of the last word of ``line`` (a command line up to the cursor, program name first)."""
    match = re.match(r"\s*\S+\s+(\S+)(\s+(.*))?$", line, flags=re.S)
    if match is None or (match.group(2) is None and not line[-1].isspace()):
        word = line.split()[1] if len(line.split()) > 1 else ""
        return [c for c in COMMANDS if c.startswith(word)]
    command, rest = match.group(1), match.group(3) or ""
    word = "" if not rest or rest[-1].isspace() else rest.split()[-1]
    if command == "search":
        return _search(rest)
    if command == "export":
        return _keys(word, EXPORT_KEYS)
    if command == "train":
        from nas.cli.config import CONF_DIR

        return _keys(word, TRAIN_KEYS, CONF_DIR / "recipe")
    if command == "completion":
        return [c for c in ("bash",) if c.startswith(word)]
    return []


def cmd_completion(args: list[str]) -> int:
    """``nas completion bash`` prints the script; ``nas completion query`` answers it (``COMP_LINE``)."""
    import os

    if args == ["bash"]:
        print(bash_script(), end="")
        return 0
    if args == ["query"]:
        print("\n".join(query(os.environ.get("COMP_LINE", ""))))
        return 0
    raise UserError('usage: eval "$(nas completion bash)"   (bash completion for nas)')
