"""A few lines of SVG writing for the architecture drawings: shapes, halo'd labels and curved arrows.

Hand-written rather than graphviz or matplotlib: every drawing here is a small fixed layout known from its
space (NB201's four nodes, a NASNet cell's states, HyTra's 16 layers by 4 levels, FBNetV5's stage-by-path
grid), so the coordinates are a few lines of arithmetic; no graph-layout tool is a dependency, and inline
SVG keeps ``report.html`` one self-contained file.
"""

from __future__ import annotations

import math
from html import escape

Point = tuple[float, float]


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


class Svg:
    """Collects elements and renders one ``<svg>`` of a fixed size."""

    def __init__(self, width: float, height: float, label: str) -> None:
        self.width, self.height, self.label = width, height, label
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(self, x: float, y: float, text: str, size: int = 11, anchor: str = "middle", color: str = "#222",
             halo: bool = False, bold: bool = False) -> None:
        style = ' stroke="#fff" stroke-width="3" paint-order="stroke"' if halo else ""
        weight = ' font-weight="bold"' if bold else ""
        self.add(f'<text x="{_num(x)}" y="{_num(y)}" font-size="{size}" text-anchor="{anchor}" fill="{color}"'
                 f'{style}{weight}>{escape(text)}</text>')

    def circle(self, center: Point, r: float, fill: str, stroke: str = "#333", title: str = "") -> None:
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<circle cx="{_num(center[0])}" cy="{_num(center[1])}" r="{_num(r)}" fill="{fill}" '
                 f'stroke="{stroke}">{tip}</circle>')

    def rect(self, x: float, y: float, w: float, h: float, fill: str, stroke: str = "#333", dashed: bool = False,
             title: str = "", rx: float = 2) -> None:
        dash = ' stroke-dasharray="3 2"' if dashed else ""
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.add(f'<rect x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" rx="{_num(rx)}" '
                 f'fill="{fill}" stroke="{stroke}"{dash}>{tip}</rect>')

    def line(self, a: Point, b: Point, color: str = "#999", dashed: bool = False, width: float = 1) -> None:
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        self.add(f'<line x1="{_num(a[0])}" y1="{_num(a[1])}" x2="{_num(b[0])}" y2="{_num(b[1])}" '
                 f'stroke="{color}" stroke-width="{_num(width)}"{dash}/>')

    def polyline(self, points: list[Point], color: str, width: float = 2) -> None:
        coords = " ".join(f"{_num(x)},{_num(y)}" for x, y in points)
        self.add(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="{_num(width)}"/>')

    def arrow(self, start: Point, control: Point, end: Point, color: str, trim: float, dashed: bool = False) -> Point:
        """A quadratic curve from ``start`` to ``end`` (both trimmed by ``trim``, a node's radius) with an
        arrowhead at the end; returns the curve's midpoint, where its label goes."""
        s = _toward(start, control, trim)
        e = _toward(end, control, trim)
        dash = ' stroke-dasharray="4 3"' if dashed else ""
        self.add(f'<path d="M{_num(s[0])},{_num(s[1])} Q{_num(control[0])},{_num(control[1])} '
                 f'{_num(e[0])},{_num(e[1])}" fill="none" stroke="{color}" stroke-width="1.6"{dash}/>')
        angle = math.atan2(e[1] - control[1], e[0] - control[0])
        wing = [(e[0] - 8 * math.cos(angle + d), e[1] - 8 * math.sin(angle + d)) for d in (0.4, -0.4)]
        self.add(f'<polygon points="{_num(e[0])},{_num(e[1])} {_num(wing[0][0])},{_num(wing[0][1])} '
                 f'{_num(wing[1][0])},{_num(wing[1][1])}" fill="{color}"/>')
        return ((s[0] + 2 * control[0] + e[0]) / 4, (s[1] + 2 * control[1] + e[1]) / 4)

    def render(self) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_num(self.width)}" height="{_num(self.height)}" '
                f'viewBox="0 0 {_num(self.width)} {_num(self.height)}" role="img" aria-label="{escape(self.label)}" '
                f'font-family="sans-serif">' + "".join(self.parts) + "</svg>")


def _toward(point: Point, target: Point, distance: float) -> Point:
    """``point`` moved ``distance`` toward ``target``."""
    dx, dy = target[0] - point[0], target[1] - point[1]
    norm = math.hypot(dx, dy) or 1.0
    return point[0] + dx / norm * distance, point[1] + dy / norm * distance
