"""The one way run plots are drawn and saved (headless matplotlib, same size and style)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_axes(size: tuple[float, float] = (6, 3.6)) -> tuple[Any, Any]:
    """A figure and its axes on the non-interactive backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=size, dpi=110)


def finish(fig: Any, ax: Any, xlabel: str, ylabel: str, title: str = "", legend: str = "best") -> Any:
    """Label the axes, add grid and legend, and lay the figure out; returns ``fig``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc=legend)
    fig.tight_layout()
    return fig


def save_png(fig: Any, path: Path) -> Path:
    """Write ``fig`` to ``path`` as PNG and release it."""
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return path
