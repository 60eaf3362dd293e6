"""The BossNAS search loop (torch): train and rate block by block, checkpoint, choose, evaluate.

``supernet.pt`` holds the model, optimizer and random states, the block and step reached; it is
written every ``checkpoint_every`` steps and after each block's rating (with ``ratings_block<k>.npz``),
so a killed search resumes from its last checkpoint. The found and the random architecture are
evaluated once each; a resumed run skips the roles already journalled.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.core.space import SearchSpace
from nas.data.base import load_dataset
from nas.searchers.base import Drive
from nas.searchers.bossnas import selection
from nas.searchers.bossnas._rating import rate_block
from nas.searchers.bossnas._supernet import SupernetConfig
from nas.searchers.bossnas._training import Siamese, ema_momentum, lr_at, make_optimizer, sample_paths, train_step
from nas.searchers.bossnas._views import Views
from nas.spaces.hytra.encoding import BLOCKS, block_candidates, end_level, tokens_to_stages

CHECKPOINT = "supernet.pt"
FORMAT = 1
Path_ = tuple[int, ...]


def supernet_config(space: SearchSpace, zero_init_residual: bool = True) -> SupernetConfig:
    """Supernet sizes from the hytra space's macro settings (widths, stem, dim_head, input, variant)."""
    m = space.macro
    return SupernetConfig(tuple(int(w) for w in m["widths"]), int(m["stem_width"]), int(m["dim_head"]),
                          tuple(int(v) for v in m["input_shape"]), str(m["variant"]), bool(zero_init_residual))


def prefix_choices(scores: Sequence[Mapping], block: int, variant: str, mode: str) -> dict[int, list[Path_]]:
    """Start level -> the chosen paths of the earlier blocks that end there (block 0: the stem, level 0)."""
    if block == 0:
        return {0: []}
    if mode == "greedy":
        _, paths = selection.greedy(scores, end_level)
        return {end_level(paths[-1]): paths}
    reach = selection.frontier(scores, end_level)
    return {lvl: paths for lvl, (_, paths) in sorted(reach.items()) if block_candidates(block, lvl, variant)}


def _fmt_path(path: Sequence[int]) -> str:
    return "".join(str(t) for t in path)


def write_tables(run_dir: Path, table: selection.EmbeddingTable) -> dict:
    """``ratings_block<k>.npz`` (embeddings), ``.csv`` and ``.md`` (score and rank per start level)."""
    k = table.block
    table.save(run_dir / f"ratings_block{k}.npz")
    scores = selection.block_scores(table)
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
    return scores


def _save(run_dir: Path, state: dict[str, Any]) -> None:
    tmp = run_dir / (CHECKPOINT + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, run_dir / CHECKPOINT)


