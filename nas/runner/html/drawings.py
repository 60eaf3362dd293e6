"""Drawings of one architecture for ``report.html``, from its genotype alone: the cell graph of NB201 and of
NASNet's two cells, HyTra's path through layers and resolution levels, FBNetV5's kept and skipped blocks on
its stage-by-path grid. Every space (the scaling spaces among them) also gets the stage table of
``nas.runner.html.stages``."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from nas.core.genotype import Genotype
from nas.core.space import SearchSpace
from nas.runner.html.stages import stage_table
from nas.runner.html.svg import Svg

NB201_COLORS = {"none": "#bbb", "skip_connect": "#333", "nor_conv_1x1": "#2a9d4b", "nor_conv_3x3": "#1f6fd1",
                "avg_pool_3x3": "#e07b00"}
NASNET_COLORS = {"identity": "#333", "conv": "#1f6fd1", "sep": "#7b3fc4", "pool": "#e07b00"}
LEVELS = ("1/4", "1/8", "1/16", "1/32")


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def nb201_cell(space: SearchSpace, genotype: Genotype) -> str:
    """The cell's four nodes left to right; each of the six edges drawn with its op (``none`` dashed grey)."""
    from nas.spaces.nb201.space import EDGES, edge_label

    svg = Svg(640, 250, "NB201 cell")
    y, r = 125.0, 18.0
    xs = [60 + 173 * i for i in range(4)]
    for node, source in EDGES:
        op = genotype[edge_label(node, source)]
        span = node - source
        mid = (xs[source] + xs[node]) / 2
        bend = {1: 0.0, 2: -140.0, 3: 170.0}[span]
        label_at = svg.arrow((xs[source], y), (mid, y + bend), (xs[node], y), NB201_COLORS[op], r, op == "none")
        svg.text(label_at[0], label_at[1] + (-6 if bend <= 0 else 14), op, color=NB201_COLORS[op], halo=True)
    for i, x in enumerate(xs):
        svg.circle((x, y), r, "#fff" if 0 < i < 3 else "#ffe9a8", title=f"node {i}")
        svg.text(x, y + 4, str(i), size=12, bold=True)
    svg.text(xs[0], y + 36, "input")
    svg.text(xs[3], y + 36, "output")
    return figure(svg.render(), f"NB201 cell {space.describe(genotype)} (node i sums its incoming edges)")


def _nasnet_color(op: str) -> str:
    kind = "identity" if op == "identity" else "sep" if op.startswith("sep") else \
        "pool" if "pool" in op else "conv"
    return NASNET_COLORS[kind]


def nasnet_cells(space: SearchSpace, genotype: Genotype) -> str:
    """Each cell as a graph: its two inputs, five blocks (two ops each, add or concat) and the output concat."""
    out = []
    for kind, cell in zip(("normal", "reduce"), space.cells(genotype)):
        column = {0: 0, 1: 0}
        for b, block in enumerate(cell.blocks):
            column[2 + b] = 1 + max(column[i] for i in block.inputs)
        output_column = max(column.values()) + 1
        columns: dict[int, list[int]] = {}
        for state, col in column.items():
            columns.setdefault(col, []).append(state)
        rows = max(len(states) for states in columns.values())
        width, height, r = 150.0 * (output_column + 1), 70.0 * rows + 70, 17.0
        where = {}
        for col, states in columns.items():
            for k, state in enumerate(states):
                where[state] = (75 + 150 * col, 45 + (height - 70) * (k + 0.5) / len(states))
        where[-1] = (75 + 150 * output_column, 45 + (height - 70) / 2)
        svg = Svg(width, height, f"NASNet {kind} cell")
        for b, block in enumerate(cell.blocks):
            target = where[2 + b]
            for side, (state, op) in enumerate(zip(block.inputs, block.ops)):
                start = where[state]
                bend = (-1 if side == 0 else 1) * (28 if block.inputs[0] == block.inputs[1] else 10)
                control = ((start[0] + target[0]) / 2, (start[1] + target[1]) / 2 + bend)
                label_at = svg.arrow(start, control, target, _nasnet_color(op), r)
                svg.text(label_at[0], label_at[1] + (-5 if side == 0 else 12), op, size=10,
                         color=_nasnet_color(op), halo=True)
        for state in cell.concat_indices():
            start, end = where[state], where[-1]
            svg.arrow(start, ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2), end, "#aaa", r, dashed=True)
        names = {0: "h-1", 1: "h"}
        for state, point in where.items():
            if state == -1:
                svg.circle(point, r + 4, "#ffe9a8", title="output: concat of " + str(list(cell.concat_indices())))
                svg.text(point[0], point[1] + 4, "out", bold=True)
            elif state < 2:
                svg.circle(point, r, "#ffe9a8", title="cell input " + ("h_{i-1}" if state == 0 else "h_i"))
                svg.text(point[0], point[1] + 4, names[state], bold=True)
            else:
                block = cell.blocks[state - 2]
                svg.circle(point, r, "#fff", title=f"block {state - 2} ({block.combine})")
                svg.text(point[0], point[1] + 4, f"{state}{'+' if block.combine == 'add' else '|'}", bold=True)
        out.append(figure(svg.render(), f"NASNet {kind} cell: states 0 = h(i-1), 1 = h(i), 2-6 = blocks "
                                        f"(+ add, | concat); output concatenates {list(cell.concat_indices())}"))
    return "".join(out)


