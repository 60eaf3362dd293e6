"""Zero-cost proxies on NAS-Bench-201: Spearman rho of each proxy with the 200-epoch test accuracy.

Samples ``--archs`` distinct cells with ``--seed``, scores each with every proxy (torch, one thread, one
CIFAR-10 training batch of ``--batch-size`` drawn and weights initialised under ``--weights-seed``) and prints
Spearman's rho with the 200-epoch test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120, with bootstrap 95%
intervals (cells resampled), and the seconds per architecture of each proxy. #params is the baseline a proxy
must beat. Besides the single proxies: Abdelfattah et al.'s ``vote`` (synflow, jacob_cov, snip), a vote that
adds naswot, and rank sums (the sum of each member's rank over the sample). Ensembles are computed once over
the sample; the bootstrap resamples their scores. ``--cache`` stores scores by cell string (and reuses them:
another sample, a longer run, ``benchmarks/nb201_searchers.py --warm-start``). ``--whole-space`` scores one cell
of each of the 6,466 isomorphism classes instead of a sample: the cache then ranks the whole space for the warm
start (synflow alone: about 50 minutes on one loaded core).

    OMP_NUM_THREADS=1 python benchmarks/zero_cost_nb201.py --archs 1000 --cache runs/zc_nb201.npz \
        --json runs/zc_nb201.json
    OMP_NUM_THREADS=1 python benchmarks/zero_cost_nb201.py --archs 200 --cache runs/zc_nb201.npz
    OMP_NUM_THREADS=1 python benchmarks/zero_cost_nb201.py --whole-space --proxies synflow params macs \
        --cache runs/zc_all.npz --json runs/zc_all.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import time
from pathlib import Path

import numpy as np

from nas.core.space import SPACES
from nas.data.base import load_dataset
from nas.evaluators.zero_cost import proxy_scores, vote_scores

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "fisher", "params", "macs")
DATA_FREE = ("synflow", "params", "macs")
ACCURACY = {"cifar10": "cifar10_test_200ep", "cifar100": "cifar100_test_200ep",
            "imagenet16": "imagenet16_test_200ep"}
# name -> (how, members): "vote" counts pairwise majority wins, "ranksum" sums the members' ranks.
ENSEMBLES = {
    "vote": ("vote", ("synflow", "jacob_cov", "snip")),
    "vote+naswot": ("vote", ("synflow", "jacob_cov", "snip", "naswot")),
    "rank(synflow+naswot)": ("ranksum", ("synflow", "naswot")),
    "rank(synflow+naswot+params)": ("ranksum", ("synflow", "naswot", "params")),
    "rank(synflow+naswot+jacob_cov)": ("ranksum", ("synflow", "naswot", "jacob_cov")),
}
# Abdelfattah et al., ICLR 2021 (all 15,625 cells), C10 / C100 / IN16; naswot: Mellor et al. ICML 2021 (~0.78).
REFERENCE = {"synflow": (0.74, 0.76, 0.75), "jacob_cov": (0.73, 0.70, 0.70), "snip": (0.60, 0.64, 0.58),
             "grad_norm": (0.59, 0.64, 0.58), "vote": (0.82, 0.83, 0.81), "naswot": (0.78, 0.78, 0.78)}
GOAL = 0.82  # issue 18: an ensemble at rho >= 0.82 on all three datasets within 1 s per architecture


def load_table(path: Path) -> dict[str, tuple[float, ...]]:
    """NB201 cell string -> 200-epoch test accuracy on (CIFAR-10, CIFAR-100, ImageNet16-120)."""
    with path.open(newline="") as handle:
        return {row["arch_str"]: tuple(float(row[c]) for c in ACCURACY.values()) for row in csv.DictReader(handle)}


def whole_space(table: Path) -> list[str]:
    """One cell string per isomorphism class of the table (6,466), the first of each in table order: the whole
    space as a dedup-ing search sees it."""
    space = SPACES.get("nb201")()
    cells: dict[str, str] = {}
    with table.open(newline="") as handle:
        for row in csv.DictReader(handle):
            cells.setdefault(space.canonical(space.parse(row["arch_str"])), row["arch_str"])
    return list(cells.values())


def sample_cells(count: int, seed: int) -> list[str]:
    """``count`` distinct NB201 cell strings drawn uniformly under ``seed`` (in drawing order)."""
    space = SPACES.get("nb201")()
    rng, cells = random.Random(seed), {}
    while len(cells) < min(count, 5**6):
        cells.setdefault(space.describe(space.sample(rng)), None)
    return list(cells)


class ScoreCache:
    """Scores and seconds per (cell string, proxy), kept in an ``.npz`` (NaN: not computed yet)."""

    def __init__(self, path: Path | None, batch_size: int, seed: int) -> None:
        self.path, self.batch_size, self.seed = path, batch_size, seed
        self.rows: dict[str, dict[str, tuple[float, float]]] = {}
        if path is not None and path.is_file():
            data = np.load(path, allow_pickle=False)
            if int(data["batch_size"]) != batch_size or int(data["seed"]) != seed:
                raise SystemExit(f"{path} holds scores for batch size {int(data['batch_size'])} and seed "
                                 f"{int(data['seed'])}; pass those or another --cache")
            for i, cell in enumerate(data["arch_str"]):
                self.rows[str(cell)] = {p: (float(data[f"zc_{p}"][i]), float(data[f"seconds_{p}"][i]))
                                        for p in PROXIES if f"zc_{p}" in data and np.isfinite(data[f"zc_{p}"][i])}

    def missing(self, cell: str, proxies: tuple[str, ...] = PROXIES) -> list[str]:
        return [p for p in proxies if p not in self.rows.get(cell, {})]

    def save(self) -> None:
        if self.path is None:
            return
        cells = sorted(self.rows)
        arrays = {"arch_str": np.array(cells), "batch_size": np.array(self.batch_size), "seed": np.array(self.seed)}
        for p in PROXIES:
            arrays[f"zc_{p}"] = np.array([self.rows[c].get(p, (np.nan, np.nan))[0] for c in cells])
            arrays[f"seconds_{p}"] = np.array([self.rows[c].get(p, (np.nan, np.nan))[1] for c in cells])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(self.path)


def score_cells(cells: list[str], cache: ScoreCache, data_root: Path, limit_train: int | None,
                proxies: tuple[str, ...] = PROXIES) -> None:
    """Fill the cache for ``cells``: every proxy timed on its own (network built for each, as a search pays)."""
    import torch

    torch.set_num_threads(1)
    todo = [c for c in cells if cache.missing(c, proxies)]
    print(f"{len(cells) - len(todo)} of {len(cells)} cells already scored in the cache; scoring {len(todo)}",
          flush=True)
    if not todo:
        return
    data = load_dataset("cifar10", root=str(data_root), limit_train=limit_train)
    space = SPACES.get("nb201")()
    start, last_save = time.perf_counter(), time.perf_counter()
    for k, cell in enumerate(todo, 1):
        genotype = space.parse(cell)
        row = cache.rows.setdefault(cell, {})
        for proxy in cache.missing(cell, proxies):
            t0 = time.perf_counter()
            value = proxy_scores(genotype, [proxy], None if proxy in DATA_FREE else data, cache.batch_size,
                                 cache.seed)[f"zc_{proxy}"]
            row[proxy] = (value, time.perf_counter() - t0)
        if k % 10 == 0 or k == len(todo):
            elapsed = time.perf_counter() - start
            print(f"  [{k}/{len(todo)}] {elapsed:.0f} s, {elapsed / k:.2f} s per cell ({len(proxies)} proxies)",
                  flush=True)
        if time.perf_counter() - last_save > 60:
            cache.save()
            last_save = time.perf_counter()
    cache.save()


def ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share), 0-based."""
    from scipy.stats import rankdata

    return rankdata(values) - 1.0


