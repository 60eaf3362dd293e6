"""The HyTra path encoding (BossNAS): 16 layer tokens over 4 resolution levels, in 4 blocks of 4.

Levels: ``0`` = 1/4, ``1`` = 1/8, ``2`` = 1/16, ``3`` = 1/32. Tokens are the reference code's:
``0`` ResAtt@1/32, ``1`` ResConv@1/32, ``2`` ResAtt@1/16, ``3`` ResConv@1/16, ``4`` ResConv@1/8,
``5`` ResConv@1/4. Along depth the level never decreases and grows by at most one per layer.

Variants: ``fabric`` lets the first layer start at any level (the paper's 2,818,103 paths);
``restricted`` chains the reference's per-block candidate lists, chosen by the level where the
previous block ended (the stem ends at level 0), so every layer, the first included, moves at most
one level; ``executable`` also keeps each block inside the levels its released supernet builds
(``stage_depths=[4, 3, 2, 2]``: block 1 has no 1/4 layers, blocks 2 and 3 only 1/16 and 1/32).

The stage encoding of the retraining code is one list per level, 0 = ResAtt and 1 = ResConv.
Pure Python: the searchers and the space both use it without torch.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from functools import cache

TOKENS = range(6)
LEVELS = 4
BLOCKS = 4
BLOCK_LAYERS = 4
LAYERS = BLOCKS * BLOCK_LAYERS
VARIANTS = ("fabric", "restricted", "executable")
STAGE_DEPTHS = (4, 3, 2, 2)  # levels (counted from 1/32) the released supernet instantiates per block

_LEVEL = (3, 3, 2, 2, 1, 0)
_OP = ("att", "conv", "att", "conv", "conv", "conv")
_AT_LEVEL = {3: (0, 1), 2: (2, 3), 1: (4,), 0: (5,)}  # reference order of the tokens at each level


def token_level(token: int) -> int:
    """The resolution level a token runs at (0 = 1/4 ... 3 = 1/32)."""
    return _LEVEL[token]


def token_op(token: int) -> str:
    """``"att"`` (ResAtt) or ``"conv"`` (ResConv)."""
    return _OP[token]


def end_level(path: Sequence[int]) -> int:
    """The level of the last token of a path (where the next block starts)."""
    return _LEVEL[path[-1]]


def _check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise ValueError(f"unknown hytra variant {variant!r}; valid: {', '.join(VARIANTS)}")


def _min_level(block: int, variant: str) -> int:
    return LEVELS - STAGE_DEPTHS[block] if variant == "executable" else 0


def _first_levels(block: int, start_level: int, variant: str) -> range:
    if variant == "fabric" and block == 0:
        return range(start_level, LEVELS)
    return range(start_level, min(start_level + 2, LEVELS))


@cache
def _candidates(block: int, start_level: int, variant: str) -> tuple[tuple[int, int, int, int], ...]:
    # The reference enumerates level sequences from 1/32 upwards (rank = 3 - level, each next rank no
    # larger), layer 1 outermost, then the tokens of those levels, layer 1 outermost; its restricted
    # lists keep, in that order, the paths whose steps are at most one level.
    first = _first_levels(block, start_level, variant)
    low = _min_level(block, variant)
    out = []
    for ranks in _rank_sequences():
        levels = [LEVELS - 1 - r for r in ranks]
        if levels[0] not in first or min(levels) < low:
            continue
        if any(b - a > 1 for a, b in zip(levels, levels[1:])):
            continue
        out.extend(itertools.product(*(_AT_LEVEL[level] for level in levels)))
    return tuple(out)


def _rank_sequences() -> list[tuple[int, ...]]:
    seqs: list[tuple[int, ...]] = [(r,) for r in range(LEVELS)]
    for _ in range(BLOCK_LAYERS - 1):
        seqs = [s + (r,) for s in seqs for r in range(s[-1] + 1)]
    return seqs


def block_candidates(block: int, start_level: int, variant: str) -> list[tuple[int, int, int, int]]:
    """The 4-token paths block ``block`` may take after a block that ended at ``start_level``.

    Block 0 starts after the stem (level 0). For ``restricted``/``executable`` the order is the
    reference's ``restricted_path[4 - start_level]`` (51/99/80/16 paths for levels 0..3).
    """
    _check_variant(variant)
    if not 0 <= block < BLOCKS or not 0 <= start_level < LEVELS:
        raise ValueError(f"block must be 0..{BLOCKS - 1} and start_level 0..{LEVELS - 1}, got {block}, {start_level}")
    return list(_candidates(block, start_level, variant))


def _allowed(layer: int, prev_level: int, token: int, variant: str) -> bool:
    level = _LEVEL[token]
    if level < _min_level(layer // BLOCK_LAYERS, variant):
        return False
    if layer == 0:
        return variant == "fabric" or level <= 1
    return prev_level <= level <= prev_level + 1


def is_prefix(tokens: Sequence[int], variant: str) -> bool:
    """Whether ``tokens`` (at most 16) are the first layers of a legal path of ``variant``."""
    _check_variant(variant)
    if len(tokens) > LAYERS or any(isinstance(t, bool) or t not in TOKENS for t in tokens):
        return False
    prev = 0
    for layer, token in enumerate(tokens):
        if not _allowed(layer, prev, token, variant):
            return False
        prev = _LEVEL[token]
    return True


def is_valid(tokens: Sequence[int], variant: str) -> bool:
    """Whether 16 tokens form a legal path of ``variant``."""
    return len(tokens) == LAYERS and is_prefix(tokens, variant)


@cache
def _completions(variant: str) -> tuple[tuple[int, ...], ...]:
    # table[i][level]: legal ways to fill layers i..15 when layer i-1 ended at ``level``.
    table = [[0] * LEVELS for _ in range(LAYERS + 1)]
    table[LAYERS] = [1] * LEVELS
    for layer in range(LAYERS - 1, -1, -1):
        for prev in range(LEVELS):
            table[layer][prev] = sum(table[layer + 1][_LEVEL[t]] for t in TOKENS if _allowed(layer, prev, t, variant))
    return tuple(tuple(row) for row in table)


def count(variant: str) -> int:
    """Number of legal 16-layer paths (2,818,103 / 1,703,991 / 1,663,488), by dynamic programming."""
    _check_variant(variant)
    return _completions(variant)[0][0]


def sample_tokens(rng: random.Random, variant: str, prefix: Sequence[int] = ()) -> list[int]:
    """A path drawn uniformly among the legal paths of ``variant`` that begin with ``prefix``."""
    if not is_prefix(prefix, variant):
        raise ValueError(f"prefix {list(prefix)} is not legal in the {variant} variant")
    table = _completions(variant)
    tokens = list(prefix)
    prev = _LEVEL[tokens[-1]] if tokens else 0
    for layer in range(len(tokens), LAYERS):
        options = [t for t in TOKENS if _allowed(layer, prev, t, variant)]
        weights = [table[layer + 1][_LEVEL[t]] for t in options]
        token = rng.choices(options, weights)[0]
        tokens.append(token)
        prev = _LEVEL[token]
    return tokens


def tokens_to_stages(tokens: Sequence[int]) -> list[list[int]]:
    """The stage encoding: per level 1/4 .. 1/32, 0 = ResAtt and 1 = ResConv, in depth order."""
    levels = [_LEVEL[t] for t in tokens]
    if any(b < a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"tokens {list(tokens)} go back to a finer resolution; no stage encoding")
    stages: list[list[int]] = [[] for _ in range(LEVELS)]
    for token in tokens:
        stages[_LEVEL[token]].append(0 if _OP[token] == "att" else 1)
    return stages


def stage_token(level: int, entry: int) -> int:
    """The token of stage-encoding entry ``entry`` (0 = ResAtt, 1 = ResConv) at ``level``."""
    if entry not in (0, 1) or isinstance(entry, bool):
        raise ValueError(f"stage entries are 0 (ResAtt) or 1 (ResConv), got {entry!r}")
    options = _AT_LEVEL[level]
    if entry == 0 and len(options) == 1:
        raise ValueError(f"ResAtt is not available at level {level} (1/{4 << level})")
    return options[0] if entry == 0 else options[-1]


def stages_to_tokens(stages: Sequence[Sequence[int]]) -> list[int]:
    """The tokens of a stage encoding (ResAtt exists only at 1/16 and 1/32)."""
    if len(stages) != LEVELS:
        raise ValueError(f"a stage encoding has {LEVELS} stages, got {len(stages)}")
    return [stage_token(level, entry) for level, stage in enumerate(stages) for entry in stage]
