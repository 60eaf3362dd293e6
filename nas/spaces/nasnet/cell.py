"""A NASNet cell: 5 blocks, each combining two ops on two chosen states; the output concatenates a list.

State indices (the genotype's convention, as DARTS): 0 = h_{i-1} (two cells back), 1 = h_i (the
previous cell), 2 + b = the output of block b. Cell inputs are pre-processed as in the reference
(``_cell_base``): h_i -> ReLU -> 1x1 conv -> BN; h_{i-1} -> ReLU -> factorized reduction when its
resolution differs, else ReLU -> 1x1 conv -> BN when its channels differ, else unchanged; a missing
h_{i-1} (the first cell) is h_i as it came in. In a reduction cell only ops reading a cell input
stride. The ``concat`` combiner (never used by NASNet-A; the paper leaves its details open) is
followed by a 1x1 conv + BN back to the cell width, so every state has the cell's shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from nas.core.ir import GraphBuilder
from nas.spaces.nasnet.ops import apply_op, conv_bn, factorized_reduction

NUM_BLOCKS = 5
COMBINERS = ("add", "concat")
LOOSE_END = "loose_end"
Concat = Union[str, tuple[int, ...]]


@dataclass(frozen=True)
class Block:
    """Two (input state, op) pairs and how their results combine."""

    inputs: tuple[int, int]
    ops: tuple[str, str]
    combine: str = "add"


@dataclass(frozen=True)
class Cell:
    """Five blocks and the states the output concatenates (``"loose_end"`` or explicit indices)."""

    blocks: tuple[Block, ...]
    concat: Concat = LOOSE_END

    def concat_indices(self) -> tuple[int, ...]:
        """The explicit list, or the block outputs no block of the cell reads (DARTS's rule)."""
        if self.concat != LOOSE_END:
            return tuple(self.concat)
        used = {i for block in self.blocks for i in block.inputs}
        return tuple(2 + b for b in range(len(self.blocks)) if 2 + b not in used)


def check_concat(concat: object, num_blocks: int = NUM_BLOCKS) -> str | None:
    """Why a concat setting is invalid, or ``None`` when it is fine."""
    if concat == LOOSE_END:
        return None
    if not isinstance(concat, (list, tuple)) or not concat:
        return f"concat must be {LOOSE_END!r} or a non-empty list of state indices, got {concat!r}"
    bad = [i for i in concat if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < num_blocks + 2]
    if bad or len(set(concat)) != len(concat):
        return f"concat indices must be distinct integers in 0..{num_blocks + 1}, got {list(concat)}"
    return None


def _prepare_prev(g: GraphBuilder, prev: str, cur: str, channels: int) -> str:
    """Match h_{i-1} to the cell (reference ``_reduce_prev_layer``)."""
    (c_prev, h_prev, _), (_, h_cur, _) = g.shape(prev), g.shape(cur)
    if h_prev != h_cur:
        with g.scope("prev"):
            x = g.add("act", prev, fn="relu", name="relu")
            return factorized_reduction(g, x, channels)
    if c_prev != channels:
        with g.scope("prev"):
            return conv_bn(g, prev, channels)
    return prev


def build_cell(g: GraphBuilder, h: str, prev: str | None, cell: Cell, channels: int, reduction: bool,
               drop_rate: float = 0.0) -> str:
    """Add one cell reading ``h`` (h_i) and ``prev`` (h_{i-1}, or None); returns the output node.

    ``drop_rate`` is the drop-path rate of every non-identity op of the cell (ScheduledDropPath's
    depth part); reduction cells stride 2 on the ops that read a cell input.
    """
    prev = h if prev is None else _prepare_prev(g, prev, h, channels)
    with g.scope("cur"):
        cur = conv_bn(g, h, channels)
    states = [prev, cur]
    for b, block in enumerate(cell.blocks):
        with g.scope(f"b{b}"):
            outs = []
            for side, index, op in zip("ab", block.inputs, block.ops):
                stride = 2 if reduction and index < 2 else 1
                with g.scope(side):
                    outs.append(apply_op(g, states[index], op, channels, stride, drop_rate))
            if block.combine == "add":
                states.append(g.add("add", *outs, name="add"))
            else:
                joined = g.add("concat", *outs, name="concat")
                with g.scope("combine"):
                    states.append(conv_bn(g, joined, channels, relu=False))
    final = g.shape(states[-1])
    picked = []
    for index in cell.concat_indices():
        state = states[index]
        shape = g.shape(state)
        if shape != final:
            with g.scope(f"out{index}"):
                state = factorized_reduction(g, state, final[0], stride=2 if shape[1] != final[1] else 1)
        picked.append(state)
    if len(picked) == 1:
        return picked[0]
    return g.add("concat", *picked, name="out")
