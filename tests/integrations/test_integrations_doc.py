"""The Python examples of docs/integrations.md run as written (one namespace, in order)."""

from __future__ import annotations

import re
from pathlib import Path

from nas.searchers.base import SEARCHERS

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_the_examples_of_the_integrations_page_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the Plugins example writes runs/doc-walk
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 3
    namespace: dict = {"__name__": "docs_integrations"}
    try:
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation's examples
    finally:
        SEARCHERS._entries.pop("walk", None)  # the Plugins example's searcher: not left to later tests
    assert namespace["study"].best_value < 2.0 and len(namespace["front"].best_trials) >= 5
    walk = namespace["walk"]  # the Plugins example: a decorated searcher run by nas.search, no yaml
    assert len(walk.results) == 3 and walk.run_dir.name == "doc-walk"
