"""Shared test fixtures: the shared data folder beside the repository (never copied into it)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
NB201_TABLE = SHARED_DATA / "nb201" / "nb201_combined.csv"


@pytest.fixture
def nb201_table() -> Path:
    if not NB201_TABLE.is_file():
        pytest.skip(f"NB201 table not found at {NB201_TABLE}")
    return NB201_TABLE
