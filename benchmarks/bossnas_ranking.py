"""Rating quality of BossNAS on HyTra at CPU scale: Kendall tau of supernet ratings vs trained accuracy.

1. A BossNAS search with the defaults of ``nas search space=hytra`` (cpu preset, digits at 64x64) but
   ``prefixes=per_level`` (every block rated after a prefix ending at each level it can start at, so any
   architecture of the space has a summed score) trains and rates the supernet; ``--run-dir`` reuses the
   tables of such a finished search instead.
2. ``--archs`` architectures drawn uniformly from the space's variant (seeded) are rated by those tables:
   the summed block distance to the population center (each block's entry rated after the best prefix
   ending at its start level; lower is better), as the released ranking scripts sum block scores.
3. Each is trained from scratch twice (training seeds 0 and 1) with the same budget by the ``train``
   evaluator (``--epochs`` on the search's dataset, batch 64, SGD lr 0.05) and its validation accuracies kept.
4. Kendall tau (``scipy.stats.kendalltau``) and Spearman rho between the negated score and the mean accuracy,
   for the pooled (one center per block) and the per-prefix (released) block scores, printed beside the
   **noise ceiling**: the tau between the two training seeds' accuracies (no rating can agree with one
   training run better than another training run does).

    python benchmarks/bossnas_ranking.py --archs 20 --epochs 2            # search + 40 trainings (digits)
    python benchmarks/bossnas_ranking.py --archs 16 dataset=cifar10 dataset.root=../shared/data/cifar10 \
        dataset.limit_train=5000 dataset.resolution=64                  # CIFAR-10 views and trainings
    python benchmarks/bossnas_ranking.py --run-dir runs/<a hytra search>  # reuse its ratings
    python benchmarks/bossnas_ranking.py --run-dir runs/<...> --trained runs/bossnas_ranking.json  # re-score
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

from scipy.stats import kendalltau, spearmanr

from nas.cli.config import compose
from nas.evaluators.base import EvalContext, make_evaluator
from nas.runner.run import build_space, search
from nas.searchers.bossnas import selection
from nas.spaces.hytra.encoding import BLOCKS, end_level, sample_tokens

TRAIN_SEEDS = (0, 1)


def block_tables(run_dir: Path, pooled: bool) -> list[dict]:
    """The block score tables of a finished BossNAS run (per-prefix or pooled centers)."""
    return [selection.block_scores(selection.EmbeddingTable.load(run_dir / f"ratings_block{k}.npz"), pooled)
            for k in range(BLOCKS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=None, help="reuse the ratings of this BossNAS run")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bossnas_ranking.json"))
    parser.add_argument("--trained", type=Path, default=None,
                        help="take the trained architectures and accuracies from an earlier output (re-score only)")
    parser.add_argument("overrides", nargs="*", help="extra search overrides, e.g. searcher.steps_per_block=96")
    args = parser.parse_args()

    config = compose(["space=hytra", "searcher=bossnas", "searcher.prefixes=per_level", "searcher.strategy=dp",
                      "budget.trials=2", f"seed={args.seed}", *args.overrides])
    started = time.perf_counter()
    run_dir = args.run_dir
    if run_dir is None:
        run_dir = search(config, progress=True).run_dir
    search_seconds = time.perf_counter() - started
    space = build_space(config)
    rng = random.Random(f"ranking/{args.seed}")
    archs: list[list[int]] = []
    while len(archs) < args.archs:
        tokens = sample_tokens(rng, space.variant)
        if tokens not in archs:
            archs.append(tokens)
    evaluator = make_evaluator("train", backend="torch", dataset=dict(config["dataset"]), epochs=args.epochs,
                               batch_size=64, lr=0.05, threads=None)
    rows = json.loads(args.trained.read_text())["rows"] if args.trained else []
    for i, tokens in enumerate(archs if not rows else []):
        runs = [evaluator(space.from_tokens(tokens), EvalContext(trial=i, seed=s)) for s in TRAIN_SEEDS]
        accs = [m["valid_accuracy"] for m in runs]
        rows.append({"tokens": tokens, "valid_accuracy": sum(accs) / len(accs), "valid_accuracy_seeds": accs,
                     "params": runs[0]["params"], "macs": runs[0]["macs"],
                     "train_seconds": sum(m["train_seconds"] for m in runs)})
        print(f"[{i + 1}/{len(archs)}] {''.join(map(str, tokens))} valid {' / '.join(f'{a:.2f}' for a in accs)}% "
              f"({rows[-1]['train_seconds']:.0f} s)", flush=True)
    accuracy = [r["valid_accuracy"] for r in rows]
    seed_a, seed_b = ([r["valid_accuracy_seeds"][k] for r in rows] for k in range(2))
    ceiling, ceiling_p = kendalltau(seed_a, seed_b)
    print(f"noise ceiling: Kendall tau {ceiling:.3f} (p={ceiling_p:.3f}) between training seeds 0 and 1")
    params_tau, _ = kendalltau([r["params"] for r in rows], accuracy)
    macs_tau, _ = kendalltau([r["macs"] for r in rows], accuracy)
    print(f"#params: Kendall tau {params_tau:.3f}, MACs: {macs_tau:.3f} with the mean accuracy (baselines)")
    gates = json.loads((Path(run_dir) / "bossnas.json").read_text()).get("gates")
    summary: dict = {"run_dir": str(run_dir), "archs": len(rows), "epochs": args.epochs,
                     "search_seconds": search_seconds, "noise_ceiling_tau": ceiling, "params_tau": params_tau,
                     "macs_tau": macs_tau,
                     "gates": gates}
    for key, pooled in (("pooled", True), ("per_prefix", False)):
        tables = block_tables(run_dir, pooled)  # the tables are only needed now, after the trainings
        scores = []
        for row in rows:
            paths = [tuple(row["tokens"][4 * k:4 * k + 4]) for k in range(BLOCKS)]
            row[f"score_{key}"] = selection.summed(tables, paths, end_level)
            scores.append(-row[f"score_{key}"])
        tau, tau_p = kendalltau(scores, accuracy)
        rho, _ = spearmanr(scores, accuracy)
        summary[key] = {"kendall_tau": tau, "kendall_p": tau_p, "spearman_rho": rho}
        print(f"{key} centers: Kendall tau {tau:.3f} (p={tau_p:.3f}), Spearman rho {rho:.3f} "
              f"over {len(rows)} architectures")
    summary.update(total_seconds=time.perf_counter() - started, rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{summary['total_seconds']:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
