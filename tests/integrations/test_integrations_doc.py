"""The Python examples of docs/integrations.md run as written (one namespace, in order)."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def test_the_examples_of_the_integrations_page_run():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 2
    namespace: dict = {"__name__": "docs_integrations"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - our own documentation's examples
    assert namespace["study"].best_value < 2.0 and len(namespace["front"].best_trials) >= 5
