"""The zero-cost warm start of a search: a proxy's best candidates of a random pool are proposed first.

``searcher.warm_start=zc_<proxy>`` draws ``warm_start_pool`` distinct candidates (canonical forms) under the run's
seed, scores them with the proxy (torch, the run's dataset, one batch, weights and batch seeded by the run's seed,
so the pool and its scores are a function of the config) and hands the ``warm_start_top`` best to the searcher
as its first proposals. Several proxies joined by ``+`` (``zc_synflow+zc_naswot``) rank the pool by the sum of
their ranks in it. ``warm_start_scores`` reads the pool from a CSV of precomputed scores instead (columns
``arch`` (the space's text form, where it has ``parse``) or ``genotype`` (JSON), and ``zc_<proxy>``).
The scored pool is written to ``warm_start.csv`` in the run directory; a resumed run reads it back, so it never
re-scores (nor scores differently).
"""

from __future__ import annotations

import csv
import json
import random
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.space import SearchSpace
from nas.evaluators.zero_cost.catalog import PROXIES, VOTE, VOTE_MEMBERS, expand
from nas.evaluators.zero_cost.scorer import ProxyScorer

WARM_START_FILE = "warm_start.csv"
WARM_KEYS = ("warm_start", "warm_start_pool", "warm_start_top", "warm_start_scores")


def proxy_names(metric: object, key: str = "searcher.warm_start") -> list[str]:
    """``zc_synflow`` (or ``synflow``) -> ``["synflow"]``, ``zc_synflow+zc_naswot`` -> both (a rank sum);
    anything else is a one-line ``UserError``."""
    names = []
    for text in str(metric).split("+"):
        name = text[3:] if text.startswith("zc_") else text
        if name not in PROXIES:
            raise UserError(f"{key}: unknown proxy {text!r}; valid choices: {', '.join('zc_' + p for p in PROXIES)} "
                            "(several joined by + rank by the sum of their ranks)")
        names.append(name)
    if len(names) > 1 and VOTE in names:
        raise UserError(f"{key}: zc_vote cannot join a rank sum; give its members instead")
    return names


def label(names: list[str]) -> str:
    """The column name of a warm-start score: ``zc_synflow`` or ``zc_synflow+zc_naswot``."""
    return "+".join(f"zc_{name}" for name in names)


def check_warm_start(searcher: Mapping[str, Any], supported: bool) -> None:
    """Validate the warm-start options of ``searcher`` (its config section) before anything runs."""
    if searcher.get("warm_start") is None:
        return
    if not supported:
        raise UserError(f"searcher {searcher.get('name')!r} has no warm start (searcher.warm_start); "
                        "supported: random, evolution, optuna, predictor_evolution")
    proxy_names(searcher["warm_start"])
    pool, top = searcher.get("warm_start_pool", 1000), searcher.get("warm_start_top", 10)
    for key, value in (("warm_start_pool", pool), ("warm_start_top", top)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"searcher.{key} must be a positive integer, got {value!r}")
    if top > pool:
        raise UserError(f"searcher.warm_start_top ({top}) exceeds searcher.warm_start_pool ({pool})")
    scores = searcher.get("warm_start_scores")
    if scores is not None and not Path(str(scores)).expanduser().is_file():
        raise UserError(f"searcher.warm_start_scores: no such file: {scores}")


def pool_scores(scorer: ProxyScorer, pool: list[Genotype], names: list[str]) -> np.ndarray:
    """The proxy's score of each pool genotype; ``vote`` counts pairwise majority wins within the pool, several
    proxies sum their ranks within the pool (average ranks for ties)."""
    from scipy.stats import rankdata

    from nas.evaluators.zero_cost.vote import vote_scores

    rows = [scorer(g, names) for g in pool]
    if names == [VOTE]:
        return vote_scores({m: np.array([r[m] for r in rows]) for m in VOTE_MEMBERS}).astype(float)
    if len(names) == 1:
        return np.array([r[names[0]] for r in rows], dtype=float)
    return np.sum([rankdata([r[name] for r in rows]) for name in names], axis=0)


def draw_pool(space: SearchSpace, size: int, seed: int) -> list[Genotype]:
    """``size`` candidates of distinct canonical forms, drawn uniformly under ``seed`` (fewer in a small space)."""
    rng, pool, tries = random.Random(f"{seed}/warm_start"), {}, 0
    while len(pool) < size and tries < 20 * size:
        genotype = space.sample(rng)
        pool.setdefault(space.canonical(genotype), genotype)
        tries += 1
    return list(pool.values())


def read_scores(path: Path, space: SearchSpace, names: list[str]) -> dict[str, tuple[Genotype, dict[str, float]]]:
    """canonical form -> (genotype, {proxy: score}) from a CSV of precomputed scores (see module docstring)."""
    needed = expand(names)
    out = {}
    with path.expanduser().open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields = set(reader.fieldnames or ())
        lacking = [f"zc_{p}" for p in needed if f"zc_{p}" not in fields]
        if lacking or not fields & {"arch", "genotype"}:
            raise UserError(f"searcher.warm_start_scores: {path} lacks column(s) "
                            f"{', '.join(lacking or ['arch or genotype'])}")
        for row in reader:
            if row.get("genotype"):
                genotype = space.make(Genotype.from_json(json.loads(row["genotype"])).values)
            elif hasattr(space, "parse"):
                genotype = space.parse(row["arch"])
            else:
                raise UserError(f"searcher.warm_start_scores: space {space.name!r} cannot parse 'arch'; "
                                "give a 'genotype' column (JSON)")
            out[space.canonical(genotype)] = (genotype, {p: float(row[f"zc_{p}"]) for p in needed})
    return out


def warm_start(config: Mapping[str, Any], space: SearchSpace, run_dir: Path, scorer: ProxyScorer,
               log: Callable[[str], None] | None = None) -> list[Genotype]:
    """The warm-start candidates of the run, best first: read from ``warm_start.csv`` when the run directory
    holds one (resume), else drawn, scored and written there."""
    options = config["searcher"]
    names = proxy_names(options["warm_start"])
    top = int(options.get("warm_start_top") or 10)
    file = run_dir / WARM_START_FILE
    if file.is_file():
        with file.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [Genotype.from_json(json.loads(row["genotype"])) for row in rows[:top]]
    seed, size = int(config["seed"]), int(options.get("warm_start_pool") or 1000)
    if options.get("warm_start_scores"):
        table = read_scores(Path(str(options["warm_start_scores"])), space, names)
        keys = sorted(table)
        random.Random(f"{seed}/warm_start").shuffle(keys)
        pool = [table[k][0] for k in keys[:size]]
        scorer.table.update({k: table[k][1] for k in keys[:size]})
    else:
        pool = draw_pool(space, size, seed)
    start = time.perf_counter()
    scores = pool_scores(scorer, pool, names)
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))
    with file.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["rank", label(names), "arch", "genotype"])
        for rank, i in enumerate(order):
            writer.writerow([rank, repr(float(scores[i])), space.describe(pool[i]), pool[i].dumps()])
    if log is not None:
        log(f"warm start: {len(pool)} candidates scored by {label(names)} in {time.perf_counter() - start:.1f} s "
            f"({scorer.computed} computed); the best {min(top, len(pool))} go first ({file.name})")
    return [pool[i] for i in order[:top]]


def stderr_log(enabled: bool) -> Callable[[str], None]:
    """Print information lines to stderr when ``enabled`` (progress on)."""
    return (lambda message: print(message, file=sys.stderr, flush=True)) if enabled else (lambda message: None)
