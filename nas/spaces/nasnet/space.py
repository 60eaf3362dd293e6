"""The NASNet search space (Zoph et al., CVPR 2018): a normal and a reduction cell of 5 blocks each.

Decisions (50, the controller's order): for ``cell`` in (normal, reduce), block ``b`` in 0..4:
``{cell}_b{b}_in_a`` and ``_in_b`` (state index 0..b+1: 0 = h_{i-1}, 1 = h_i, 2+j = block j),
``_op_a`` and ``_op_b`` (13 ops), ``_combine`` (add | concat). The input decisions carry their own
cardinalities, so every operator here and every generic searcher stays in range.

The concat list of each cell is not searched (the paper's controller predicts only the 50
decisions and concatenates the unused states): it is the macro setting ``normal_concat`` /
``reduce_concat``, ``"loose_end"`` (block outputs no block reads) or an explicit list of state
indices, stored in every genotype. The published NASNet-A cells use explicit lists, which differ
from the loose-end rule and change the parameter count (spec 1.3).
"""

from __future__ import annotations

import json
import random
from typing import Any

from nas.core.decisions import Choice, SpaceSpec
from nas.core.errors import GenotypeError
from nas.core.genotype import Genotype
from nas.core.ir import ArchSpec
from nas.core.space import SPACES, SearchSpace, _rng
from nas.spaces.nasnet.cell import COMBINERS, NUM_BLOCKS, Block, Cell, check_concat
from nas.spaces.nasnet.macro import PRESETS, STEMS, build_network
from nas.spaces.nasnet.ops import OP_NAMES

CELLS = ("normal", "reduce")
FIELDS = ("in_a", "in_b", "op_a", "op_b", "combine")


def label(cell: str, block: int, field: str) -> str:
    """The decision label of one field of one block."""
    return f"{cell}_b{block}_{field}"


def block_labels(cell: str, block: int) -> tuple[str, ...]:
    return tuple(label(cell, block, f) for f in FIELDS)


def cell_values(cell: Cell, kind: str) -> dict[str, Any]:
    """Decision values of one cell (``kind`` = normal | reduce)."""
    values: dict[str, Any] = {}
    for b, block in enumerate(cell.blocks):
        fields = (*block.inputs, *block.ops, block.combine)
        values.update(zip(block_labels(kind, b), fields))
    return values


