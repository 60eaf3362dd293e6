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

``--train-seeds 2`` trains each mask twice and prints the noise ceiling (Kendall tau between the two
training seeds: no supernet can rank better than training ranks itself); ``--final-steps`` lengthens the
trainings; ``--trained F`` keeps every training in a JSON cache, so that several supernets are scored
against the same trainings in seconds.
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
from nas.evaluators.multitask._batches import METRIC, Batches
from nas.evaluators.multitask._train import train_task
from nas.runner.run import build_space
from nas.searchers.base import SEARCHERS
from nas.searchers.fbnetv5._driver import STATE_FILE, Driver, load_data
from nas.searchers.fbnetv5._search import MultitaskSearch, SearchConfig


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


def data_key(driver: Driver) -> str:
    """The data a run trains on: its data options and the search seed that draws its canvases."""
    return json.dumps({"data": driver.data_options, "seed": driver.seed}, sort_keys=True)


def train_key(data: str, task: str, mask: list[int], steps: int, seed: int) -> str:
    """The cache key of one stand-alone training (the same mask trained the same way on the same data gives the
    same number)."""
    return f"{data}|{task}|{''.join(map(str, mask))}|{steps}|{seed}"


def load_trained(path: Path | None) -> dict[str, float]:
    return json.loads(path.read_text()) if path and path.exists() else {}


def tau_of(score: list[float], truth: list[float]) -> tuple[float, float]:
    tau, p = kendalltau(score, truth)
    return float(tau), float(p)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--masks", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="draws the masks")
    parser.add_argument("--tasks", nargs="+", default=None, help="a subset of the search's tasks")
    parser.add_argument("--train-seeds", type=int, default=1,
                        help="stand-alone trainings per mask (seeds 0..K-1); 2 or more print the noise ceiling")
    parser.add_argument("--final-steps", type=int, default=None,
                        help="steps of each stand-alone training (default: the run's final_steps)")
    parser.add_argument("--trained", type=Path, default=None,
                        help="JSON cache of stand-alone results, read and extended (reused across supernets)")
    parser.add_argument("--out", type=Path, default=None, help="JSON with every mask's numbers")
    args = parser.parse_args()
    for option, value in (("--masks", args.masks), ("--train-seeds", args.train_seeds),
                          ("--final-steps", args.final_steps)):
        if value is not None and value < 1:
            parser.error(f"{option} must be at least 1, got {value}")
    driver, data, adapted, search = load_search(args.run_dir)
    tasks = list(args.tasks or search.tasks)
    unknown = sorted(set(tasks) - set(search.tasks))
    if unknown:
        raise SystemExit(f"error: the run searched {list(search.tasks)}, not {unknown}")
    final = {**driver.final, **({"steps": args.final_steps} if args.final_steps else {})}
    trained = load_trained(args.trained)
    valid = Batches(data.valid, search.trainer.levels, search.device)
    generator = torch.Generator().manual_seed(args.seed)
    decisions = search.plan.decisions
    summary: dict = {"run_dir": str(args.run_dir), "masks": args.masks, "final_steps": final["steps"],
                     "train_seeds": args.train_seeds, "tasks": {}}
    masks = [(torch.rand(len(decisions), generator=generator) < 0.5).float() for _ in range(args.masks)]
    for task in tasks:
        t = search.tasks.index(task)
        rows = []
        for i, mask in enumerate(masks):
            loss = search.trainer.loss_under(task, mask, valid)
            arch = adapted.decode(driver.genotype(adapted, task, mask, decisions))
            bits = mask.int().tolist()
            metrics = []
            for seed in range(args.train_seeds):
                key = train_key(data_key(driver), task, bits, final["steps"], seed)
                if key not in trained:
                    trained[key] = train_task(arch, task, data, seed=seed, **final)[METRIC[task]]
                    if args.trained:
                        args.trained.write_text(json.dumps(trained, indent=1) + "\n")
                metrics.append(trained[key])
            macs = float(search.cost.macs(mask)[t])
            rows.append({"mask": bits, "supernet_loss": loss, "macs": macs, "metrics": metrics,
                         METRIC[task]: float(np.mean(metrics))})
            print(f"{task} [{i + 1}/{args.masks}] supernet loss {loss:.4f}  trained {METRIC[task]} "
                  + " / ".join(f"{m:.2f}" for m in metrics) + f"  MACs {macs / 1e6:.2f} M", flush=True)
        score, truth = [-r["supernet_loss"] for r in rows], [r[METRIC[task]] for r in rows]
        tau, p = tau_of(score, truth)
        rho, _ = spearmanr(score, truth)
        macs_tau, _ = tau_of([r["macs"] for r in rows], truth)
        entry = {"kendall_tau": tau, "kendall_p": p, "spearman_rho": float(rho), "macs_tau": macs_tau,
                 "rows": rows}
        line = (f"{task}: Kendall tau {tau:.3f} (p={p:.3f}), Spearman rho {rho:.3f} over {len(rows)} masks; "
                f"MACs tau {macs_tau:.3f}")
        if args.train_seeds >= 2:
            ceiling, _ = tau_of([r["metrics"][0] for r in rows], [r["metrics"][1] for r in rows])
            entry["noise_ceiling_tau"] = ceiling
            line += f"; noise ceiling (training seed 0 vs 1) {ceiling:.3f}"
        summary["tasks"][task] = entry
        print(line + f" [{final['steps']}-step trainings]", flush=True)
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
