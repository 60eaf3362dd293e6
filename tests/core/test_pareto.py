"""Non-dominated sorting and crowding distance."""

import math

from hypothesis import given
from hypothesis import strategies as st

from nas.core.pareto import crowding_distance, dominates, non_dominated_sort, pareto_indices

points = st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=40)


@given(points)
def test_fronts_partition_and_order(pts):
    fronts = non_dominated_sort(pts)
    assert sorted(i for f in fronts for i in f) == list(range(len(pts)))
    for k, front in enumerate(fronts):
        for i in front:
            assert not any(dominates(pts[j], pts[i]) for f in fronts[k:] for j in f)
            if k:
                assert any(dominates(pts[j], pts[i]) for j in fronts[k - 1])


@given(points)
def test_pareto_set_is_exactly_the_non_dominated_points(pts):
    front = set(pareto_indices(pts))
    for i, p in enumerate(pts):
        assert (i in front) == (not any(dominates(q, p) for q in pts))


def test_crowding_distance_boundaries_are_infinite():
    d = crowding_distance([(0, 3), (1, 2), (2, 1), (3, 0)])
    assert d[0] == d[3] == math.inf and d[1] == d[2] == 4 / 3