def ensemble(how: str, columns: list[np.ndarray]) -> np.ndarray:
    if how == "vote":
        return vote_scores({str(i): c for i, c in enumerate(columns)}).astype(float)
    return np.sum([ranks(c) for c in columns], axis=0)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = ranks(x), ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    return float((rx * ry).sum() / denominator) if denominator else float("nan")


def bootstrap(x: np.ndarray, y: np.ndarray, resamples: int, seed: int) -> tuple[float, float, float]:
    """(rho, 2.5 %, 97.5 %) with the cells resampled with replacement."""
    rng = np.random.default_rng(seed)
    values = [spearman(x[i], y[i]) for i in (rng.integers(0, len(x), len(x)) for _ in range(resamples))]
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return spearman(x, y), float(low), float(high)


def evaluate(cells: list[str], cache: ScoreCache, table: dict[str, tuple[float, ...]],
             resamples: int, seed: int) -> dict[str, dict]:
    """Every proxy's and ensemble's rho (with interval) per dataset and its seconds per architecture."""
    accuracy = np.array([table[c] for c in cells])
    present = [p for p in PROXIES if all(p in cache.rows[c] for c in cells)]
    scores = {p: np.array([cache.rows[c][p][0] for c in cells]) for p in present}
    seconds = {p: float(np.mean([cache.rows[c][p][1] for c in cells])) for p in present}
    rows: dict[str, tuple[np.ndarray, float]] = {p: (scores[p], seconds[p]) for p in present}
    for name, (how, members) in ENSEMBLES.items():
        if all(m in scores for m in members):
            rows[name] = (ensemble(how, [scores[m] for m in members]), sum(seconds[m] for m in members))
    out = {}
    for name, (values, cost) in rows.items():
        rho = {d: bootstrap(values, accuracy[:, j], resamples, seed + j) for j, d in enumerate(ACCURACY)}
        out[name] = {"seconds_per_arch": cost, "rho": {d: r[0] for d, r in rho.items()},
                     "ci95": {d: [r[1], r[2]] for d, r in rho.items()}, "reference": REFERENCE.get(name)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=1000, help="distinct cells sampled")
    parser.add_argument("--whole-space", action="store_true",
                        help="score one cell of every isomorphism class (6,466) instead of a sample")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample of cells")
    parser.add_argument("--weights-seed", type=int, default=0, help="seed of the weights and of the batch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit-train", type=int, default=5000,
                        help="CIFAR-10 training images loaded (the batch is drawn from them); 0: all 50,000")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--table", type=Path, default=SHARED / "nb201" / "nb201_combined.csv")
    parser.add_argument("--cifar10", type=Path, default=SHARED / "cifar10")
    parser.add_argument("--cache", type=Path, default=None, help="npz of scores to reuse and extend")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--proxies", nargs="+", default=list(PROXIES), choices=PROXIES,
                        help="score only these (the table then shows them and the ensembles they make up)")
    args = parser.parse_args()
    cells = whole_space(args.table) if args.whole_space else sample_cells(args.archs, args.seed)
    cache = ScoreCache(args.cache, args.batch_size, args.weights_seed)
    score_cells(cells, cache, args.cifar10, args.limit_train or None, tuple(args.proxies))
    table = load_table(args.table)
    figures = evaluate(cells, cache, table, args.resamples, args.seed)
    print(f"\nNB201, {len(cells)} cells (seed {args.seed}), torch, one thread, one CIFAR-10 batch of "
          f"{args.batch_size}, weights seed {args.weights_seed}: Spearman rho with the 200-epoch test accuracy "
          f"[bootstrap 95 %, {args.resamples} resamples]; reference: Abdelfattah et al. 2021 (all cells)")
    print(f"{'proxy':<32}" + "".join(f"{d:>22}" for d in ACCURACY) + f"{'s/arch':>8}{'reference':>18}")
    for name, f in figures.items():
        cells_text = "".join(f"{f['rho'][d]:>8.3f} [{f['ci95'][d][0]:5.2f},{f['ci95'][d][1]:5.2f}]" for d in ACCURACY)
        reference = "/".join(f"{v:.2f}" for v in f["reference"]) if f["reference"] else ""
        print(f"{name:<32}{cells_text}{f['seconds_per_arch']:>8.2f}{reference:>18}")
    params = figures["params"]["rho"] if "params" in figures else None
    winners = [n for n, f in figures.items() if n not in PROXIES and f["seconds_per_arch"] <= 1.0
               and all(f["rho"][d] >= GOAL for d in ACCURACY)]
    if params is not None:
        beat = [n for n, f in figures.items() if n != "params" and all(f["rho"][d] > params[d] for d in ACCURACY)]
        print(f"\nbeat #params on all three datasets: {', '.join(beat) or 'none'}")
    print(f"ensembles at rho >= {GOAL} on all three within 1 s/arch: {', '.join(winners) or 'none'}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"archs": len(cells), "seed": args.seed, "weights_seed": args.weights_seed,
                                         "batch_size": args.batch_size, "limit_train": args.limit_train,
                                         "resamples": args.resamples, "figures": figures}, indent=2) + "\n")


if __name__ == "__main__":
    main()
