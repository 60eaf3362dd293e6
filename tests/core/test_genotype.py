"""Genotypes are pure data: frozen, hashable, JSON round-trip, content fingerprint."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nas.core import Genotype, GenotypeError

scalars = st.one_of(st.integers(-10**6, 10**6), st.text(max_size=8), st.booleans(),
                    st.floats(allow_nan=False, allow_infinity=False))
values = st.one_of(scalars, st.lists(scalars, max_size=4))
decisions = st.dictionaries(st.text(min_size=1, max_size=6), values, max_size=8)


@given(decisions, st.integers(0, 5))
def test_json_round_trip_and_hash(ds, version):
    g = Genotype.make("s", version, ds, {"channels": 16, "input_shape": [3, 32, 32]})
    again = Genotype.from_json(json.loads(json.dumps(g.to_json())))
    assert again == g and hash(again) == hash(g) and again.fingerprint() == g.fingerprint()


def test_fingerprint_is_content_based():
    a = Genotype.make("s", 1, {"x": 1, "y": "a"}, {"c": 8})
    assert a.fingerprint() == Genotype.make("s", 1, {"x": 1, "y": "a"}, {"c": 8}).fingerprint()
    assert a.fingerprint() != Genotype.make("s", 1, {"x": 2, "y": "a"}, {"c": 8}).fingerprint()
    assert a.fingerprint() != Genotype.make("s", 1, {"x": 1, "y": "a"}, {"c": 16}).fingerprint()
    assert a.fingerprint() != Genotype.make("s", 2, {"x": 1, "y": "a"}, {"c": 8}).fingerprint()


def test_frozen_and_replace():
    g = Genotype.make("s", 1, {"x": 1, "y": [1, 2]})
    with pytest.raises(AttributeError):
        g.space = "t"
    h = g.replace(x=5)
    assert h["x"] == 5 and g["x"] == 1 and h["y"] == (1, 2)
    with pytest.raises(KeyError):
        g.replace(z=1)


@pytest.mark.parametrize("data, message", [
    ("text", "JSON object"),
    ({"space": "s", "version": 1}, "lacks decisions"),
    ({"space": "s", "version": "1", "decisions": {}}, "version"),
    ({"space": "s", "version": 1, "decisions": [1]}, "decisions"),
    ({"space": "s", "version": 1, "decisions": {"x": {"y": object()}}}, "JSON scalars"),
])
def test_malformed_json(data, message):
    with pytest.raises(GenotypeError, match=message):
        Genotype.from_json(data)
