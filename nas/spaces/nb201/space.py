"""NAS-Bench-201 (Dong & Yang, ICLR 2020): one cell of 4 nodes and 6 edges, 5 ops per edge.

Macro network as in the benchmark: 3x3 conv stem (C channels) + BN; three stages of N cells at
C, 2C, 4C channels joined by residual reduction blocks (ResNet basic blocks, stride 2); BN-ReLU,
global average pool, linear classifier. The cell: node i sums op(node j) over j < i; the output
is node 3. ``none`` edges contribute nothing and are left out of the graph (a node with no other
input is a zero tensor, which the following ops still see, as in the benchmark's network).
"""

from __future__ import annotations

import re
from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec, GraphBuilder
from nas.core.space import PUBLISHED, SPACES, SearchSpace

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_TOKEN = re.compile(r"^([a-z0-9_]+)~(\d+)$")


def edge_label(node: int, source: int) -> str:
    return f"edge_{node}_{source}"


@SPACES.register("nb201")
class NB201Space(SearchSpace):
    """The NB201 topology space: ``size()`` = 5**6 = 15,625 cells."""

    name = "nb201"
    block_supernet = "nb201"  # BossNAS trains it block by block (nas.backends.torch.supernets)
    version = 1
    presets = {
        "default": {"channels": 16, "cells_per_stage": 5, "num_classes": 10, "input_shape": [3, 32, 32]},
        "small": {"channels": 8, "cells_per_stage": 1, "num_classes": 10, "input_shape": [3, 32, 32]},
    }

    def build_spec(self) -> SpaceSpec:
        return SpaceSpec(tuple(Choice(edge_label(i, j), NB201_OPS) for i, j in EDGES))

    # --- the standard NB201 string -----------------------------------------------------------
    def parse(self, text: str) -> Genotype:
        """Read ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into a genotype of this space."""
        groups = text.strip().split("+")
        if len(groups) != 3:
            raise GenotypeError(f"an NB201 cell string has 3 '+'-separated nodes, got {len(groups)}: {text!r}")
        values: dict[str, Any] = {}
        for node, group in enumerate(groups, start=1):
            tokens = [t for t in group.strip().split("|") if t]
            if len(tokens) != node:
                raise GenotypeError(f"node {node} of an NB201 cell needs {node} edge(s), got {group!r}")
            for token in tokens:
                match = _TOKEN.match(token)
                if not match or match.group(1) not in NB201_OPS:
                    raise GenotypeError(f"bad NB201 edge {token!r}; ops are {', '.join(NB201_OPS)}")
                source = int(match.group(2))
                if source >= node:
                    raise GenotypeError(f"edge {token!r} of node {node} reads a later node")
                values[edge_label(node, source)] = match.group(1)
        if len(values) != 6:
            raise GenotypeError(f"NB201 cell string repeats an edge: {text!r}")
        return self.make(values)

    def describe(self, genotype: Genotype) -> str:
        """The standard NB201 string of the cell."""
        nodes = []
        for node in (1, 2, 3):
            nodes.append("|" + "|".join(f"{genotype[edge_label(node, j)]}~{j}" for j in range(node)) + "|")
        return "+".join(nodes)

    def canonical(self, genotype: Genotype) -> str:
        """Isomorphism-invariant form, the benchmark's own rule (its ``unique_str``).

        Each node is the sorted sum of its incoming terms: ``skip_connect`` passes the source's
        form through, an op writes ``(source)@op``, and ``none`` (or an edge from an all-zero
        node) is the zero term ``#``. The 15,625 cells fall into 6,466 classes.
        """
        forms = ["0"]
        for node in (1, 2, 3):
            terms = []
            for j in range(node):
                op = genotype[edge_label(node, j)]
                if op == "none" or forms[j] == "#":
                    terms.append("#")
                elif op == "skip_connect":
                    terms.append(forms[j])
                else:
                    terms.append(f"({forms[j]})@{op}")
            forms.append("+".join(sorted(terms)))
        return forms[3]

    # --- network -------------------------------------------------------------------------------
    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        m = genotype.macro_dict
        c, n = int(m["channels"]), int(m["cells_per_stage"])
        g = GraphBuilder()
        x = g.input(tuple(m["input_shape"]))
        with g.scope("stem"):
            x = g.add("conv2d", x, out_channels=c, kernel=3, padding=1, name="conv")
            x = g.add("batchnorm", x, name="bn")
        for stage in range(3):
            width = c * 2**stage
            if stage > 0:
                with g.scope(f"reduce{stage}"):
                    x = _resnet_block(g, x, width)
            for k in range(n):
                with g.scope(f"stage{stage}.cell{k}"):
                    x = _cell(g, x, genotype)
        with g.scope("head"):
            x = g.add("batchnorm", x, name="bn")
            x = g.add("act", x, fn="relu", name="relu")
            x = g.add("global_avg_pool", x, name="pool")
            x = g.add("linear", x, out_features=int(m["num_classes"]), name="classifier")
        return g.build({"logits": x})


