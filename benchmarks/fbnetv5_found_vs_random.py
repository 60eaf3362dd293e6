"""Does FBNetV5's search find better networks than chance? Found vs random networks of equal MACs, over seeds.

For each search seed (``--seeds``, seeds 0..S-1) it runs ``nas search space=fbnetv5`` (or reuses that seed's
finished run under ``--run-root``), then per task trains from scratch, with each of ``--train-seeds`` training
seeds and the search's own recipe (``final_steps``, ``final_batch_size``, ``final_lr``):

- the found network (the task's most probable mask);
- ``--random`` random networks whose task MACs are within ``cost_tolerance`` (5%) of the found one's (uniform
  masks, the closest of ``random_tries`` draws otherwise), drawn under the search seed.

Per task it prints the found and random means over seeds with their standard errors (over seeds), the paired
difference found - random (each seed's found mean minus its random mean) with its standard error, and the seeds
in which found wins. Then the supernet's ranking (``fbnetv5_ranking.py``'s measure) on the first seed's supernet:
Kendall tau of its loss under ``--masks`` uniform masks per task against the same masks trained stand-alone.

    OMP_NUM_THREADS=1 python benchmarks/fbnetv5_found_vs_random.py --seeds 5 --json runs/fbnetv5_fvr.json
    OMP_NUM_THREADS=1 python benchmarks/fbnetv5_found_vs_random.py --quick   # 2 seeds, 1 random, 1 training, 6 masks
    python benchmarks/fbnetv5_found_vs_random.py --seeds 5 searcher.steps=1000        # search overrides

``--json PATH`` writes, per task (``classification``, ``segmentation``, ``detection``), ``found_mean``,
``random_mean``, ``found_se``, ``random_se``, ``diff_mean``, ``diff_se``, ``wins``, ``seeds`` and ``tau``, with
every training's numbers under ``rows``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.stats import kendalltau

sys.path.insert(0, str(Path(__file__).parent))
from fbnetv5_ranking import load_search  # noqa: E402

from nas.cli.config import compose  # noqa: E402
from nas.core.genotype import Genotype  # noqa: E402
from nas.evaluators.multitask._batches import METRIC, Batches  # noqa: E402
from nas.evaluators.multitask._train import train_task  # noqa: E402
from nas.runner.journal import read_events  # noqa: E402
from nas.runner.run import search  # noqa: E402
from nas.searchers.fbnetv5._driver import STATE_FILE, equal_cost_mask  # noqa: E402
from nas.spaces.fbnet.plan import fragment_cost  # noqa: E402


def finished_search(run_dir: Path) -> bool:
    """A search that ended: its supernet saved and its six final trainings journalled."""
    if not (run_dir / STATE_FILE).is_file() or not (run_dir / "trials.jsonl").is_file():
        return False
    return sum(e["event"] == "finished" for e in read_events(run_dir / "trials.jsonl")) >= 6


def se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan")


def trained(arch, task: str, data, final: dict, device: str, train_seeds: int) -> list[float]:
    """The task metric of ``arch`` trained from scratch with each training seed."""
    return [train_task(arch, task, data, seed=s, device=device, **final)[METRIC[task]] for s in range(train_seeds)]


def compare(run_dir: Path, seed: int, args: argparse.Namespace) -> dict[str, dict]:
    """Per task: the found network and ``--random`` equal-MACs random ones, each trained with every seed."""
    driver, data, space, srch = load_search(run_dir)
    device = driver.search_options["device"]
    decisions = srch.plan.decisions
    generator = torch.Generator().manual_seed(10_000 + seed)
    out = {}
    for t, task in enumerate(srch.tasks):
        best = srch.dists.most_probable()[t]
        target = float(srch.cost.macs(best)[t])
        row = {"found": None, "random": []}
        masks = [("found", best)] + [("random", equal_cost_mask(srch, t, target, driver.cost_tolerance,
                                                                driver.random_tries, generator))
                                     for _ in range(args.random)]
        for role, mask in masks:
            genotype: Genotype = driver.genotype(space, task, mask, decisions)
            arch = space.decode(genotype)
            metrics = trained(arch, task, data, driver.final, device, args.train_seeds)
            entry = {"mask": mask.int().tolist(), "macs": fragment_cost(arch)["macs"], "metric": metrics}
            if role == "found":
                row["found"] = entry
            else:
                row["random"].append(entry)
            print(f"seed {seed} {task} {role}: {METRIC[task]} {' / '.join(f'{m:.2f}' for m in metrics)} "
                  f"({entry['macs'] / 1e6:.2f} M MACs)", flush=True)
        out[task] = row
    return out


def ranking(run_dir: Path, args: argparse.Namespace) -> dict[str, dict]:
    """Kendall tau of the supernet's loss under uniform masks vs the masks trained stand-alone, per task."""
    driver, data, space, srch = load_search(run_dir)
    valid = Batches(data.valid, srch.trainer.levels, srch.device)
    generator = torch.Generator().manual_seed(args.mask_seed)
    decisions = srch.plan.decisions
    out = {}
    for task in srch.tasks:
        rows = []
        for _ in range(args.masks):
            mask = (torch.rand(len(decisions), generator=generator) < 0.5).float()
            loss = srch.trainer.loss_under(task, mask, valid)
            arch = space.decode(driver.genotype(space, task, mask, decisions))
            metric = train_task(arch, task, data, seed=0, device=driver.search_options["device"],
                                **driver.final)[METRIC[task]]
            rows.append({"mask": mask.int().tolist(), "supernet_loss": loss, "metric": metric})
        tau, p = kendalltau([-r["supernet_loss"] for r in rows], [r["metric"] for r in rows])
        out[task] = {"tau": float(tau), "p": float(p), "rows": rows}
        print(f"ranking {task}: Kendall tau {tau:.3f} (p={p:.3f}) over {len(rows)} masks", flush=True)
    return out


