"""The HyTra supernet of BossNAS's search (torch): every op the candidate paths need, run along one path.

Each supernet op is described once with ``GraphBuilder`` from the primitive ops and lowered with
``nas.backends.torch.build``; this module only composes them. Search-time ops follow the released
supernet (``hytra_ops.py``), which differs from the retraining form of the space's layer builders:

- ResConv: 1x1 conv -> PEG (3x3 depthwise conv with bias; stride 2 when the layer downsamples) -> BN,
  then ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 conv -> BN (gamma 0) -> + shortcut -> ReLU.
- ResAtt: 1x1 conv to out/4 -> PEG -> BN, then ReLU -> q,k,v 1x1 conv (no bias) -> ``mhsa`` with
  heads = out/4/dim_head -> BN -> ReLU -> 1x1 conv -> BN (gamma 0) -> + shortcut -> ReLU.
- Shortcut: identity, or 1x1 conv + BN + ReLU on a channel change, or 3x3 stride-2 conv + BN + ReLU
  when the layer downsamples. A layer's op keeps separate entry weights (first 1x1 conv, PEG, BN and
  shortcut) for a same-level input and a downsampling input; the rest is shared.
- The first layer of the network takes the stem's output through an adapter per level (depthwise
  conv with kernel = stride = 2^level, 1x1 conv to out/4, BN), then its op's same-level entry.

Which (block, layer, token, entry) ops exist is derived from the candidate lists of the variant:
for ``executable`` the released supernet's ops, plus the downsampling entry of block 1's 1/8 layers that
its lists reach from a block ending at 1/4 (the released supernet lacks it). The attention uses
the standard ``v @ softmax^T`` of the ``mhsa`` primitive (the released search code multiplies by the
untransposed matrix; see the spec).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from nas.backends.torch import build
from nas.backends.torch.supernets.blockwise import BLOCK_SUPERNETS, BlockSupernet, Path
from nas.core.ir import GraphBuilder
from nas.core.space import SearchSpace
from nas.spaces.hytra.encoding import BLOCKS, block_candidates, end_level, token_level, token_op


@dataclass(frozen=True)
class SupernetConfig:
    """Sizes of the search supernet: block output channels per level (1/4 .. 1/32), stem, attention."""

    channels: tuple[int, int, int, int]
    stem_channels: int
    dim_head: int
    input_shape: tuple[int, int, int]
    variant: str = "executable"
    zero_init_residual: bool = True  # the released ops zero their last BN's gamma (each op starts as identity)

    def size(self, level: int) -> int:
        """Feature-map side at ``level`` (the stem halves twice, each level once more)."""
        return self.input_shape[1] // (4 << level)


def _bn_act(g: GraphBuilder, x: str, act: bool = True, zero: bool = False) -> str:
    x = g.add("batchnorm", x, zero_init=zero)
    return g.add("act", x, fn="relu") if act else x


def stem_spec(cfg: SupernetConfig):
    """7x7 stride-2 conv -> BN -> ReLU -> 3x3 stride-2 max-pool (ResNet stem): 1/4 resolution."""
    g = GraphBuilder()
    x = g.input(cfg.input_shape)
    x = g.add("conv2d", x, out_channels=cfg.stem_channels, kernel=7, stride=2, padding=3)
    x = _bn_act(g, x)
    x = g.add("max_pool", x, kernel=3, stride=2, padding=1)
    return g.build({"out": x})


def adapter_spec(cfg: SupernetConfig, level: int):
    """Stem output -> the first layer's input at ``level``: depthwise k=s=2^level, 1x1 conv to out/4, BN."""
    g = GraphBuilder()
    c = cfg.stem_channels
    x = g.input((c, cfg.size(0), cfg.size(0)))
    k = 2 ** level
    x = g.add("conv2d", x, out_channels=c, kernel=k, stride=k, groups=c)
    x = g.add("conv2d", x, out_channels=cfg.channels[level] // 4, kernel=1)
    x = g.add("batchnorm", x)
    return g.build({"out": x})


def entry_spec(cfg: SupernetConfig, level: int, entry: str):
    """Entry of an op at ``level``: ``same`` (same-level input), ``down`` (one level finer) or ``stem``
    (the adapter's out/4 channels). Outputs the branch (after the entry BN) and the shortcut."""
    g = GraphBuilder()
    out, mid = cfg.channels[level], cfg.channels[level] // 4
    side = cfg.size(level)
    if entry == "down":
        c_in, stride, x = cfg.channels[level - 1], 2, g.input((cfg.channels[level - 1], 2 * side, 2 * side))
    else:
        c_in, stride = (mid if entry == "stem" else out), 1
        x = g.input((c_in, side, side))
    b = g.add("conv2d", x, out_channels=mid, kernel=1, name="conv1")
    b = g.add("conv2d", b, out_channels=mid, kernel=3, stride=stride, padding=1, groups=mid, bias=True, name="peg")
    b = g.add("batchnorm", b, name="bn1")
    if stride == 2:
        s = g.add("conv2d", x, out_channels=out, kernel=3, stride=2, padding=1, name="shortcut")
        s = _bn_act(g, s)
    elif c_in != out:
        s = g.add("conv2d", x, out_channels=out, kernel=1, name="shortcut")
        s = _bn_act(g, s)
    else:
        s = g.add("identity", x, name="shortcut")
    return g.build({"branch": b, "shortcut": s})


def trunk_spec(cfg: SupernetConfig, level: int, op: str):
    """The shared rest of a ResConv or ResAtt op: branch and shortcut in, block output out."""
    g = GraphBuilder()
    out, mid, side = cfg.channels[level], cfg.channels[level] // 4, cfg.size(level)
    b = g.input((mid, side, side), name="branch")
    s = g.input((out, side, side), name="shortcut")
    x = g.add("act", b, fn="relu")
    if op == "conv":
        x = g.add("conv2d", x, out_channels=mid, kernel=3, padding=1)
        x = _bn_act(g, x)
    else:
        heads = mid // cfg.dim_head
        if heads < 1 or mid % cfg.dim_head:
            raise ValueError(f"ResAtt at level {level}: {mid} channels do not split into heads of {cfg.dim_head}")
        x = g.add("conv2d", x, out_channels=3 * heads * cfg.dim_head, kernel=1, name="qkv")
        x = g.add("mhsa", x, heads=heads, dim_head=cfg.dim_head)
        x = _bn_act(g, x)
    x = g.add("conv2d", x, out_channels=out, kernel=1)
    x = g.add("batchnorm", x, zero_init=cfg.zero_init_residual)
    x = g.add("add", x, s)
    x = g.add("act", x, fn="relu")
    return g.build({"out": x})


def path_entries(block: int, start_level: int, path: Sequence[int]) -> list[tuple[int, str]]:
    """(token, entry kind) of each layer of a block path entered at ``start_level``."""
    out, level = [], start_level
    for i, token in enumerate(path):
        lvl = token_level(token)
        kind = "stem" if block == 0 and i == 0 else ("same" if lvl == level else "down")
        if kind == "down" and lvl != level + 1:
            raise ValueError(f"block {block} path {list(path)} jumps from level {level} to {lvl}")
        out.append((token, kind))
        level = lvl
    return out


def block_starts(block: int, variant: str) -> list[int]:
    """Levels block ``block`` can start at (block 0: the stem's level 0)."""
    if block == 0:
        return [0]
    ends = {end_level(p) for s in block_starts(block - 1, variant) for p in block_candidates(block - 1, s, variant)}
    return sorted(s for s in ends if block_candidates(block, s, variant))


class LayerOp(nn.Module):
    """One token's op in one layer: its entries (same / down / stem) and the shared trunk."""

    def __init__(self, cfg: SupernetConfig, token: int, entries: set[str]) -> None:
        super().__init__()
        level = token_level(token)
        self.entries = nn.ModuleDict({kind: build(entry_spec(cfg, level, kind)) for kind in sorted(entries)})
        self.trunk = build(trunk_spec(cfg, level, token_op(token)))

    def forward(self, x: torch.Tensor, entry: str) -> torch.Tensor:
        parts = self.entries[entry](x)
        return self.trunk(parts["branch"], parts["shortcut"])


def supernet_config(space: SearchSpace, zero_init_residual: bool = True) -> SupernetConfig:
    """Supernet sizes from the hytra space's macro settings (widths, stem, dim_head, input, variant)."""
    m = space.macro
    return SupernetConfig(tuple(int(w) for w in m["widths"]), int(m["stem_width"]), int(m["dim_head"]),
                          tuple(int(v) for v in m["input_shape"]), str(m["variant"]), bool(zero_init_residual))


@BLOCK_SUPERNETS.register("hytra")
def hytra_supernet(space: SearchSpace, zero_init_residual: bool = True) -> Supernet:
    """The search supernet of a hytra space (its macro settings and variant)."""
    return Supernet(supernet_config(space, zero_init_residual))


class Supernet(BlockSupernet):
    """Stem, first-layer adapters and every op the variant's candidate paths use, keyed by block/layer/token."""

    def __init__(self, cfg: SupernetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.blocks = BLOCKS
        self.channels = tuple(cfg.channels)
        self.input_shape = tuple(cfg.input_shape)
        self.stem = build(stem_spec(cfg))
        needed: dict[tuple[int, int, int], set[str]] = {}
        first_levels: set[int] = set()
        for block in range(BLOCKS):
            for start in block_starts(block, cfg.variant):
                for path in block_candidates(block, start, cfg.variant):
                    for i, (token, kind) in enumerate(path_entries(block, start, path)):
                        needed.setdefault((block, i, token), set()).add(kind)
                        if kind == "stem":
                            first_levels.add(token_level(token))
        self.adapters = nn.ModuleDict({str(lvl): build(adapter_spec(cfg, lvl)) for lvl in sorted(first_levels)})
        self.ops = nn.ModuleDict()
        for (block, layer, token), entries in sorted(needed.items()):
            self.ops[f"{block}_{layer}_{token}"] = LayerOp(cfg, token, entries)

    def genotype(self, space, paths: Sequence[Path]):
        return space.from_tokens([t for p in paths for t in p])

    def block_starts(self, block: int) -> list[int]:
        return block_starts(block, self.cfg.variant)

    def candidates(self, block: int, start: int) -> list[Path]:
        return [tuple(p) for p in block_candidates(block, start, self.cfg.variant)]

    def end_level(self, block: int, path: Sequence[int]) -> int:
        return end_level(path)

    def enter(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        return self.stem(x), 0

    def run_block(self, x: torch.Tensor, block: int, start_level: int, path: Sequence[int]) -> torch.Tensor:
        """Run one block along ``path``; ``x`` is the stem output (block 0) or the previous block's output."""
        for i, (token, kind) in enumerate(path_entries(block, start_level, path)):
            if kind == "stem":
                x = self.adapters[str(token_level(token))](x)
            x = self.ops[f"{block}_{i}_{token}"](x, kind)
        return x

    def block_modules(self, block: int, start_level: int, path: Sequence[int]) -> list[nn.Module]:
        """The modules a block path runs through (for BN recalibration)."""
        mods: list[nn.Module] = []
        for i, (token, kind) in enumerate(path_entries(block, start_level, path)):
            if kind == "stem":
                mods.append(self.adapters[str(token_level(token))])
            op = self.ops[f"{block}_{i}_{token}"]
            mods += [op.entries[kind], op.trunk]
        return mods
