"""The BossNAS search loop (torch): train and rate block by block, checkpoint, choose, evaluate.

The policy lives here; the training and rating are ``nas.evaluators.supernet``'s ``BlockwiseTrainer``.
Two kinds of block-wise space: paths chained through levels (HyTra: each block is trained and rated after
the chosen prefix, the released greedy chaining or per start level), and spaces whose architecture runs one
path in every block (NB201's single cell): there each step's prefix is a random path per earlier block, a
fixed population of ``population`` paths is rated in every block after the same path in the earlier blocks,
and a path's rating is the sum of its block scores (pooled center per block).

``supernet.pt`` holds the trainer state (model, optimizer, random streams), the block and step reached; it
is written every ``checkpoint_every`` steps and after each block's rating (with ``ratings_block<k>.npz``),
so a killed search resumes from its last checkpoint. ``collapse.csv`` holds the collapse gates. The found and
the random architecture are evaluated once each; a resumed run skips the roles already journalled.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch

from nas.backends.torch.supernets.blockwise import BlockSupernet, block_supernet
from nas.core.errors import UserError
from nas.core.space import SearchSpace
from nas.data.base import load_dataset
from nas.evaluators.supernet._trainer import BlockwiseTrainer, BootstrapConfig
from nas.evaluators.supernet.embeddings import PRED_COS_MAX, REPRO_MIN, gate_failures
from nas.searchers.base import Drive
from nas.searchers.bossnas import selection

CHECKPOINT = "supernet.pt"
FORMAT = 2
Path_ = tuple[int, ...]


def prefix_choices(scores: Sequence[Mapping], block: int, net: BlockSupernet, mode: str) -> dict[int, list[Path_]]:
    """Start level -> the chosen paths of the earlier blocks that end there (block 0: the stem, level 0)."""
    if block == 0:
        return {0: []}
    end = lambda path: net.end_level(0, path)  # noqa: E731 - HyTra's end level does not depend on the block
    if mode == "greedy":
        _, paths = selection.greedy(scores, end)
        return {end(paths[-1]): paths}
    reach = selection.frontier(scores, end)
    return {lvl: paths for lvl, (_, paths) in sorted(reach.items()) if lvl in net.block_starts(block)}


def _fmt_path(path: Sequence[int]) -> str:
    return "".join(str(t) for t in path)


def write_tables(run_dir: Path, table: selection.EmbeddingTable, scores: Mapping) -> None:
    """``ratings_block<k>.npz`` (embeddings), ``.csv`` and ``.md`` (score and rank per start level)."""
    k = table.block
    table.save(run_dir / f"ratings_block{k}.npz")
    rows = []
    for start in sorted({s for s, _ in scores}):
        group = {e: v for e, v in scores.items() if e[0] == start}
        rows += [(start, path, score, rank) for (_, path), score, rank in selection.ranked(group)]
    with open(run_dir / f"ratings_block{k}.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["start_level", "path", "score", "rank"])
        writer.writerows([(s, _fmt_path(p), f"{v:.6f}", r) for s, p, v, r in rows])
    lines = [f"# BossNAS ratings, block {k}", "",
             "Distance to the population center (lower is better), per start level.", "",
             "| start level | rank | path | score |", "|---:|---:|---|---:|"]
    lines += [f"| {s} | {r} | `{_fmt_path(p)}` | {v:.4f} |" for s, p, v, r in rows]
    (run_dir / f"ratings_block{k}.md").write_text("\n".join(lines) + "\n")


def _save(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, run_dir / CHECKPOINT)


def trainer_config(options: Mapping[str, Any]) -> BootstrapConfig:
    """The trainer's options out of the searcher's."""
    return BootstrapConfig(**{f.name: options[f.name] for f in fields(BootstrapConfig) if f.name in options})


class _Search:
    """One search's state: the trainer, the tables and the block reached."""

    def __init__(self, space: SearchSpace, seed: int, options: dict[str, Any], drive: Drive,
                 run_dir: Path | None = None, population_seed: int | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        self.space, self.seed, self.o, self.drive = space, seed, options, drive
        self.run_dir = Path(drive.run_dir) if run_dir is None else run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log = drive.log if log is None else log
        dataset = dict(drive.config["dataset"])
        data = load_dataset(dataset.pop("name"), **dataset)
        supernet_options = {} if options.get("zero_init_residual") is None else \
            {"zero_init_residual": options["zero_init_residual"]}
        try:
            probe = block_supernet(space, **supernet_options)
        except TypeError as err:
            raise UserError(f"bossnas: the {space.name} supernet takes no option {sorted(supernet_options)} "
                            f"({err})") from None
        if tuple(data.input_shape) != tuple(probe.input_shape):
            raise UserError(f"dataset images {data.input_shape} differ from the space input {probe.input_shape} "
                            "(set dataset.resolution or the space's input_shape)")
        self.net = probe
        self.shared = probe.shared_path
        offers_fair = probe.fair_paths(0, probe.block_starts(0)[0], random.Random(0)) is not None
        if options["path_sampling"] == "fair" and not offers_fair:
            raise UserError(f"bossnas path_sampling=fair: the {space.name} supernet's paths cannot all be drawn "
                            "fairly (use uniform)")
        self.fair = options["path_sampling"] == "fair" or (options["path_sampling"] == "auto" and offers_fair)
        if self.fair and options["paths_per_step"] != 4:  # 4 = the default, used by uniform sampling only
            raise UserError("bossnas paths_per_step applies to uniform sampling; fair sampling draws one path per "
                            f"choice of each position on {space.name} (set searcher.path_sampling=uniform)")
        self.blocks = probe.blocks
        self.trainer = BlockwiseTrainer(lambda: block_supernet(space, **supernet_options), data,
                                        trainer_config(options), seed, self.run_dir, self.log, probe.resample_necks)
        self.population: list[Path_] = []
        if self.shared:
            pop_seed = population_seed if population_seed is not None else \
                seed if options.get("population_seed") is None else int(options["population_seed"])
            cells = probe.candidates(0, probe.block_starts(0)[0])
            self.population = random.Random(f"bossnas-population/{pop_seed}").sample(cells, options["population"])
        self.tables: list[selection.EmbeddingTable] = []
        self.scores: list[dict] = []  # the released per-prefix rating (tables, greedy)
        self.pooled: list[dict] = []  # one center per block (DP, prefixes, shared paths)
        self.gates: list[dict[str, float]] = []
        self.block = 0

    def state(self) -> dict[str, Any]:
        return {"format": FORMAT, "block": self.block, "trainer": self.trainer.state(), "options": dict(self.o),
                "population": [list(p) for p in self.population], "gates": self.gates}

    def save(self) -> None:
        _save(self.run_dir, self.state())

    def restore(self) -> bool:
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False, map_location="cpu")
        if state.get("format") != FORMAT:
            raise UserError(f"{path} was written by another version of the BossNAS search (format "
                            f"{state.get('format')}, expected {FORMAT}); start a new run")
        self.block = int(state["block"])
        self.trainer.restore(state["trainer"], self.block)
        self.population = [tuple(p) for p in state["population"]]
        self.gates = list(state["gates"])
        for k in range(self.block):
            table = selection.EmbeddingTable.load(self.run_dir / f"ratings_block{k}.npz")
            self._keep(table)
        where = (f"block {self.block + 1}/{self.blocks}, step {self.trainer.step}" if self.block < self.blocks
                 else "the supernet is trained and rated")
        self.log(f"bossnas: resuming from {path}: {where}")
        return True

    def _keep(self, table: selection.EmbeddingTable) -> dict:
        self.tables.append(table)
        scores = selection.block_scores(table)
        self.scores.append(scores)
        self.pooled.append(selection.block_scores(table, pooled=True))
        return scores

    def train_block(self, block: int) -> None:
        net, o, log = self.net, self.o, self.log
        if self.shared:
            start = net.block_starts(block)[0]
            every = net.candidates(block, start)
            candidates = lambda s: every  # noqa: E731
            if o["shared_prefix"] == "greedy":  # released: train and rate after the best path of each earlier block
                best = [min(self.population, key=lambda p, k=k: (self.pooled[k][(net.block_starts(k)[0], p)], p))
                        for k in range(block)]
                sample_prefix = lambda rng: (start, best)  # noqa: E731
                entries = [(start, best, p) for p in self.population]
                where = "after the best path of each earlier block"
            else:
                sample_prefix = lambda rng: (start, [rng.choice(every) for _ in range(block)])  # noqa: E731
                entries = [(start, [p] * block, p) for p in self.population]
                where = "the same path in earlier blocks"
            levels = f"{start} ({len(every)} paths; {len(self.population)} rated, {where})"
        else:
            prefixes = prefix_choices(self.scores if o["prefixes"] == "greedy" else self.pooled, block, net,
                                      o["prefixes"])
            by_start = {s: net.candidates(block, s) for s in prefixes}
            starts = sorted(prefixes)
            sample_prefix = lambda rng: (s := rng.choice(starts), prefixes[s])  # noqa: E731
            candidates = lambda s: by_start[s]  # noqa: E731
            entries = [(s, prefixes[s], p) for s in starts for p in by_start[s]]
            levels = ", ".join(f"{s} ({len(c)} paths)" for s, c in by_start.items())
        fair = self.fair
        draw = "fair (every op of every position once per step)" if fair else f"{o['paths_per_step']} uniform paths"
        log(f"bossnas block {block + 1}/{self.blocks}: {o['steps_per_block']} steps of {draw}, start levels {levels}")
        last = self.trainer.train_block(block, sample_prefix, candidates, self.save, fair)
        began = time.perf_counter()
        table, gates = self.trainer.rate(block, entries, last.get("proj_batch_cos"))
        scores = self._keep(table)
        write_tables(self.run_dir, table, self.pooled[-1] if self.shared else scores)
        self.gates.append(gates)
        log(f"bossnas block {block + 1}/{self.blocks}: rated {len(table.entries)} paths in "
            f"{time.perf_counter() - began:.0f} s -> ratings_block{block}.md; {_gate_note(gates)}")
        self.block = block + 1
        self.trainer.new_block()
        self.save()

    def choose(self) -> dict[str, Any]:
        """Every applicable strategy's architecture and summed scores; the configured one is the answer.

        Shared-path spaces: the population member with the least summed pooled score. Chained spaces:
        greedy uses the released per-prefix scores; the DP sums the pooled ones (one center per block);
        with ``prefixes: greedy`` the tables hold one prefix per block, so only greedy (and the DP, which
        then coincides with it) apply.
        """
        if self.shared:
            self.recenter()
            totals = {p: self.path_score(p) for p in self.population}
            best = min(self.population, key=lambda p: (totals[p], p))
            members = [list(self.population[i]) for i in self.center.members]
            return {"strategy": "population", "population": {"paths": [list(best)] * self.blocks,
                                                             "summed_score": totals[best]},
                    "center": {"top": self.o["center_top"], "iterations": self.center.iterations,
                               "members": members},
                    "found": [list(best)] * self.blocks}
        end = lambda path: self.net.end_level(0, path)  # noqa: E731

        def sums(paths: Sequence[Path_]) -> dict[str, Any]:
            return {"paths": [list(p) for p in paths],
                    "summed_score": selection.summed(self.scores, paths, end),
                    "summed_pooled_score": selection.summed(self.pooled, paths, end)}

        _, greedy = selection.greedy(self.scores, end)
        _, dp = selection.dynamic_program(self.pooled, end)
        out: dict[str, Any] = {"strategy": self.o["strategy"], "greedy": sums(greedy), "dp": sums(dp)}
        chosen = {"greedy": greedy, "dp": dp}
        if self.o["prefixes"] == "per_level":
            ev = self.o["evolution"]
            evo = selection.evolve(self.tables, end, seed=self.seed, population=int(ev["population"]),
                                   generations=int(ev["generations"]), tournament=int(ev["tournament"]),
                                   mutation_rate=float(ev["mutation_rate"]))
            out["evolution"] = {**sums(evo.arch), "population_fitness": evo.fitness,
                                "initial_best_fitness": evo.initial_best, "history": evo.history}
            chosen["evolution"] = evo.arch
        out["found"] = [list(p) for p in chosen[self.o["strategy"]]]
        return out

    def recenter(self) -> None:
        """Shared paths: rate every block against the population center evolved over all blocks
        (``center_top``/``center_iterations``) and rewrite the block tables with those scores."""
        starts = [self.net.block_starts(k)[0] for k in range(self.blocks)]
        self.center = selection.evolved_center(self.tables, [[(s, p) for p in self.population] for s in starts],
                                               self.o["center_top"], self.o["center_iterations"])
        for table, scores in zip(self.tables, self.center.scores):
            write_tables(self.run_dir, table, scores)

    def path_score(self, path: Path_) -> float:
        """A shared path's rating: the sum over blocks of its distances to the evolved center."""
        start = lambda k: self.net.block_starts(k)[0]  # noqa: E731
        return float(sum(self.center.scores[k][(start(k), tuple(path))] for k in range(self.blocks)))


