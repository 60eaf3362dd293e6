"""NAS-Bench-201: encoding, the published parameter count, isomorphism classes."""

import csv

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nas
from nas.core import GenotypeError, arch_cost
from nas.spaces.nb201 import NB201_OPS, NB201Space

ALL_CONV3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
cells = st.lists(st.sampled_from(NB201_OPS), min_size=6, max_size=6)


def cell_string(ops):
    a, b, c, d, e, f = ops
    return f"|{a}~0|+|{b}~0|{c}~1|+|{d}~0|{e}~1|{f}~2|"


def test_size_and_spec():
    space = NB201Space()
    assert space.size() == 15_625
    assert space.spec().labels == ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")


def test_published_parameter_count_analytic_and_torch():
    space = NB201Space()
    arch = space.decode(space.parse(ALL_CONV3))
    assert arch_cost(arch)["params"] == 1_531_546
    from nas.backends.torch import build, count_params

    assert count_params(build(arch)) == 1_531_546


@given(cells)
def test_parse_and_describe_round_trip(ops):
    space = NB201Space()
    text = cell_string(ops)
    g = space.parse(text)
    assert space.describe(g) == text
    assert [g[label] for label in space.spec().labels] == ops


@pytest.mark.parametrize("bad, match", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 '\\+'-separated"),
    ("|conv_9x9~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|", "bad NB201 edge"),
    ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "later node"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 edge"),
])
def test_bad_strings_are_rejected(bad, match):
    with pytest.raises(GenotypeError, match=match):
        NB201Space().parse(bad)


def test_canonical_form_matches_the_benchmark(nb201_table):
    space = NB201Space()
    with nb201_table.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 15_625
    forms = set()
    for row in rows:
        form = space.canonical(space.parse(row["arch_str"]))
        assert form == row["unique_str"], row["arch_str"]
        forms.add(form)
    assert len(forms) == 6_466


@given(cells)
def test_isomorphic_cells_share_a_canonical_form(ops):
    space = NB201Space()
    g = space.parse(cell_string(ops))
    forms = {space.canonical(g.replace(edge_1_0="none", edge_2_1=op)) for op in NB201_OPS}
    assert len(forms) == 1  # edges out of an all-zero node carry zeros, whatever their op
    swapped = g.replace(edge_2_0=g["edge_1_0"], edge_1_0=g["edge_2_0"], edge_2_1="skip_connect",
                        edge_3_1="none", edge_3_2="skip_connect")
    same = g.replace(edge_2_1="skip_connect", edge_3_1="none", edge_3_2="skip_connect")
    assert space.canonical(swapped) == space.canonical(same)  # node 2 = op_a(x) + op_b(x) in either order


def test_published_best_cell():
    g = nas.published("nb201-best-cifar10")
    assert NB201Space().describe(g).startswith("|nor_conv_3x3~0|")
    assert nas.cost(g)["params"] == arch_cost(NB201Space().decode(g))["params"]


def test_small_preset_keeps_the_encoding():
    small, full = NB201Space(preset="small"), NB201Space()
    g = small.sample(0)
    assert small.spec() == full.spec()
    assert arch_cost(small.decode(g))["params"] < arch_cost(full.decode(full.parse(small.describe(g))))["params"]