def hytra_path(space: SearchSpace, genotype: Genotype) -> str:
    """The 16 layers (4 blocks of 4) against the 4 resolution levels, ResConv and ResAtt marked."""
    from nas.spaces.hytra import encoding as enc
    from nas.spaces.hytra.space import tokens_of

    tokens = tokens_of(genotype)
    x0, dx, y0, dy = 110.0, 42.0, 55.0, 48.0
    svg = Svg(x0 + dx * enc.LAYERS + 20, y0 + dy * enc.LEVELS + 35, "HyTra path")
    for level, name in enumerate(LEVELS):
        svg.text(20, y0 + dy * level + 4, name, anchor="start")
    for block in range(enc.BLOCKS):
        left = x0 + dx * block * enc.BLOCK_LAYERS - dx / 2
        if block:
            svg.line((left, y0 - 30), (left, y0 + dy * (enc.LEVELS - 1) + 15), dashed=True)
        svg.text(left + dx * enc.BLOCK_LAYERS / 2, y0 - 32, f"block {block + 1}", bold=True)
        for layer in range(block * enc.BLOCK_LAYERS, (block + 1) * enc.BLOCK_LAYERS):
            for level in range(enc.LEVELS):
                svg.circle((x0 + dx * layer, y0 + dy * level), 2, "#ccc", stroke="none")
    points = [(x0 - dx, y0)] + [(x0 + dx * k, y0 + dy * enc.token_level(t)) for k, t in enumerate(tokens)]
    svg.polyline(points, "#777")
    svg.rect(points[0][0] - 18, points[0][1] - 10, 36, 20, "#ffe9a8", title="stem (1/4)")
    svg.text(points[0][0], points[0][1] + 4, "stem", size=10)
    for k, (token, point) in enumerate(zip(tokens, points[1:])):
        att = enc.token_op(token) == "att"
        title = f"layer{k}: token {token}, Res{'Att' if att else 'Conv'} at {LEVELS[enc.token_level(token)]}"
        if att:
            svg.rect(point[0] - 10, point[1] - 10, 20, 20, "#f4a640", title=title)
        else:
            svg.circle(point, 10, "#7fb2f0", title=title)
        svg.text(point[0], point[1] + 4, "A" if att else "C", size=10, bold=True)
    return figure(svg.render(), f"{space.describe(genotype)}: C = ResConv, A = ResAtt, one column per layer, "
                                "one row per resolution level")


def fbnetv5_grid(space: SearchSpace, genotype: Genotype) -> str:
    """Every gated block on the stage-by-path grid: filled = kept, dashed = skipped, grey = feeds no built head."""
    from nas.spaces.fbnet.supernet import block_slots

    slots = block_slots(genotype.macro_dict)
    live = set(space.live_decisions(genotype))
    values = genotype.values
    cells: dict[tuple[int, int], list] = {}
    for slot in slots:
        cells.setdefault((slot.stage, slot.path), []).append(slot)
    stages = 1 + max(stage for stage, _ in cells)
    paths = 1 + max(path for _, path in cells)
    most = max(len(v) for v in cells.values())
    cell_w, cell_h, x0, y0 = 18.0 * most + 16, 40.0, 70.0, 40.0
    svg = Svg(x0 + (cell_w + 10) * stages + 10, y0 + (cell_h + 10) * paths + 10, "FBNetV5 blocks")
    for path in range(paths):
        svg.text(10, y0 + (cell_h + 10) * path + cell_h / 2 + 4, f"path {LEVELS[path] if path < 4 else path}",
                 anchor="start", size=10)
    for stage in range(stages):
        svg.text(x0 + (cell_w + 10) * stage + cell_w / 2, y0 - 12, f"stage {stage}", bold=True)
    for (stage, path), members in cells.items():
        left, top = x0 + (cell_w + 10) * stage, y0 + (cell_h + 10) * path
        svg.rect(left, top, cell_w, cell_h, "#f6f6f6", stroke="#ccc")
        for k, slot in enumerate(members):
            kept, inert = bool(int(values[slot.label])), slot.label not in live
            spec = slot.row_spec
            title = (f"{slot.label}: {'kept' if kept else 'skipped'}{' (feeds no built head)' if inert else ''}; "
                     f"k{spec.kernel} out {spec.out} stride {slot.stride} expansion {spec.expansion}")
            fill = ("#bbb" if inert else "#2a9d4b") if kept else "#fff"
            svg.rect(left + 8 + 18 * k, top + cell_h / 2 - 7, 14, 14, fill, stroke="#999" if inert else "#333",
                     dashed=not kept, title=title)
    kept = sum(int(values[s.label]) for s in slots)
    return figure(svg.render(), f"{space.describe(genotype)}; heads: {', '.join(genotype.macro_dict['tasks'])}; "
                                f"{kept} of {len(slots)} blocks kept (filled), skipped blocks dashed")


DRAWINGS: dict[str, Callable[[SearchSpace, Genotype], str]] = {
    "nb201": nb201_cell, "nasnet": nasnet_cells, "hytra": hytra_path, "fbnetv5": fbnetv5_grid}


def architecture(space: SearchSpace, genotype: Genotype) -> str:
    """The space's drawing of ``genotype`` (if it has one) followed by its stage table (folded under a drawing)."""
    drawing = DRAWINGS.get(space.name)
    if drawing is None:
        return stage_table(space, genotype)
    return drawing(space, genotype) + stage_table(space, genotype, opened=False)
