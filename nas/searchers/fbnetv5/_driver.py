"""The body of ``searcher=fbnetv5`` (torch side, private so that discovering searchers does not load torch).

``Driver.run``: build the multitask data (embedded digit canvases by default, or a pseudo-labelled dataset
written by ``nas.data.multitask.pseudo_label``), adapt the space's macro settings to it (input shape,
resolution, classes), train the supernet and the per-task distributions, then

- write ``keep_probs.csv`` (every task's keep probability per block) and ``keep_probs.md`` (the mean
  per resolution path, over the blocks that reach the task's heads) into the run directory;
- write ``architectures.json``: per task, the most probable mask and ``samples`` masks drawn from the
  task's distribution, each as a single-task genotype rebuilt at ``final_size`` (default: the search
  size) with its parameters and MACs;
- train each task's most probable architecture (decoded single-task network at the search size) for
  ``final_steps`` and a random architecture of equal cost (uniform masks, MACs within ``cost_tolerance``;
  the closest of ``random_tries`` draws otherwise) with the same budget, and record both through
  ``drive.record`` with tags ``task`` and ``role`` (``found``/``random``); metrics in percent.

Resume: the supernet, optimiser, distributions and random streams are saved to ``fbnetv5_state.pt``
every ``checkpoint_every`` steps and at the end of the search; a resumed run (``nas search resume=...``)
continues from the last checkpoint (steps after it are redone) and skips final trainings already
recorded in the journal.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nas.core.errors import UserError
from nas.core.genotype import Genotype
from nas.core.result import Result, TrialState
from nas.data.multitask import MultitaskData, load_multitask, make_canvases
from nas.evaluators.multitask._batches import METRIC, SHORT
from nas.evaluators.multitask._train import train_task
from nas.searchers.base import Drive
from nas.searchers.fbnetv5._search import MultitaskSearch, SearchConfig
from nas.spaces.fbnet.plan import fragment_cost
from nas.spaces.fbnet.supernet import Slot, block_slots

STATE_FILE = "fbnetv5_state.pt"
PATH_NAMES = ("1/4", "1/8", "1/16", "1/32")


def load_data(options: Mapping[str, Any], seed: int) -> MultitaskData:
    """The multitask data of the ``data`` option: ``path`` (a pseudo-labelled dataset) or canvases."""
    options = dict(options)
    path = options.pop("path", None)
    if path:
        return load_multitask(path, valid_fraction=float(options.get("valid_fraction", 0.2)), seed=seed)
    options.pop("valid_fraction", None)
    for key in ("scale", "main_scale"):
        if key in options:
            options[key] = tuple(options[key])
    try:
        return make_canvases(seed=seed, **options)  # type: ignore[arg-type]
    except TypeError as exc:
        raise UserError(f"fbnetv5: bad data option ({exc})") from None


class Driver:
    """One run of the search for a configured ``FBNetV5Searcher`` (its options, space and seed)."""

    OPTIONS = ("space", "seed", "tasks", "search_options", "data_options", "samples", "final_size", "final",
               "cost_tolerance", "random_tries", "log_every", "checkpoint_every")

    def __init__(self, searcher: Any) -> None:
        for name in self.OPTIONS:
            setattr(self, name, getattr(searcher, name))

    # --- the space adapted to the data ------------------------------------------------------------
    def adapted_space(self, data: MultitaskData, tasks: Sequence[str]) -> Any:
        """The run's fbnetv5 space with input shape, resolution and classes taken from the data."""
        if self.space.name != "fbnetv5":
            raise UserError(f"searcher fbnetv5 needs space=fbnetv5, not {self.space.name!r}")
        c, h, w = data.input_shape
        if h != w:
            raise UserError(f"fbnetv5: images must be square, got {h}x{w}")
        macro = {**self.space.macro, "input_shape": [c, h, w], "resolution": h, "num_classes": data.num_classes,
                 "seg_classes": data.num_classes + 1, "det_classes": data.num_classes, "tasks": list(tasks)}
        return type(self.space)(self.space.preset, **macro)

    def genotype(self, space: Any, task: str, mask: torch.Tensor, decisions: Sequence[str]) -> Genotype:
        """The single-task genotype of ``mask`` (decision order of the search plan) at the search size."""
        single = type(space)(space.preset, **{**space.macro, "tasks": [task]})
        values = {d: int(v) for d, v in zip(decisions, mask.tolist())}
        return single.make({label: values.get(label, 1) for label in single.spec().labels})

    def at_final_size(self, space: Any, genotype: Genotype) -> Genotype:
        if not self.final_size:
            return genotype
        return space.transfer(genotype, preset=self.final_size, tasks=genotype.macro_dict["tasks"])

    # --- the run --------------------------------------------------------------------------------
    def run(self, drive: Drive) -> None:
        data = load_data(self.data_options, self.seed)
        tasks = self.tasks or list(self.space.macro["tasks"])
        space = self.adapted_space(data, tasks)
        tasks = list(space.macro["tasks"])
        search = MultitaskSearch(space.plan(), data, tasks, SearchConfig(seed=self.seed, **self.search_options))
        drive.log(f"fbnetv5: {len(search.plan.decisions)} gated blocks, tasks {', '.join(tasks)}, data {data.name} "
                  f"({len(data.train)} train / {len(data.valid)} valid, {data.input_shape[1]} px) on {search.device}")
        state_file = Path(drive.run_dir) / STATE_FILE
        if state_file.is_file():
            search.load_state_dict(torch.load(state_file, map_location="cpu", weights_only=False))
            drive.log(f"fbnetv5: resumed the search at step {search.step_count} from {state_file}")

        def checkpoint() -> None:
            torch.save(search.state_dict(), state_file.with_suffix(".tmp"))
            state_file.with_suffix(".tmp").replace(state_file)

        search.run(drive.log, self.log_every, checkpoint, self.checkpoint_every)
        checkpoint()
        write_keep_probs(Path(drive.run_dir), search, tasks, space.slots())
        keep_table = (Path(drive.run_dir) / "keep_probs.md").read_text().rstrip()
        drive.log(keep_table)
        drive.add_report_section("Keep probabilities per task and resolution path", keep_table)
        found = self.write_architectures(Path(drive.run_dir), space, search, tasks)
        for t, task in enumerate(tasks):
            genotype = found[task]
            cost = fragment_cost(space.decode(genotype))
            paths = ", ".join(f"{k} {v}" for k, v in _kept_blocks(genotype, search.cost.reach[t],
                                                                   search.plan.decisions).items())
            kept = " ".join(d for d, r in zip(search.plan.decisions, search.cost.reach[t].tolist())
                            if r and genotype[d])
            drive.log(f"fbnetv5: {task} keeps {paths} ({cost['macs'] / 1e6:.2f} M MACs, "
                      f"{cost['params'] / 1e3:.1f} k params): {kept or 'no gated block'}")
        self.final_training(drive, space, search, data, tasks, found)
        drive.add_report_section("Found vs random of equal MACs, per task", found_vs_random_table(drive.results, tasks))

    def write_architectures(self, run_dir: Path, space: Any, search: MultitaskSearch,
                            tasks: Sequence[str]) -> dict[str, Genotype]:
        """``architectures.json``: per task its most probable and sampled masks at the chosen size."""
        decisions = search.plan.decisions
        generator = torch.Generator().manual_seed(self.seed + 1)
        best = search.dists.most_probable()
        found, table = {}, {}
        for t, task in enumerate(tasks):
            found[task] = self.genotype(space, task, best[t], decisions)
            rows = []
            masks = [best[t]] + [(torch.rand(len(decisions), generator=generator) < search.dists.probs[t]).float()
                                 for _ in range(self.samples)]
            for k, mask in enumerate(masks):
                genotype = self.at_final_size(space, self.genotype(space, task, mask, decisions))
                rows.append({"kind": "most_probable" if k == 0 else "sample", "genotype": genotype.to_json(),
                             "kept": _kept_blocks(genotype, search.cost.reach[t], decisions),
                             **fragment_cost(space.decode(genotype))})
            table[task] = rows
        (run_dir / "architectures.json").write_text(json.dumps(table, indent=2) + "\n")
        return found

    def final_training(self, drive: Drive, space: Any, search: MultitaskSearch, data: MultitaskData,
                       tasks: Sequence[str], found: Mapping[str, Genotype]) -> None:
        """Train each found architecture and a random one of equal cost; record both."""
        done = {(r.tags.get("task"), r.tags.get("role")) for r in drive.results}
        rng = torch.Generator().manual_seed(self.seed + 2)
        decisions = search.plan.decisions
        for t, task in enumerate(tasks):
            target = float(search.cost.macs(search.dists.most_probable()[t])[t])
            random_mask = equal_cost_mask(search, t, target, self.cost_tolerance, self.random_tries, rng)
            pairs = (("found", found[task]), ("random", self.genotype(space, task, random_mask, decisions)))
            for role, genotype in pairs:
                if (task, role) in done:
                    continue
                arch = space.decode(genotype)
                cost = fragment_cost(arch)
                drive.log(f"fbnetv5: training the {role} {task} architecture ({cost['macs'] / 1e6:.2f} M MACs, "
                          f"{cost['params'] / 1e3:.1f} k params, {self.final['steps']} steps)")
                metrics = train_task(arch, task, data, seed=self.seed, device=self.search_options["device"],
                                     **self.final)
                metrics.update(cost)
                drive.record(Result(trial=-1, genotype=genotype, state=TrialState.COMPLETE, metrics=metrics,
                                    seconds=metrics["train_seconds"], seed=self.seed,
                                    tags={"task": task, "role": role}))
                drive.log(f"fbnetv5: {task} {role}: {METRIC[task]} {metrics[METRIC[task]]:.2f}")


