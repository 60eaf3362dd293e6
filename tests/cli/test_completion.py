"""`nas completion bash`: the script, its `query` answers (Hydra's completion over our config), and the script
run by bash itself."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli.completion import bash_script, query
from nas.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("line, expected, absent", [
    ("nas ", {"search", "spaces", "show", "train", "export", "completion"}, set()),
    ("nas sh", {"show"}, {"search"}),
    ("nas search spa", {"space="}, {"searcher="}),
    ("nas search space=", {"space=nb201", "space=hytra", "space=nasnet"}, {"space="}),
    ("nas search searcher=random searcher.", {"searcher.name="}, {"searcher.population_size="}),
    ("nas search searcher.pop", {"searcher.population_size="}, set()),
    ("nas search -m hydra/launcher=", {"hydra/launcher=basic", "hydra/launcher=joblib"}, set()),
    ("nas search -m hydra/launcher=joblib hydra.launcher.n_", {"hydra.launcher.n_jobs="}, set()),
    ("nas search --cfg ", {"job", "hydra", "all"}, set()),
    ("nas search sweep.", {"sweep.jobs="}, set()),
    ("nas export runs/x form", {"format=onnx", "format=json"}, {"out="}),
    ("nas train runs/x recipe=n", {"recipe=nb201", "recipe=nasnet_cifar"}, {"recipe=cpu"}),
])
def test_query_completes_commands_groups_and_keys(line, expected, absent):
    found = set(query(line))
    assert expected <= found and not (absent & found), found


def test_completion_command(capsys, monkeypatch):
    assert main(["completion", "bash"]) == 0
    assert capsys.readouterr().out == bash_script()
    monkeypatch.setenv("COMP_LINE", "nas search dataset=c")
    assert main(["completion", "query"]) == 0
    assert capsys.readouterr().out.split() == ["dataset=cifar10"]
    assert main(["completion", "zsh"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: usage:") and err.count("\n") == 1


def test_bash_completes_through_the_script(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "nas"  # the `nas` the script calls: this checkout's CLI
    shim.write_text(f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m nas.cli.main "$@"\n')
    shim.chmod(0o755)
    (tmp_path / "completion.bash").write_text(bash_script())
    script = ('source completion.bash; COMP_LINE="nas search space=nb searcher=ev"; COMP_POINT=19; '
              'COMP_WORDS=(nas search space=nb); COMP_CWORD=2; _nas_completion; printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["space=nb201"]
