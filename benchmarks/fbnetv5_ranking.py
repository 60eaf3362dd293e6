"""Does the FBNetV5 supernet rank stand-alone networks? Kendall tau of supernet loss vs trained metric per task.

Takes a finished ``nas search space=fbnetv5`` run (its ``fbnetv5_state.pt``: supernet weights after the
search), draws ``--masks`` uniform keep/skip masks per task, and for each

1. the supernet's loss of that task under the mask on the validation split (no gradients, batch statistics,
   as in the search's forward passes),
2. the single-task network of the mask trained from scratch as the search's final trainings do
   (``final_steps`` of the run's config), scored by the task's metric (accuracy, mIoU, COCO mAP),

then prints Kendall tau and Spearman rho between the negated supernet loss and the trained metric (positive:
the supernet ranks networks the way training does; the search's REINFORCE signal relies on it).

    OMP_NUM_THREADS=1 python benchmarks/fbnetv5_ranking.py <run_dir> --masks 20
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from nas.data.multitask import MultitaskData
from nas.runner.run import build_space
from nas.searchers.base import SEARCHERS
from nas.searchers.fbnetv5._driver import STATE_FILE, Driver, load_data
from nas.searchers.fbnetv5._search import METRIC, Batches, MultitaskSearch, SearchConfig, task_loss, train_task


def supernet_loss(search: MultitaskSearch, task: str, mask: torch.Tensor, batches: Batches, batch: int) -> float:
    """Mean loss of ``task`` under ``mask`` over the split, train-mode BN (batch statistics), no gradients."""
    search.supernet.train()
    heads = search.heads[task]
    losses = []
    with torch.no_grad():
        for start in range(0, len(batches), batch):
            b = batches.take(np.arange(start, min(start + batch, len(batches))))
            losses.append(float(task_loss(task, search.supernet(b.images, mask, heads), b, search.levels)))
    return float(np.mean(losses))


def load_search(run_dir: Path) -> tuple[Driver, MultitaskData, Any, MultitaskSearch]:
    """A finished search's driver, data, data-adapted space and supernet (weights and distributions)."""
    config = json.loads((run_dir / "config.json").read_text())
    space = build_space(config)
    options = {k: v for k, v in config["searcher"].items() if k != "name"}
    searcher = SEARCHERS.get("fbnetv5")(**options)
    searcher.setup(space, seed=int(config["seed"]))
    driver = Driver(searcher)
    data = load_data(driver.data_options, driver.seed)
    adapted = driver.adapted_space(data, driver.tasks or list(space.macro["tasks"]))
    search = MultitaskSearch(adapted.plan(), data, list(adapted.macro["tasks"]),
                             SearchConfig(seed=driver.seed, **driver.search_options))
    search.load_state_dict(torch.load(run_dir / STATE_FILE, map_location="cpu", weights_only=False))
    return driver, data, adapted, search


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--masks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON with every mask's numbers")
    args = parser.parse_args()
    driver, data, adapted, search = load_search(args.run_dir)
    tasks = list(search.tasks)
    valid = Batches(data.valid, search.levels, search.device)
    generator = torch.Generator().manual_seed(args.seed)
    decisions = search.plan.decisions
    summary: dict = {"run_dir": str(args.run_dir), "masks": args.masks, "tasks": {}}
    for task in tasks:
        rows = []
        for i in range(args.masks):
            mask = (torch.rand(len(decisions), generator=generator) < 0.5).float()
            loss = supernet_loss(search, task, mask, valid, 64)
            arch = adapted.decode(driver.genotype(adapted, task, mask, decisions))
            metric = train_task(arch, task, data, seed=args.seed, **driver.final)[METRIC[task]]
            rows.append({"mask": mask.int().tolist(), "supernet_loss": loss, METRIC[task]: metric})
            print(f"{task} [{i + 1}/{args.masks}] supernet loss {loss:.4f}  trained {METRIC[task]} {metric:.2f}",
                  flush=True)
        score, truth = [-r["supernet_loss"] for r in rows], [r[METRIC[task]] for r in rows]
        tau, p = kendalltau(score, truth)
        rho, _ = spearmanr(score, truth)
        summary["tasks"][task] = {"kendall_tau": tau, "kendall_p": p, "spearman_rho": rho, "rows": rows}
        print(f"{task}: Kendall tau {tau:.3f} (p={p:.3f}), Spearman rho {rho:.3f} over {len(rows)} masks", flush=True)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
