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
   training run better than another training run does), MACs' tau (bigger networks train better here), the
   score's tau with MACs and the score's partial tau given MACs (its signal beyond preferring big networks).
5. ``--found RUN`` (repeatable): each finished search's found architecture is trained the same way and placed
   among the random draws (its percentile; found mean vs random mean; how many beat the random median), a
   steadier check of "found beats random" than the one random network a search trains.

    python benchmarks/bossnas_ranking.py --archs 20 --epochs 2            # search + 40 trainings (digits)
    python benchmarks/bossnas_ranking.py --archs 16 dataset=cifar10 dataset.root=../shared/data/cifar10 \
        dataset.limit_train=5000 dataset.resolution=64                  # CIFAR-10 views and trainings
    python benchmarks/bossnas_ranking.py --run-dir runs/<a hytra search>  # reuse its ratings
    python benchmarks/bossnas_ranking.py --run-dir runs/<...> --trained runs/bossnas_ranking.json  # re-score
    python benchmarks/bossnas_ranking.py --run-dir runs/<...> --trained runs/bossnas_ranking.json --archs 40 \
        --out runs/ranking40.json  # train only the 20 draws the earlier 20 lack
    python benchmarks/bossnas_ranking.py --run-dir runs/<...> --trained runs/ranking40.json \
        --found runs/<search 1> --found runs/<search 2> ...   # found architectures among the random ones
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time
from pathlib import Path

from scipy.stats import kendalltau, spearmanr

from nas.cli.config import compose
from nas.core.result import Result
from nas.evaluators.base import EvalContext, make_evaluator
from nas.runner.journal import read_events
from nas.runner.run import build_space, search
from nas.searchers.bossnas import selection
from nas.spaces.hytra.encoding import BLOCKS, end_level, sample_tokens
from nas.spaces.hytra.space import tokens_of

TRAIN_SEEDS = (0, 1)


def block_tables(run_dir: Path, pooled: bool) -> list[dict]:
    """The block score tables of a finished BossNAS run (per-prefix or pooled centers)."""
    return [selection.block_scores(selection.EmbeddingTable.load(run_dir / f"ratings_block{k}.npz"), pooled)
            for k in range(BLOCKS)]


def partial_tau(tau_xy: float, tau_xz: float, tau_yz: float) -> float:
    """Kendall's partial tau of x and y given z: how much of the score's agreement with accuracy is not the
    agreement both have with MACs (a bigger network trains better here, and a supernet may just prefer it)."""
    return (tau_xy - tau_xz * tau_yz) / math.sqrt((1 - tau_xz ** 2) * (1 - tau_yz ** 2))


def found_tokens(run_dir: Path) -> list[int]:
    """The architecture a finished BossNAS search found (its journal's trial tagged ``role=found``)."""
    for event in read_events(run_dir / "trials.jsonl"):
        if event["event"] == "finished" and event.get("tags", {}).get("role") == "found":
            return tokens_of(Result.from_json(event).genotype)
    raise SystemExit(f"{run_dir}: no trial tagged role=found in trials.jsonl (an unfinished search?)")