class _Search:
    """One search's state: data, views, model, random streams, tables."""

    def __init__(self, space: SearchSpace, seed: int, options: dict[str, Any], drive: Drive) -> None:
        self.space, self.seed, self.o, self.drive = space, seed, options, drive
        self.run_dir = Path(drive.run_dir)
        dataset = dict(drive.config["dataset"])
        self.data = load_dataset(dataset.pop("name"), **dataset)
        self.cfg = supernet_config(space, options["zero_init_residual"])
        if tuple(self.data.input_shape) != self.cfg.input_shape:
            raise ValueError(f"dataset images {self.data.input_shape} differ from the space input "
                             f"{self.cfg.input_shape}")
        torch.manual_seed(seed)
        self.model = Siamese(self.cfg, options["neck_hidden"], options["neck_dim"])
        train_x = torch.from_numpy(self.data.train_x)
        self.train_x = train_x
        low, high = float(train_x.min()), float(train_x.max())
        fixed = Views(low, high, seed=seed + 1)
        rate_x = torch.from_numpy(self.data.valid_x[:options["rating_samples"]])
        self.view1, self.view2 = fixed.view(rate_x, "A"), fixed.view(rate_x, "B")
        self.bn_batch = fixed.view(train_x[:options["bn_batch"]], "A")
        self.views = Views(low, high, seed=seed)
        self.rng = random.Random(seed)
        self.np_rng = np.random.default_rng(seed)
        self.tables: list[selection.EmbeddingTable] = []
        self.scores: list[dict] = []  # the released per-prefix rating (tables, greedy)
        self.pooled: list[dict] = []  # one center per block (DP, prefixes)
        self.block, self.step = 0, 0
        self.opt_state = None

    def state(self, optimizer: torch.optim.Optimizer | None) -> dict[str, Any]:
        return {"format": FORMAT, "block": self.block, "step": self.step, "model": self.model.state_dict(),
                "optimizer": None if optimizer is None else optimizer.state_dict(),
                "rng": self.rng.getstate(), "np_rng": self.np_rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "views_rng": self.views.gen.get_state(),
                "options": dict(self.o)}

    def restore(self) -> bool:
        path = self.run_dir / CHECKPOINT
        if not path.exists():
            return False
        state = torch.load(path, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.block, self.step = int(state["block"]), int(state["step"])
        self.rng.setstate(state["rng"])
        self.np_rng.bit_generator.state = state["np_rng"]
        torch.set_rng_state(state["torch_rng"])
        self.views.gen.set_state(state["views_rng"])
        self.opt_state = state["optimizer"]
        for k in range(self.block):
            table = selection.EmbeddingTable.load(self.run_dir / f"ratings_block{k}.npz")
            self.tables.append(table)
            self.scores.append(selection.block_scores(table))
            self.pooled.append(selection.block_scores(table, pooled=True))
        where = (f"block {self.block + 1}/{BLOCKS}, step {self.step}" if self.block < BLOCKS
                 else "the supernet is trained and rated")
        self.drive.log(f"bossnas: resuming from {path}: {where}")
        return True

    def train_block(self, block: int) -> None:
        o, log = self.o, self.drive.log
        prefixes = prefix_choices(self.scores if o["prefixes"] == "greedy" else self.pooled, block,
                                  self.cfg.variant, o["prefixes"])
        candidates = {s: block_candidates(block, s, self.cfg.variant) for s in prefixes}
        optimizer = make_optimizer(self.model, block, o["lr"], o["momentum"], o["weight_decay"],
                                   o["optimizer"], o["lars_eta"])
        if self.opt_state is not None:
            optimizer.load_state_dict(self.opt_state)
            self.opt_state = None
        total = o["steps_per_block"]
        levels = ", ".join(f"{s} ({len(c)} paths)" for s, c in candidates.items())
        log(f"bossnas block {block + 1}/{BLOCKS}: {total} steps, start levels {levels}")
        self.model.train()
        began, first = time.perf_counter(), self.step
        while self.step < total:
            step = self.step
            for group in optimizer.param_groups:
                group["lr"] = lr_at(o["lr"], step, total, o["warmup"])
            start = self.rng.choice(sorted(prefixes))
            paths = sample_paths(candidates[start], o["paths_per_step"], self.rng)
            idx = torch.from_numpy(self.np_rng.choice(len(self.train_x), o["batch_size"], replace=False))
            views_a, views_b = self.views.pairs(self.train_x[idx], len(paths))
            optimizer.zero_grad(set_to_none=True)
            loss = train_step(self.model, block, prefixes[start], paths, views_a, views_b)
            optimizer.step()
            self.model.momentum_update(block, ema_momentum(o["base_momentum"], step, total))
            self.step += 1
            if self.step % o["log_every"] == 0 or self.step == total:
                per = (time.perf_counter() - began) / (self.step - first)
                log(f"bossnas block {block + 1}/{BLOCKS} step {self.step}/{total} loss {loss:.4f} "
                    f"({per:.2f} s/step, block ETA {per * (total - self.step):.0f} s)")
            if self.step % o["checkpoint_every"] == 0 and self.step < total:
                _save(self.run_dir, self.state(optimizer))
        began = time.perf_counter()
        table = rate_block(self.model, block, prefixes, candidates, self.view1, self.view2, self.bn_batch)
        self.model.train()
        scores = write_tables(self.run_dir, table)
        self.tables.append(table)
        self.scores.append(scores)
        self.pooled.append(selection.block_scores(table, pooled=True))
        log(f"bossnas block {block + 1}/{BLOCKS}: rated {len(table.entries)} paths in "
            f"{time.perf_counter() - began:.0f} s -> ratings_block{block}.md; {_collapse_note(table)}")
        self.block, self.step = block + 1, 0
        _save(self.run_dir, self.state(None))

    def choose(self) -> dict[str, Any]:
        """Every applicable strategy's architecture and summed scores; the configured one is the answer.

        Greedy uses the released per-prefix scores; the DP sums the pooled ones (one center per block);
        with ``prefixes: greedy`` the tables hold one prefix per block, so only greedy (and the DP, which
        then coincides with it) apply.
        """

        def sums(paths: Sequence[Path_]) -> dict[str, Any]:
            return {"paths": [list(p) for p in paths],
                    "summed_score": selection.summed(self.scores, paths, end_level),
                    "summed_pooled_score": selection.summed(self.pooled, paths, end_level)}

        _, greedy = selection.greedy(self.scores, end_level)
        _, dp = selection.dynamic_program(self.pooled, end_level)
        out: dict[str, Any] = {"strategy": self.o["strategy"], "greedy": sums(greedy), "dp": sums(dp)}
        chosen = {"greedy": greedy, "dp": dp}
        if self.o["prefixes"] == "per_level":
            ev = self.o["evolution"]
            evo = selection.evolve(self.tables, end_level, seed=self.seed, population=int(ev["population"]),
                                   generations=int(ev["generations"]), tournament=int(ev["tournament"]),
                                   mutation_rate=float(ev["mutation_rate"]))
            out["evolution"] = {**sums(evo.arch), "population_fitness": evo.fitness,
                                "initial_best_fitness": evo.initial_best, "history": evo.history}
            chosen["evolution"] = evo.arch
        out["found"] = [t for p in chosen[self.o["strategy"]] for t in p]
        return out


def _block_lines(scores: Mapping, start: int, chosen: Path_, top: int = 5) -> list[str]:
    group = {e: v for e, v in scores.items() if e[0] == start}
    ranked = selection.ranked(group)
    lines = [f"    rank  path  score   (start level {start}, {len(ranked)} paths)"]
    for (_, path), score, rank in ranked:
        if rank <= top or path == tuple(chosen):
            mark = "  <- chosen" if path == tuple(chosen) else ""
            lines.append(f"    {rank:>4}  {_fmt_path(path)}  {score:.4f}{mark}")
    return lines


def _collapse_note(table: selection.EmbeddingTable) -> str:
    """How image-dependent the online predictions are, with a warning when they have collapsed."""
    value = table.collapse()
    note = f"predictions' cosine to their per-path mean {value:.4f}"
    if value > selection.COLLAPSED:
        note += (" - COLLAPSED: the predictor answers every image alike, so these ratings carry no signal "
                 "(train longer per block: searcher.steps_per_block)")
    return note


def run_search(space: SearchSpace, seed: int, options: dict[str, Any], drive: Drive) -> None:
    """The whole BossNAS search of one run (see the module docstring)."""
    began = time.perf_counter()
    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    search = _Search(space, seed, options, drive)
    search.restore()
    for block in range(search.block, BLOCKS):
        search.train_block(block)
    choice = search.choose()
    tokens = choice["found"]
    choice.update(stages=tokens_to_stages(tokens), search_seconds=time.perf_counter() - began)
    (search.run_dir / "bossnas.json").write_text(json.dumps(choice, indent=2) + "\n")
    log = drive.log
    log(f"bossnas found ({choice['strategy']}): tokens {_fmt_path(tokens[:4])}|{_fmt_path(tokens[4:8])}|"
        f"{_fmt_path(tokens[8:12])}|{_fmt_path(tokens[12:])} stages {choice['stages']}")
    log("bossnas summed block scores (per-prefix / pooled centers): " + ", ".join(
        f"{k} {choice[k]['summed_score']:.4f} / {choice[k]['summed_pooled_score']:.4f}"
        for k in ("greedy", "dp", "evolution") if k in choice))
    level = 0
    section = [f"Found ({choice['strategy']}): tokens `{_fmt_path(tokens[:4])}|{_fmt_path(tokens[4:8])}|"
               f"{_fmt_path(tokens[8:12])}|{_fmt_path(tokens[12:])}`, stages `{choice['stages']}`. Distance to "
               "the population center per block (lower is better), top paths and the chosen one; full tables in "
               "`ratings_block<k>.md`.", ""]
    for k in range(BLOCKS):
        path = tuple(tokens[4 * k:4 * k + 4])
        log(f"  block {k + 1}/{BLOCKS} ratings (ratings_block{k}.md):")
        lines = _block_lines(search.scores[k], level, path)
        for line in lines:
            log(line)
        section += [f"Block {k + 1} ({_collapse_note(search.tables[k])}):", "", "```",
                    *(line.strip() for line in lines), "```", ""]
        level = end_level(path)
    drive.add_report_section("BossNAS block ratings", "\n".join(section))
    done = {r.tags.get("role") for r in drive.results}
    found = space.from_tokens(tokens)
    if "found" not in done:
        drive.evaluate(found, {"role": "found", "strategy": choice["strategy"]})
    if "random" not in done:
        drive.evaluate(space.sample(random.Random(f"{seed}/random")), {"role": "random"})