@SPACES.register("nasnet")
class NASNetSpace(SearchSpace):
    """NASNet cells; presets ``cifar``, ``mobile``, ``large`` (the paper's) and ``small`` (CPU)."""

    name = "nasnet"
    version = 1
    presets = PRESETS
    default_preset = "cifar"

    def build_spec(self) -> SpaceSpec:
        decisions = []
        for cell in CELLS:
            for b in range(NUM_BLOCKS):
                inputs = tuple(range(b + 2))
                decisions += [Choice(label(cell, b, "in_a"), inputs), Choice(label(cell, b, "in_b"), inputs),
                              Choice(label(cell, b, "op_a"), OP_NAMES), Choice(label(cell, b, "op_b"), OP_NAMES),
                              Choice(label(cell, b, "combine"), COMBINERS)]
        return SpaceSpec(tuple(decisions))

    # --- genotype <-> cells ------------------------------------------------------------------
    def cells(self, genotype: Genotype) -> tuple[Cell, Cell]:
        """The (normal, reduction) cells of a genotype, with the concat lists of its macro."""
        v, m = genotype.values, genotype.macro_dict
        out = []
        for kind in CELLS:
            blocks = tuple(Block((v[label(kind, b, "in_a")], v[label(kind, b, "in_b")]),
                                 (v[label(kind, b, "op_a")], v[label(kind, b, "op_b")]), v[label(kind, b, "combine")])
                           for b in range(NUM_BLOCKS))
            concat = m.get(f"{kind}_concat", "loose_end")
            out.append(Cell(blocks, concat if isinstance(concat, str) else tuple(concat)))
        return out[0], out[1]

    def from_cells(self, normal: Cell, reduce: Cell) -> Genotype:
        """A genotype of this space (its macro settings) with the two cells and their concat lists."""
        values = {**cell_values(normal, "normal"), **cell_values(reduce, "reduce")}
        macro = {**self.macro, "normal_concat": _json_concat(normal.concat),
                 "reduce_concat": _json_concat(reduce.concat)}
        genotype = Genotype.make(self.name, self.version, values, macro)
        return self.validate(genotype)

    def check(self, genotype: Genotype) -> None:
        m = genotype.macro_dict
        for kind in CELLS:
            problem = check_concat(m.get(f"{kind}_concat", "loose_end"))
            if problem:
                raise GenotypeError(f"{kind}_concat: {problem}")
        if m.get("stem") not in STEMS:
            raise GenotypeError(f"macro stem must be one of {', '.join(STEMS)}, got {m.get('stem')!r}")

    # --- operators with block structure ----------------------------------------------------
    def sample(self, seed: int | random.Random | None = None) -> Genotype:
        """Uniform per decision, in the controller's order; inputs of block b from 0..b+1."""
        rng = _rng(seed)
        return self.make({d.label: d.sample(rng) for d in self.spec()})

    def mutate(self, genotype: Genotype, seed: int | random.Random | None = None, n: int = 1) -> Genotype:
        """AmoebaNet-style: per mutation pick a cell and a block, then change one of its inputs (to
        another state that block may read), one of its ops, or its combiner."""
        rng = _rng(seed)
        values = genotype.values
        for _ in range(n):
            cell, block = rng.choice(CELLS), rng.randrange(NUM_BLOCKS)
            decision = self.spec()[label(cell, block, rng.choice(FIELDS))]
            options = decision.options if isinstance(decision, Choice) else ()
            values[decision.label] = rng.choice([o for o in options if o != values[decision.label]])
        return self.make(values)

    def crossover(self, a: Genotype, b: Genotype, seed: int | random.Random | None = None) -> Genotype:
        """Block-wise uniform crossover: each block's five decisions come together from one parent."""
        rng = _rng(seed)
        va, vb = a.values, b.values
        values: dict[str, Any] = {}
        for cell in CELLS:
            for block in range(NUM_BLOCKS):
                parent = va if rng.random() < 0.5 else vb
                values.update({lab: parent[lab] for lab in block_labels(cell, block)})
        return self.make(values)

    # --- views -----------------------------------------------------------------------------
    def canonical(self, genotype: Genotype) -> str:
        """Equal for genotypes that differ only in the order of an ``add`` block's two branches."""
        form = []
        for cell in self.cells(genotype):
            blocks = []
            for block in cell.blocks:
                pairs = list(zip(block.inputs, block.ops))
                blocks.append([sorted(pairs) if block.combine == "add" else pairs, block.combine])
            form.append([blocks, list(cell.concat_indices())])
        return json.dumps([form, genotype.macro_dict], sort_keys=True)

    def describe(self, genotype: Genotype) -> str:
        """``normal: [op~in + op~in] x5 -> concat [...] | reduce: ...``."""
        parts = []
        for kind, cell in zip(CELLS, self.cells(genotype)):
            blocks = " ".join(f"[{b.ops[0]}~{b.inputs[0]} {'+' if b.combine == 'add' else '|'} "
                              f"{b.ops[1]}~{b.inputs[1]}]" for b in cell.blocks)
            parts.append(f"{kind}: {blocks} -> concat {list(cell.concat_indices())}")
        return " ; ".join(parts)

    def decode(self, genotype: Genotype) -> ArchSpec:
        self.validate(genotype)
        normal, reduce = self.cells(genotype)
        return build_network(normal, reduce, genotype.macro_dict)


def _json_concat(concat: Any) -> Any:
    return concat if isinstance(concat, str) else list(concat)