def summarise(per_seed: dict[int, dict[str, dict]], ranks: dict[str, dict]) -> dict[str, dict]:
    summary = {}
    for task in ranks:
        found, random, diffs = [], [], []
        for rows in per_seed.values():
            f = statistics.mean(rows[task]["found"]["metric"])
            r = statistics.mean(m for entry in rows[task]["random"] for m in entry["metric"])
            found.append(f)
            random.append(r)
            diffs.append(f - r)
        summary[task] = {"found_mean": statistics.mean(found), "random_mean": statistics.mean(random),
                         "found_se": se(found), "random_se": se(random), "diff_mean": statistics.mean(diffs),
                         "diff_se": se(diffs), "wins": sum(d > 0 for d in diffs), "seeds": len(diffs),
                         "tau": ranks[task]["tau"]}
    return summary


def table(summary: dict[str, dict]) -> str:
    lines = ["| task | found | random, equal MACs | found - random | found wins | supernet tau |",
             "|---|---:|---:|---:|---:|---:|"]
    for task, s in summary.items():
        lines.append(f"| {task} ({METRIC[task]}) | {s['found_mean']:.2f} +- {s['found_se']:.2f} | "
                     f"{s['random_mean']:.2f} +- {s['random_se']:.2f} | {s['diff_mean']:+.2f} +- {s['diff_se']:.2f} | "
                     f"{s['wins']}/{s['seeds']} | {s['tau']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="search seeds 0..S-1")
    parser.add_argument("--random", type=int, default=2, help="random networks of equal MACs per task and seed")
    parser.add_argument("--train-seeds", type=int, default=2, help="trainings of each network")
    parser.add_argument("--masks", type=int, default=20, help="uniform masks per task for the supernet's tau")
    parser.add_argument("--mask-seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 1 random network, 1 training each, 6 masks (under 10 min)")
    parser.add_argument("--run-root", type=Path, default=Path("runs/fbnetv5_found_vs_random"),
                        help="one search per seed under it (seed<S>), reused when finished")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("overrides", nargs="*", help="search overrides, e.g. searcher.steps=1000")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.random, args.train_seeds, args.masks = 2, 1, 1, 6
    if min(args.seeds, args.random, args.train_seeds, args.masks) < 1:
        parser.error("--seeds, --random, --train-seeds and --masks must be at least 1")
    started = time.perf_counter()
    per_seed = {}
    for seed in range(args.seeds):
        run_dir = args.run_root / f"seed{seed}"
        if not finished_search(run_dir):
            config = compose(["space=fbnetv5", "searcher=fbnetv5", f"seed={seed}", f"run_dir={run_dir}",
                              *args.overrides])
            search(config, progress=False)
        per_seed[seed] = compare(run_dir, seed, args)
    ranks = ranking(args.run_root / "seed0", args)
    summary = summarise(per_seed, ranks)
    print(table(summary))
    seconds = time.perf_counter() - started
    print(f"{seconds:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {**summary, "seconds": seconds, "overrides": args.overrides,
                   "rows": {str(s): rows for s, rows in per_seed.items()},
                   "ranking_rows": {t: r["rows"] for t, r in ranks.items()}}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
