"""BossNAS's ratings checked against NAS-Bench-201: Kendall tau of the supernet's rating vs 200-epoch accuracy.

The external check of the BossNAS searcher. ``nas search space=nb201 searcher=bossnas`` trains the NB201
supernet (one block per stage, the stage's cell chosen independently in every step) with ensemble
bootstrapping on CIFAR-10 at 32 px, then rates ``--archs`` cells sampled with ``--sample-seed`` in every
block, each after the same cell in the earlier stages; a cell's rating is the sum of its block distances to
the population center (lower is better). Printed beside it, on the same cells: #params (the baseline a rating
must approach), the collapse gates of every block, seconds. The found cell (least summed distance) and a random
one are looked up in the table (``evaluator=tabular``), so nothing else is trained.

The proxy network is reduced for the CPU budget (stated in the output): C=8, one cell per stage
(``--channels``/``--cells``), 10,000 CIFAR-10 training images. ``--steps 100 300 600`` runs one search per
budget and prints the curve of tau against steps per block.

    python benchmarks/bossnas_nb201.py --archs 64 --sample-seed 0 --json runs/bossnas_nb201.json
    python benchmarks/bossnas_nb201.py --steps 100 300 600 --sample-seed 0      # the curve (about 30 min)
    python benchmarks/bossnas_nb201.py searcher.optimizer=sgd searcher.lr=0.05   # any search override
    python benchmarks/bossnas_nb201.py --analyse runs/nb201_steps300_s0           # figures of finished runs

Which ops the table rewards and which each block's scores follow is printed as Kendall tau with the number
of live 3x3 / 1x1 convolutions and average pools of each cell (``op_preference`` in the JSON).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau, spearmanr

from nas.cli.config import compose
from nas.core.cost import arch_cost
from nas.core.ir import ArchSpec
from nas.evaluators.supernet.embeddings import EmbeddingTable
from nas.runner.run import build_space, search
from nas.searchers.bossnas.selection import evolved_center, rank_sum

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OP_KINDS = ("conv3x3", "conv1x1", "avg_pool")


def load_accuracy(table: Path) -> dict[str, float]:
    """NB201 cell string -> 200-epoch CIFAR-10 test accuracy (mean over seeds)."""
    with open(table, newline="") as f:
        return {row["arch_str"]: float(row["cifar10_test_200ep"]) for row in csv.DictReader(f)}


def run_one(args: argparse.Namespace, steps: int, accuracy: dict[str, float]) -> dict:
    """One search at ``steps`` per block and its figures."""
    overrides = ["space=nb201", "searcher=bossnas", "evaluator=tabular", f"evaluator.table={args.table}",
                 "dataset=cifar10", f"dataset.root={args.cifar10}", f"dataset.limit_train={args.limit_train}",
                 f"+space.macro.channels={args.channels}", f"+space.macro.cells_per_stage={args.cells}",
                 f"searcher.steps_per_block={steps}", f"searcher.batch_size={args.batch_size}",
                 f"searcher.population={args.archs}",
                 f"searcher.population_seed={args.sample_seed}", f"searcher.threads={args.threads}",
                 f"searcher.rating_samples={args.rating_samples}", f"searcher.rating_views={args.rating_views}",
                 *([f"searcher.center_top={args.center_top}"] if args.center_top is not None else []),
                 *([f"searcher.center_iterations={args.center_iterations}"] if args.center_iterations is not None
                   else []),
                 f"searcher.supernets={args.supernets}", f"seed={args.seed}", "budget.trials=2", *args.overrides]
    if args.run_root:
        overrides.append(f"run_dir={args.run_root}/nb201_steps{steps}_s{args.sample_seed}")
    config = compose(overrides)
    began = time.perf_counter()
    summary = search(config, progress=not args.quiet)
    seconds = time.perf_counter() - began
    roles = {r.tags.get("role"): r.metrics.get("test_accuracy") for r in summary.results}
    return {"steps_per_block": steps, **analyse(Path(summary.run_dir), accuracy),
            "found_test_accuracy": roles.get("found"), "random_test_accuracy": roles.get("random"),
            "seconds": seconds}


def op_counts(arch: ArchSpec) -> dict[str, int]:
    """Live 3x3 / 1x1 convolutions and average pools of a decoded NB201 network (the IR keeps only nodes the
    output reads, so dead edges do not count; the stem and reductions add the same to every cell)."""
    counts = dict.fromkeys(OP_KINDS, 0)
    for node in arch.nodes:
        if node.op == "conv2d" and node.p.get("kernel") in (1, 3):
            counts[f"conv{node.p['kernel']}x{node.p['kernel']}"] += 1
        elif node.op == "avg_pool":
            counts["avg_pool"] += 1
    return counts


def analyse(run_dir: Path, accuracy: dict[str, float], center_top: float | None = None,
            center_iterations: int | None = None) -> dict:
    """The figures of a finished NB201 BossNAS run directory: tau of the summed block scores, of #params, per
    block, and which ops the accuracy and each block's scores follow (Kendall tau with the count of each op).
    Scores are distances to the evolved population center of the run's ``center_top``/``center_iterations``
    (runs made before those options existed used the center of all cells), or of the values given here."""
    config = json.loads((run_dir / "config.json").read_text())
    space = build_space(config)
    report = json.loads((run_dir / "bossnas.json").read_text())
    members = [run_dir / m["dir"] for m in report["members"]] if report.get("supernets", 1) > 1 else [run_dir]
    searcher = config["searcher"]
    top = center_top if center_top is not None else searcher.get("center_top", 1.0)
    iterations = center_iterations if center_iterations is not None else searcher.get("center_iterations", 0)
    member_blocks = []  # per supernet, per block: the population's distances to that supernet's evolved center
    for member in members:
        tables = [EmbeddingTable.load(member / f"ratings_block{k}.npz") for k in range(3)]
        center = evolved_center(tables, [t.entries for t in tables], top, iterations)
        member_blocks.append([np.array([s[e] for e in t.entries]) for s, t in zip(center.scores, tables)])
    cells = [tuple(path) for _, path in tables[0].entries]
    if len(members) == 1:
        block_scores = member_blocks[0]
        score = np.sum(block_scores, axis=0)
    else:  # several supernets: ranks summed over supernets (as the search does), per block and in total
        block_scores = [rank_sum([blocks[k] for blocks in member_blocks]) for k in range(3)]
        score = rank_sum([np.sum(blocks, axis=0) for blocks in member_blocks])
    from nas.backends.torch.supernets.nb201 import path_to_decisions

    genotypes = [space.make(path_to_decisions(c)) for c in cells]
    acc = np.array([accuracy[space.describe(g)] for g in genotypes])
    params = np.array([arch_cost(space.decode(g))["params"] for g in genotypes])
    tau, tau_p = kendalltau(-score, acc)
    rho, _ = spearmanr(-score, acc)
    ptau, _ = kendalltau(params, acc)
    prho, _ = spearmanr(params, acc)
    gates = report["gates"]
    counts = [op_counts(space.decode(g)) for g in genotypes]
    op_preference = {op: {"accuracy": float(kendalltau([c[op] for c in counts], acc)[0]),
                          "blocks": [float(kendalltau([c[op] for c in counts], -b)[0]) for b in block_scores]}
                     for op in OP_KINDS}
    member_tau = [float(kendalltau(-np.sum(blocks, axis=0), acc)[0]) for blocks in member_blocks]
    return {"kendall_tau": float(tau), "kendall_p": float(tau_p), "spearman": float(rho),
            "supernets": len(members), "supernet_kendall_tau": member_tau,
            "params_kendall_tau": float(ptau), "params_spearman": float(prho),
            "block_kendall_tau": [float(kendalltau(-b, acc)[0]) for b in block_scores],
            "center_top": top, "center_iterations": center.iterations,
            "pred_batch_cos": max(g["pred_batch_cos"] for g in gates),
            "rating_reproducibility": min(g["rating_reproducibility"] for g in gates),
            "gates": gates, "gates_passed": report["gates_passed"], "n_archs": len(cells),
            "found": report["architecture"], "population_best": float(acc.max()),
            "population_median": float(np.median(acc)), "op_preference": op_preference, "run_dir": str(run_dir)}


def print_op_preference(row: dict) -> None:
    """What the table rewards and what each block's scores follow: Kendall tau with each op's live count."""
    pref = row["op_preference"]
    print("  tau with live op count   " + "  ".join(f"{op:>9}" for op in pref))
    print("  accuracy                 " + "  ".join(f"{pref[op]['accuracy']:9.2f}" for op in pref))
    for k in range(len(next(iter(pref.values()))["blocks"])):
        print(f"  block {k + 1} score            " + "  ".join(f"{pref[op]['blocks'][k]:9.2f}" for op in pref))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=64, help="cells rated (sampled with --sample-seed)")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0, help="the search's seed (supernet, views)")
    parser.add_argument("--steps", type=int, nargs="+", default=[300], help="steps per block (several: a curve)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--supernets", type=int, default=1,
                        help="supernets trained (seeds --seed, --seed + 1, ...), cells ranked by summed ranks")
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--cells", type=int, default=1, help="cells per stage of the proxy network")
    parser.add_argument("--limit-train", type=int, default=10000)
    parser.add_argument("--rating-samples", type=int, default=512,
                        help="validation images the ratings average over (two halves for the reproducibility gate)")
    parser.add_argument("--rating-views", type=int, default=1,
                        help="fixed pairs of augmented views per rating image (scores averaged over all pairs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--table", type=Path, default=SHARED / "nb201" / "nb201_combined.csv")
    parser.add_argument("--cifar10", type=Path, default=SHARED / "cifar10")
    parser.add_argument("--run-root", type=Path, default=None, help="put the run directories here")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--analyse", type=Path, nargs="+", default=None, metavar="RUN_DIR",
                        help="no training: print the figures of finished runs (their ratings_block*.npz)")
    parser.add_argument("--center-top", type=float, default=None,
                        help="fraction of the cells the population center evolves to (searcher.center_top)")
    parser.add_argument("--center-iterations", type=int, default=None, help="searcher.center_iterations")
    parser.add_argument("overrides", nargs="*", help="extra search overrides, e.g. searcher.optimizer=adamw")
    args = parser.parse_args()
    accuracy = load_accuracy(args.table)
    if args.analyse:
        for run_dir in args.analyse:
            if not (run_dir / "bossnas.json").is_file() or not (run_dir / "ratings_block0.npz").is_file():
                parser.error(f"{run_dir} is not a finished NB201 BossNAS run directory (no bossnas.json/ratings)")
        for run_dir in args.analyse:
            row = analyse(run_dir, accuracy, args.center_top, args.center_iterations)
            print(f"{run_dir} (center: top {row['center_top']:g} after {row['center_iterations']} iterations): "
                  f"Kendall tau {row['kendall_tau']:.3f}, #params tau {row['params_kendall_tau']:.3f}, "
                  f"per block tau {', '.join(f'{t:.2f}' for t in row['block_kendall_tau'])}"
                  + (f"; each supernet alone {', '.join(f'{t:.2f}' for t in row['supernet_kendall_tau'])}"
                     if row["supernets"] > 1 else ""))
            print_op_preference(row)
        return
    rows = []
    for steps in args.steps:
        row = run_one(args, steps, accuracy)
        rows.append(row)
        print(f"steps/block {steps}: Kendall tau {row['kendall_tau']:.3f} (p={row['kendall_p']:.2g}), Spearman "
              f"{row['spearman']:.3f} over {row['n_archs']} cells; #params tau {row['params_kendall_tau']:.3f}, "
              f"rho {row['params_spearman']:.3f}; per block tau "
              f"{', '.join(f'{t:.2f}' for t in row['block_kendall_tau'])}"
              + (f"; each of the {row['supernets']} supernets alone "
                 f"{', '.join(f'{t:.2f}' for t in row['supernet_kendall_tau'])}" if row["supernets"] > 1 else ""),
              flush=True)
        print(f"  gates: worst prediction batch cos {row['pred_batch_cos']:.3f}, worst reproducibility "
              f"{row['rating_reproducibility']:.3f} ({'passed' if row['gates_passed'] else 'FAILED'}); found "
              f"{row['found_test_accuracy']:.2f}% vs random {row['random_test_accuracy']:.2f}% (population best "
              f"{row['population_best']:.2f}, median {row['population_median']:.2f}); {row['seconds']:.0f} s",
              flush=True)
        print_op_preference(row)
    print(f"proxy: C={args.channels}, {args.cells} cell(s) per stage, CIFAR-10 at 32 px, {args.limit_train} "
          f"training images; table: 200-epoch CIFAR-10 test accuracy of the published network (C=16, N=5)")
    if len(rows) > 1:
        print("| steps/block | Kendall tau | Spearman | pred batch cos | reproducibility | seconds |")
        print("|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['steps_per_block']} | {r['kendall_tau']:.3f} | {r['spearman']:.3f} | "
                  f"{r['pred_batch_cos']:.3f} | {r['rating_reproducibility']:.3f} | {r['seconds']:.0f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        out = dict(rows[-1]) if len(rows) == 1 else {**rows[-1], "curve": rows}
        out.update(sample_seed=args.sample_seed, channels=args.channels, cells_per_stage=args.cells,
                   batch_size=args.batch_size, rating_views=args.rating_views)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
        print(f"-> {args.json}")


if __name__ == "__main__":
    main()
