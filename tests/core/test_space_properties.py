"""Property tests of the generic operators on the dummy space (conditionals, ints, floats)."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from nas.testing.dummy import DummySpace

space = DummySpace()
seeds = st.integers(0, 2**31 - 1)


@settings(max_examples=60, deadline=None)
@given(seeds, seeds)
def test_sample_mutate_crossover_encode_invariants(a, b):
    x, y = space.sample(a), space.sample(b)
    for g in (x, y):
        space.validate(g)
        assert ("pool_type" in g.values) == g["pool"]  # conditional decision present only when active
    child = space.mutate(x, random.Random(a))
    space.validate(child)
    assert child != x
    assert ("pool_type" in child.values) == child["pool"]
    mixed = space.crossover(x, y, random.Random(b))
    space.validate(mixed)
    for label in ("depth", "width", "kernel", "pool", "dropout"):
        assert mixed[label] in (x[label], y[label])
    vector = space.encode(x)
    assert len(vector) == len(space.spec())
    assert (vector[4] == -1.0) == (not x["pool"])


def test_size_is_none_with_floats_or_conditions():
    assert space.size() is None