def _block_lines(scores: Mapping, start: int, chosen: Path_, top: int = 5) -> list[str]:
    group = {e: v for e, v in scores.items() if e[0] == start}
    ranked = selection.ranked(group)
    lines = [f"    rank  path  score   (start level {start}, {len(ranked)} paths)"]
    for (_, path), score, rank in ranked:
        if rank <= top or path == tuple(chosen):
            mark = "  <- chosen" if path == tuple(chosen) else ""
            lines.append(f"    {rank:>4}  {_fmt_path(path)}  {score:.4f}{mark}")
    return lines


def _gate_note(gates: Mapping[str, float]) -> str:
    return (f"gates: prediction batch cos {gates['pred_batch_cos']:.3f}, target batch cos "
            f"{gates['target_batch_cos']:.3f}, spread {gates['rating_spread']:.4f}, reproducibility (Spearman "
            f"between two halves of the rating images) {gates['rating_reproducibility']:.3f}")


def _arch_text(paths: Sequence[Sequence[int]]) -> str:
    return "|".join(_fmt_path(p) for p in paths)


def run_search(space: SearchSpace, seed: int, options: dict[str, Any], drive: Drive) -> None:
    """The whole BossNAS search of one run (see the module docstring)."""
    began = time.perf_counter()
    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    if int(options.get("supernets", 1)) > 1:
        _run_ensemble(space, seed, options, drive, began)
        return
    search = _Search(space, seed, options, drive)
    search.restore()
    for block in range(search.block, search.blocks):
        search.train_block(block)
    choice = search.choose()
    paths = [tuple(p) for p in choice["found"]]
    found = search.net.genotype(space, paths)
    failures = [f for k, g in enumerate(search.gates) for f in gate_failures(k, g)]
    choice.update(architecture=space.describe(found),
                  search_seconds=time.perf_counter() - began, gates=search.gates, gates_passed=not failures)
    (search.run_dir / "bossnas.json").write_text(json.dumps(choice, indent=2) + "\n")
    log = drive.log
    log(f"bossnas found ({choice['strategy']}): paths {_arch_text(paths)} = {choice['architecture']}")
    if not search.shared:
        log("bossnas summed block scores (per-prefix / pooled centers): " + ", ".join(
            f"{k} {choice[k]['summed_score']:.4f} / {choice[k]['summed_pooled_score']:.4f}"
            for k in ("greedy", "dp", "evolution") if k in choice))
    section = [f"Found ({choice['strategy']}): paths `{_arch_text(paths)}` = `{choice['architecture']}`. "
               "Distance to the population center per block (lower is better), top paths and the chosen one; "
               "full tables in `ratings_block<k>.md`, collapse gates per step in `collapse.csv`.", ""]
    if search.shared:
        note = _center_note(choice["center"], len(search.population))
        log(f"bossnas population center: {note}")
        section += [f"Population center: {note}.", ""]
    for k in range(search.blocks):
        scores = search.center.scores[k] if search.shared else search.scores[k]
        start = search.net.block_starts(k)[0] if search.shared else \
            (0 if k == 0 else search.net.end_level(k - 1, paths[k - 1]))
        log(f"  block {k + 1}/{search.blocks} ratings (ratings_block{k}.md):")
        lines = _block_lines(scores, start, paths[k])
        for line in lines:
            log(line)
        section += [f"Block {k + 1} ({_gate_note(search.gates[k])}):", "", "```",
                    *(line.strip() for line in lines), "```", ""]
    _finish(space, seed, drive, found, choice["strategy"], failures, section)