def found_vs_random_table(results: Sequence[Result], tasks: Sequence[str]) -> str:
    """Markdown: per task the found and the random network's metric and MACs, with the one-seed caveat."""
    by_role = {(r.tags.get("task"), r.tags.get("role")): r for r in results}
    lines = ["| task | metric | found | random | MACs found / random |", "|---|---|---:|---:|---:|"]
    for task in tasks:
        found, rand = by_role.get((task, "found")), by_role.get((task, "random"))
        if found is None or rand is None:
            continue
        metric = METRIC[task]
        lines.append(f"| {task} | {metric} | {found.metrics[metric]:.2f} | {rand.metrics[metric]:.2f} | "
                     f"{found.metrics['macs'] / 1e6:.2f} M / {rand.metrics['macs'] / 1e6:.2f} M |")
    return "\n".join(lines) + (
        "\n\nOne search seed and one training of each network: differences of a few points are within the noise "
        "of\nthese short trainings. `benchmarks/fbnetv5_found_vs_random.py` compares them over search seeds, "
        "random\nnetworks and training seeds (docs/searchers/fbnetv5.md).")


def equal_cost_mask(search: MultitaskSearch, task: int, target: float, tolerance: float, tries: int,
                    generator: torch.Generator) -> torch.Tensor:
    """A uniform random mask whose task MACs are within ``tolerance`` of ``target`` (else the closest drawn)."""
    best, gap = None, math.inf
    for _ in range(tries):
        mask = (torch.rand(len(search.plan.decisions), generator=generator) < 0.5).float()
        off = abs(float(search.cost.macs(mask)[task]) - target) / max(target, 1.0)
        if off < gap:
            best, gap = mask, off
        if off <= tolerance:
            break
    assert best is not None
    return best


