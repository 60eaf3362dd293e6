"""Registry lookups, the IR builder's shape checks, and the analytic cost."""

import pytest

from nas.core import ArchSpec, GraphBuilder, Registry, UnknownNameError, arch_cost
from nas.core.space import SPACES


def test_registry_lists_choices_in_errors():
    reg: Registry = Registry("widget")
    reg.register("b")(1)
    reg.register("a")(2)
    assert reg.names() == ["a", "b"] and reg.get("a") == 2
    with pytest.raises(UnknownNameError, match="unknown widget 'c'; valid choices: a, b"):
        reg.get("c")
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(3)


def test_spaces_are_discovered_from_their_package():
    assert "nb201" in SPACES.names()


def test_builder_infers_shapes_and_cost():
    g = GraphBuilder()
    x = g.input((3, 32, 32))
    y = g.add("conv2d", x, out_channels=8, kernel=3, stride=2, padding=1)
    assert g.shape(y) == (8, 16, 16)
    z = g.add("conv2d", y, out_channels=8, kernel=3, padding=2, dilation=2, groups=8)
    p = g.add("avg_pool", g.add("add", y, z), kernel=2, stride=2, padding=0)
    c = g.add("concat", p, p)
    out = g.add("linear", g.add("global_avg_pool", c), out_features=10)
    arch = g.build({"logits": out})
    assert isinstance(arch, ArchSpec) and arch.output_shapes == {"logits": (10,)}
    cost = arch_cost(arch)
    assert cost["params"] == 8 * 3 * 9 + 8 * 9 + 16 * 10 + 10
    assert cost["macs"] == 8 * 27 * 256 + 8 * 9 * 256 + 16 * 10


def test_builder_rejects_bad_graphs():
    g = GraphBuilder()
    x = g.input((3, 8, 8))
    with pytest.raises(ValueError, match="equal shapes"):
        g.add("add", x, g.add("conv2d", x, out_channels=4, kernel=1))
    with pytest.raises(ValueError, match="groups"):
        g.add("conv2d", x, out_channels=4, groups=2)
    with pytest.raises(ValueError, match="no parameters"):
        g.add("conv2d", x, out_channels=4, colour="red")
    with pytest.raises(ValueError, match="unknown op"):
        g.add("transmogrify", x)
    with pytest.raises(ValueError, match="empty shape"):
        g.add("conv2d", x, out_channels=4, kernel=9)


def test_build_prunes_unused_nodes():
    g = GraphBuilder()
    x = g.input((1, 4, 4))
    g.add("conv2d", x, out_channels=2, kernel=1, name="unused")
    out = g.add("global_avg_pool", x)
    assert [n.name for n in g.build({"y": out}).nodes] == ["input", "global_avg_pool"]