def _center_note(center: Mapping[str, Any], population: int) -> str:
    return (f"the center of the best {len(center['members'])} of {population} rated paths after "
            f"{center['iterations']} recentering(s) (center_top {center['top']})" if center["iterations"]
            else f"the center of all {population} rated paths")


def _finish(space: SearchSpace, seed: int, drive: Drive, found, strategy: str, failures: Sequence[str],
            section: list[str]) -> None:
    """The gates' verdict in the report and the log, then the found and a random architecture evaluated."""
    # the gates gauge the embeddings: checked against stand-alone training, HyTra's released settings fail them
    # and still rank (docs/benchmarks.md), so a failure is reported as what it is, not as a lost ranking
    verdict = ("collapse gates failed (they gauge the embeddings, not the ranking: docs/searchers/bossnas.md): "
               + "; ".join(failures)) if failures else \
        "collapse gates passed in every block (prediction batch cosine < " \
        f"{PRED_COS_MAX}, reproducibility >= {REPRO_MIN})"
    section.append(verdict[0].upper() + verdict[1:] + ".")
    drive.add_report_section("BossNAS block ratings", "\n".join(section))
    done = {r.tags.get("role") for r in drive.results}
    if "found" not in done:
        drive.evaluate(found, {"role": "found", "strategy": strategy})
    if "random" not in done:
        drive.evaluate(space.sample(random.Random(f"{seed}/random")), {"role": "random"})
    drive.log(f"bossnas: {verdict}")