def _kept_blocks(genotype: Genotype, reach: torch.Tensor, decisions: Sequence[str]) -> dict[str, str]:
    """Per resolution path, the kept/total count of the blocks that reach the task's heads."""
    values = genotype.values
    live = {d for d, r in zip(decisions, reach.tolist()) if r}
    out = {}
    for path, name in enumerate(PATH_NAMES):
        labels = [s.label for s in block_slots(genotype.macro_dict) if s.path == path and s.label in live]
        if labels:
            out[name] = f"{sum(int(values[label]) for label in labels)}/{len(labels)}"
    return out


def keep_prob_rows(search: MultitaskSearch, tasks: Sequence[str], slots: Sequence[Slot]) -> list[dict[str, Any]]:
    """One row per (task, block): stage, path, whether it reaches the task, keep probability."""
    where = {s.label: s for s in slots}
    probs = search.dists.probs
    return [{"task": task, "block": label, "stage": where[label].stage, "path": where[label].path,
             "reaches_task": int(search.cost.reach[t, b]), "keep_prob": round(float(probs[t, b]), 4)}
            for t, task in enumerate(tasks) for b, label in enumerate(search.plan.decisions)]


def path_table(rows: Sequence[Mapping[str, Any]], tasks: Sequence[str]) -> str:
    """Markdown: per task, the mean keep probability of each resolution path's blocks that reach it."""
    lines = ["| task | " + " | ".join(f"path {p} ({n})" for p, n in enumerate(PATH_NAMES)) + " |",
             "|---|" + "---:|" * len(PATH_NAMES)]
    for task in tasks:
        cells = []
        for path in range(len(PATH_NAMES)):
            values = [r["keep_prob"] for r in rows if r["task"] == task and r["path"] == path and r["reaches_task"]]
            cells.append(f"{np.mean(values):.2f} ({len(values)})" if values else "-")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_keep_probs(run_dir: Path, search: MultitaskSearch, tasks: Sequence[str], slots: Sequence[Slot]) -> None:
    """``keep_probs.csv`` (per block) and ``keep_probs.md`` (per resolution path) in ``run_dir``."""
    rows = keep_prob_rows(search, tasks, slots)
    with (run_dir / "keep_probs.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    short = ", ".join(f"{SHORT[t]} = {t}" for t in tasks)
    (run_dir / "keep_probs.md").write_text(
        "Keep probability after the search, mean over each resolution path's blocks that reach the task's\n"
        f"heads (number of such blocks in brackets; '-': none). Tasks: {short}.\n\n" + path_table(rows, tasks) + "\n")
