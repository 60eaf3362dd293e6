"""``benchmarks/jax_vs_torch.py``: its figures under the issue's keys, cold vs warm compilation, bad counts."""

from __future__ import annotations

import json
import sys

import pytest

from nas.testing.skips import require_extra

require_extra("jax", "jax")


def _main(bench, monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["jax_vs_torch.py", *args])
    bench.main()


@pytest.mark.parametrize("option", ["--cells", "--rounds", "--steps", "--batch"])
def test_counts_below_one_are_refused_in_one_line(benchmark_script, monkeypatch, capsys, option: str) -> None:
    with pytest.raises(SystemExit):
        _main(benchmark_script("jax_vs_torch"), monkeypatch, option, "0")
    assert f"{option} must be at least 1, got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_compilation_times_cold_and_warm_with_the_issues_keys(benchmark_script, monkeypatch, tmp_path) -> None:
    out = tmp_path / "figures.json"
    _main(benchmark_script("jax_vs_torch"), monkeypatch, "--skip-train", "--cells", "2", "--batch", "8",
          "--json", str(out))
    figures = json.loads(out.read_text())
    assert len(figures["compile_s_cold"]) == len(figures["compile_s_warm"]) == 2
    # the warm pass reads every executable the cold pass compiled: it skips XLA's compilation
    assert figures["compile_s_median_warm"] < figures["compile_s_median_cold"]
    assert figures["supernet_ratio_bossnas"] is None and figures["supernet_ratio_fbnetv5"] is None
    assert "torch only" in figures["supernet_note"]