def train_row(evaluator, space, tokens: list[int], trial: int) -> dict:
    """One architecture trained from scratch with each training seed."""
    runs = [evaluator(space.from_tokens(tokens), EvalContext(trial=trial, seed=s)) for s in TRAIN_SEEDS]
    accs = [m["valid_accuracy"] for m in runs]
    return {"tokens": tokens, "valid_accuracy": sum(accs) / len(accs), "valid_accuracy_seeds": accs,
            "params": runs[0]["params"], "macs": runs[0]["macs"],
            "train_seconds": sum(m["train_seconds"] for m in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=None, help="reuse the ratings of this BossNAS run")
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/bossnas_ranking.json"))
    parser.add_argument("--trained", type=Path, default=None,
                        help="take the architectures an earlier output trained from it (same --seed: the first "
                             "--archs draws are the same), train only the others")
    parser.add_argument("--found", type=Path, action="append", default=[], metavar="RUN",
                        help="a finished BossNAS search whose found architecture is trained like the others and "
                             "placed among the random ones (repeat for several searches)")
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
    known = {tuple(r["tokens"]): r for r in json.loads(args.trained.read_text())["rows"]} if args.trained else {}
    rows = []
    for i, tokens in enumerate(archs):
        if tuple(tokens) in known:
            rows.append({k: v for k, v in known[tuple(tokens)].items() if not k.startswith("score_")})
            continue
        rows.append(train_row(evaluator, space, tokens, i))
        accs = rows[-1]["valid_accuracy_seeds"]
        print(f"[{i + 1}/{len(archs)}] {''.join(map(str, tokens))} valid {' / '.join(f'{a:.2f}' for a in accs)}% "
              f"({rows[-1]['train_seconds']:.0f} s)", flush=True)
        # each training kept as it ends (with the earlier ones not reached yet): resumed with --trained <out>
        done = {tuple(r["tokens"]) for r in rows}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"rows": rows + [r for t, r in known.items() if t not in done]}, indent=2)
                            + "\n")
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
        score_macs, _ = kendalltau(scores, [r["macs"] for r in rows])
        given_macs = partial_tau(tau, score_macs, macs_tau)
        summary[key] = {"kendall_tau": tau, "kendall_p": tau_p, "spearman_rho": rho, "score_macs_tau": score_macs,
                        "kendall_tau_given_macs": given_macs}
        print(f"{key} centers: Kendall tau {tau:.3f} (p={tau_p:.3f}), Spearman rho {rho:.3f} "
              f"over {len(rows)} architectures; score vs MACs {score_macs:.3f}, tau given MACs {given_macs:.3f}")
    if args.found:
        summary["found"] = found_vs_random(args, evaluator, space, rows)
    summary.update(total_seconds=time.perf_counter() - started, rows=rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{summary['total_seconds']:.0f} s -> {args.out}")


def found_vs_random(args: argparse.Namespace, evaluator, space, rows: list[dict]) -> dict:
    """Each search's found architecture trained with the same seeds and recipe, against the random draws: its
    percentile (share of random architectures with a lower mean accuracy), how many beat the random median, and
    the found mean against the random mean with their standard errors."""
    known = {}
    if args.trained:
        known = {tuple(r["tokens"]): r for r in json.loads(args.trained.read_text()).get("found", [])}
    accuracy = sorted(r["valid_accuracy"] for r in rows)
    median = statistics.median(accuracy)
    found = []
    for k, run in enumerate(args.found):
        tokens = found_tokens(run)
        row = dict(known.get(tuple(tokens)) or train_row(evaluator, space, tokens, 1000 + k), run_dir=str(run))
        row["percentile"] = sum(a < row["valid_accuracy"] for a in accuracy) / len(accuracy)
        row["macs_percentile"] = sum(r["macs"] < row["macs"] for r in rows) / len(rows)
        found.append(row)
        print(f"found by {run}: {''.join(map(str, tokens))} valid {row['valid_accuracy']:.2f}% "
              f"(percentile {100 * row['percentile']:.0f} of the random ones; MACs percentile "
              f"{100 * row['macs_percentile']:.0f})", flush=True)
    means = [r["valid_accuracy"] for r in found]
    se = statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else float("nan")
    random_se = statistics.stdev(accuracy) / math.sqrt(len(accuracy))
    wins = sum(m > median for m in means)
    print(f"found: {statistics.mean(means):.2f} +- {se:.2f}% over {len(means)} searches, random: "
          f"{statistics.mean(accuracy):.2f} +- {random_se:.2f}% over {len(accuracy)}; {wins} of {len(means)} found "
          f"beat the random median ({median:.2f}%)")
    return {"rows": found, "found_mean": statistics.mean(means), "found_se": se,
            "random_mean": statistics.mean(accuracy), "random_se": random_se, "random_median": median,
            "wins_over_median": wins, "searches": len(means)}


if __name__ == "__main__":
    main()