def _run_ensemble(space: SearchSpace, seed: int, options: dict[str, Any], drive: Drive, began: float) -> None:
    """``supernets`` > 1 (spaces with one path in every block): train and rate that many supernets on the same
    population, supernet m with seed ``seed + m`` in ``supernet<m>/`` (each resumable on its own), rank the
    population by each one's summed distance to its evolved center, and choose the least sum of ranks. Why:
    on NB201 the ranking varies more between supernets of different seeds than any rating rule corrects;
    ranks (not distances, whose scales differ between supernets) average that variance away."""
    count = int(options["supernets"])
    run_dir = Path(drive.run_dir)
    pop_seed = seed if options.get("population_seed") is None else int(options["population_seed"])
    members: list[_Search] = []
    for m in range(count):
        tag = f"supernet {m + 1}/{count}"
        member = _Search(space, seed + m, options, drive, run_dir=run_dir / f"supernet{m}", population_seed=pop_seed,
                         log=lambda line, tag=tag: drive.log(f"[{tag}] {line}"))
        member.restore()
        for block in range(member.block, member.blocks):
            member.train_block(block)
        member.recenter()
        member.trainer = None  # its tables and center are all the choice needs; free the model
        members.append(member)
    population = members[0].population
    totals = [[member.path_score(p) for p in population] for member in members]
    ranks = selection.rank_sum(totals)
    order = sorted(range(len(population)), key=lambda i: (ranks[i], population[i]))
    best = population[order[0]]
    blocks = members[0].blocks
    found = members[0].net.genotype(space, [best] * blocks)
    failures = [f"supernet {m + 1}: {f}" for m, member in enumerate(members)
                for k, g in enumerate(member.gates) for f in gate_failures(k, g)]
    member_rows = []
    for m, (member, total) in enumerate(zip(members, totals)):
        own = population[int(min(range(len(population)), key=lambda i: (total[i], population[i])))]
        member_rows.append({"seed": seed + m, "dir": f"supernet{m}", "found": list(own),
                            "summed_score": float(min(total)), "gates": member.gates,
                            "center": {"top": options["center_top"], "iterations": member.center.iterations,
                                       "members": [list(population[i]) for i in member.center.members]}})
    choice = {"strategy": "population", "supernets": count, "members": member_rows,
              "rank_sum": {"paths": [list(p) for p in population], "rank_sums": [float(r) for r in ranks]},
              "found": [list(best)] * blocks, "architecture": space.describe(found),
              "search_seconds": time.perf_counter() - began,
              "gates": [g for member in members for g in member.gates], "gates_passed": not failures}
    (run_dir / "bossnas.json").write_text(json.dumps(choice, indent=2) + "\n")
    log = drive.log
    log(f"bossnas found (least sum of ranks over {count} supernets): path {_fmt_path(best)} = "
        f"{choice['architecture']}")
    section = [f"Found: path `{_fmt_path(best)}` = `{choice['architecture']}`, the least sum of its ranks over "
               f"{count} supernets (seeds {seed}..{seed + count - 1}, each in `supernet<m>/` with its own "
               "`ratings_block<k>.md` and `collapse.csv`); each supernet ranks the population by the summed "
               "distance to its evolved center (rank 1 = closest).", ""]
    for m, (member, row) in enumerate(zip(members, member_rows)):
        note = _center_note(row["center"], len(population))
        section.append(f"- supernet {m + 1} (seed {row['seed']}): its own best `{_fmt_path(row['found'])}`; "
                       f"population center: {note}; "
                       + "; ".join(f"block {k + 1}: {_gate_note(g)}" for k, g in enumerate(member.gates)))
    member_ranks = [selection.rank_sum([t]) for t in totals]
    header = "rank  path  rank sum  " + "  ".join(f"s{m + 1}" for m in range(count))
    lines = [header] + [f"{r + 1:>4}  {_fmt_path(population[i])}  {ranks[i]:8.1f}  "
                        + "  ".join(f"{mr[i]:>3.0f}" for mr in member_ranks) for r, i in enumerate(order[:5])]
    for line in lines:
        log("    " + line)
    section += ["", "```", *lines, "```", ""]
    _finish(space, seed, drive, found, "population", failures, section)