def stem_spec(input_shape: tuple[int, int, int], channels: int) -> ArchSpec:
    """The stem alone (3x3 conv + BN), for supernets that run the macro network piecewise."""
    g = GraphBuilder()
    x = g.input(tuple(input_shape))
    with g.scope("stem"):
        x = g.add("conv2d", x, out_channels=channels, kernel=3, padding=1, name="conv")
        x = g.add("batchnorm", x, name="bn")
    return g.build({"out": x})


def reduction_spec(input_shape: tuple[int, int, int], planes: int) -> ArchSpec:
    """One residual reduction block alone."""
    g = GraphBuilder()
    x = _resnet_block(g, g.input(tuple(input_shape)), planes)
    return g.build({"out": x})


def edge_op_spec(input_shape: tuple[int, int, int], op: str) -> ArchSpec:
    """One edge op alone (not ``none``)."""
    g = GraphBuilder()
    x = _edge_op(g, g.input(tuple(input_shape)), op)
    if op == "skip_connect":
        x = g.add("identity", x, name="skip")
    return g.build({"out": x})


def _relu_conv_bn(g: GraphBuilder, x: str, out: int, kernel: int, stride: int = 1) -> str:
    x = g.add("act", x, fn="relu", name="relu")
    x = g.add("conv2d", x, out_channels=out, kernel=kernel, stride=stride, padding=kernel // 2, name="conv")
    return g.add("batchnorm", x, name="bn")


def _edge_op(g: GraphBuilder, x: str, op: str) -> str:
    channels = g.shape(x)[0]
    if op == "skip_connect":
        return x
    if op == "avg_pool_3x3":
        return g.add("avg_pool", x, kernel=3, stride=1, padding=1, count_include_pad=False, name="pool")
    kernel = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}[op]
    return _relu_conv_bn(g, x, channels, kernel)


def _cell(g: GraphBuilder, x: str, genotype: Genotype) -> str:
    nodes = [x]
    for node in (1, 2, 3):
        inputs = []
        for j in range(node):
            op = genotype[edge_label(node, j)]
            if op == "none":
                continue
            with g.scope(f"e{node}{j}"):
                inputs.append(_edge_op(g, nodes[j], op))
        if not inputs:
            nodes.append(g.add("zero", x, name=f"node{node}"))
        elif len(inputs) == 1:
            nodes.append(inputs[0])
        else:
            nodes.append(g.add("add", *inputs, name=f"node{node}"))
    return nodes[3]


def _resnet_block(g: GraphBuilder, x: str, planes: int) -> str:
    with g.scope("a"):
        y = _relu_conv_bn(g, x, planes, 3, stride=2)
    with g.scope("b"):
        y = _relu_conv_bn(g, y, planes, 3)
    with g.scope("down"):
        r = g.add("avg_pool", x, kernel=2, stride=2, padding=0, count_include_pad=True, name="pool")
        r = g.add("conv2d", r, out_channels=planes, kernel=1, name="conv")
    return g.add("add", r, y, name="out")


@PUBLISHED.register("nb201-best-cifar10")
def best_cifar10() -> Genotype:
    """The best CIFAR-10 cell of the benchmark (94.37% test accuracy after 200 epochs)."""
    return NB201Space().parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|")
