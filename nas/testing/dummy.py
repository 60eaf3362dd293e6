"""A small space with every kind of decision (choice, int, float, conditional) for conformance tests.

Not registered: tests build it directly. Its objective ``score`` is known, so searchers can be
checked on it without training.
"""

from __future__ import annotations

from nas.core.decisions import Choice, Condition, FloatRange, IntRange, SpaceSpec
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import SearchSpace


class DummySpace(SearchSpace):
    """A plain conv net: depth, width, kernel, optional pooling type, and a dropout rate."""

    name = "dummy"
    version = 1
    presets = {"default": {"input_shape": [1, 8, 8], "num_classes": 3}}

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec((
            IntRange("depth", 1, 3),
            Choice("width", (4, 8, 16)),
            Choice("kernel", (1, 3, 5)),
            Choice("pool", (False, True)),
            Choice("pool_type", ("avg", "max"), condition=Condition("pool", (True,))),
            FloatRange("dropout", 0.0, 0.5),
        ))

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m, v = genotype.macro_dict, genotype.values
        g = GraphBuilder()
        x = g.input(tuple(m["input_shape"]))
        for i in range(v["depth"]):
            x = g.add("conv2d", x, out_channels=v["width"], kernel=v["kernel"], padding=v["kernel"] // 2,
                      name=f"conv{i}")
            x = g.add("batchnorm", x, name=f"bn{i}")
            x = g.add("act", x, fn="relu", name=f"relu{i}")
        if v["pool"]:
            op = "avg_pool" if v["pool_type"] == "avg" else "max_pool"
            x = g.add(op, x, kernel=2, stride=2, padding=0, name="pool")
        x = g.add("global_avg_pool", x, name="gap")
        x = g.add("dropout", x, rate=v["dropout"], name="drop")
        x = g.add("linear", x, out_features=m["num_classes"], name="fc")
        return g.build({"logits": x})


def dummy_score(genotype: Genotype) -> float:
    """A known objective with a unique optimum (depth 3, width 16, kernel 3, avg pooling, no dropout)."""
    v = genotype.values
    score = v["depth"] + {4: 0, 8: 1, 16: 2}[v["width"]] + {1: 0, 3: 2, 5: 1}[v["kernel"]]
    score += 1.0 if v["pool"] and v.get("pool_type") == "avg" else 0.0
    return score - v["dropout"]
