"""ScheduledDropPath (Zoph et al. 2018; TF-Slim ``_apply_drop_path``, version v3) as pure functions.

The keep probability of an op's output falls linearly with the depth of its cell and, over
training, linearly from 1 to that per-cell value:

    k_layer = 1 - (cell_index + 1) / num_cells * (1 - keep_final)
    k       = 1 - min(1, step / total_steps) * (1 - k_layer)

``cell_index`` counts every cell from 0 in forward order (ImageNet stem cells included) and
``num_cells`` is their total. The ArchSpec stores the depth part as each ``drop_path`` node's rate
(``layer_drop_rate``) and marks it ``scheduled``; the time part is the ``progress`` both training loops
set on scheduled drop-path modules each step (``nas.backends.torch.schedules.set_drop_path_progress``).
Off at evaluation.
"""

from __future__ import annotations


def layer_drop_rate(cell_index: int, num_cells: int, keep_final: float) -> float:
    """Drop probability of a cell's op outputs at the end of training: ``1 - k_layer``."""
    if not 0 <= cell_index < num_cells:
        raise ValueError(f"cell_index must be in [0, {num_cells}), got {cell_index}")
    if not 0.0 < keep_final <= 1.0:
        raise ValueError(f"keep_final must be in (0, 1], got {keep_final}")
    return (cell_index + 1) / num_cells * (1.0 - keep_final)


def progress(step: int, total_steps: int) -> float:
    """The time factor ``min(1, step / total_steps)`` (1 when there is no schedule)."""
    if total_steps <= 0:
        return 1.0
    return min(1.0, max(0.0, step / total_steps))


def drop_rate(cell_index: int, num_cells: int, step: int, total_steps: int, keep_final: float) -> float:
    """Drop probability ``1 - k`` of an op output in cell ``cell_index`` at training step ``step``."""
    return progress(step, total_steps) * layer_drop_rate(cell_index, num_cells, keep_final)


def keep_prob(cell_index: int, num_cells: int, step: int, total_steps: int, keep_final: float) -> float:
    """Keep probability ``k`` of the reference formula."""
    return 1.0 - drop_rate(cell_index, num_cells, step, total_steps, keep_final)
