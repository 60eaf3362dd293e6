"""report.html: one self-contained page per run (config, one row per trial, plots, Pareto front, architecture
drawings, the searcher's own tables), refreshed while a search runs, rebuilt by ``nas report``, and checked in a
real browser (the system's chromium, driven by Playwright)."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import webbrowser
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

import nas
from nas.cli.config import compose
from nas.cli.main import main
from nas.core.result import Result, TrialState
from nas.core.space import SPACES
from nas.runner.html import REPORT_FILE, write_html_report
from nas.runner.journal import Journal, read_events
from nas.runner.run import build_space, search
from nas.testing.skips import require_browser, require_extra

REFRESH = 'http-equiv="refresh"'


class Page(HTMLParser):
    """What the tests look at in a page: rows per table, every URL attribute, SVG labels, texts and titles."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.in_body = False
        self.rows: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.cells: dict[str, list[list[str]]] = defaultdict(list)
        self.urls: list[tuple[str, str, str]] = []
        self.svg: str | None = None
        self.svg_texts: dict[str, list[str]] = defaultdict(list)
        self.svg_titles: dict[str, list[str]] = defaultdict(list)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.open: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        self.open.append(tag)
        self.urls += [(tag, k, v) for k, v in a.items() if k in ("src", "href", "xlink:href", "action", "data")]
        if tag == "table":
            self.tables.append(a.get("class", ""))
        elif tag == "tbody":
            self.in_body = True
        elif tag == "tr" and self.in_body:
            self.rows[self.tables[-1]].append(a)
            self.cells[self.tables[-1]].append([])
        elif tag == "td" and self.in_body:
            self.cells[self.tables[-1]][-1].append(a.get("data-v", ""))
        elif tag == "svg":
            self.svg = a.get("aria-label", "")

    def handle_endtag(self, tag: str) -> None:
        if self.open and self.open[-1] == tag:
            self.open.pop()
        if tag == "table":
            self.tables.pop()
        elif tag == "tbody":
            self.in_body = False
        elif tag == "svg":
            self.svg = None

    def handle_data(self, data: str) -> None:
        if self.svg is not None and self.open and self.open[-1] in ("text", "title"):
            (self.svg_texts if self.open[-1] == "text" else self.svg_titles)[self.svg].append(data)

    def trials(self) -> list[int]:
        return [int(row["data-trial"]) for row in self.rows["sortable trials"]]


def read_page(run_dir: Path) -> tuple[str, Page]:
    text = (run_dir / REPORT_FILE).read_text()
    return text, Page(text)


def finished_trials(run_dir: Path) -> list[int]:
    return sorted(e["trial"] for e in read_events(run_dir / "trials.jsonl") if e["event"] == "finished")


def assert_self_contained(text: str, page: Page) -> None:
    """Nothing is fetched: every src/href is a data: URI or a fragment, no external script, style or font."""
    for tag, attr, value in page.urls:
        assert value.startswith(("data:", "#")), (tag, attr, value[:80])
    assert not any(tag == "link" for tag, _ in page.tags)
    assert not any(tag == "script" and "src" in a for tag, a in page.tags)
    assert "@import" not in text and "url(" not in text


@pytest.fixture(scope="module")
def nb201_run(synthetic_nb201_table, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("html") / "nb201"
    search(compose(["evaluator=tabular", f"evaluator.table={synthetic_nb201_table}", "budget.trials=12",
                    "searcher=random", f"run_dir={run_dir}"]), progress=False)
    return run_dir


@pytest.fixture(scope="module")
def pareto_run(synthetic_nb201_table, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("html") / "pareto"
    search(compose(["evaluator=tabular", f"evaluator.table={synthetic_nb201_table}", "budget.trials=25",
                    "searcher=evolution", "objectives=[valid_accuracy:max,params:min]", f"run_dir={run_dir}"]),
           progress=False)
    return run_dir


def fabricate(run_dir: Path, overrides: list[str], trials: list[tuple[nas.Genotype, dict[str, str]]],
              files: dict[str, str]) -> Path:
    """A finished run directory as the runner leaves it (config.json, a journal of finished trials, report.md),
    with the searcher's own ``files``, for searchers whose search is too heavy to run here (BossNAS, FBNetV5)."""
    config = compose([*overrides, f"run_dir={run_dir}"])
    config["space"]["resolved_macro"] = build_space(config).macro
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    with Journal(run_dir / "trials.jsonl") as journal:
        for k, (genotype, tags) in enumerate(trials):
            journal.append("started", trial=k, genotype=genotype.to_json(), fingerprint=genotype.fingerprint(), seed=k)
            journal.finished(Result(trial=k, genotype=genotype, state=TrialState.COMPLETE, tags=tags, seed=k,
                                    metrics={"valid_accuracy": 60.0 + k, **nas.cost(genotype)}, started=k, finished=k))
    for name, text in files.items():
        (run_dir / name).write_text(text)
    (run_dir / "report.md").write_text("# Search report\n")
    return run_dir


@pytest.fixture(scope="module")
def bossnas_run(tmp_path_factory) -> tuple[Path, nas.Genotype]:
    """A HyTra BossNAS run: a found and a random path, bossnas.json and one ratings table per block, written by
    BossNAS's own ``write_tables`` from made-up scores (the search that rates paths is too heavy for here)."""
    from nas.searchers.bossnas._search import write_tables

    space = nas.space("hytra")
    found, other = space.sample(1), space.sample(2)
    tokens = [found[f"layer{i}"] for i in range(16)]
    paths = [tokens[k:k + 4] for k in range(0, 16, 4)]
    files = {"bossnas.json": json.dumps({"strategy": "greedy", "found": paths, "architecture": space.describe(found),
                                         "gates_passed": True})}
    run_dir = fabricate(tmp_path_factory.mktemp("html") / "bossnas",
                        ["space=hytra", "searcher=bossnas", "evaluator=cost"],
                        [(found, {"role": "found", "strategy": "greedy"}), (other, {"role": "random"})], files)
    for k, path in enumerate(paths):
        scores = {(0, tuple(path)): 0.125, **{(0, (k, 5, 5, j)): 0.5 + j / 10 for j in range(3)}}
        write_tables(run_dir, SimpleNamespace(block=k, save=lambda file: None), scores)
    return run_dir, found


@pytest.fixture(scope="module")
def fbnetv5_run(tmp_path_factory) -> tuple[Path, list[nas.Genotype]]:
    """An FBNetV5 run over two tasks: a found architecture per task, and keep_probs.csv written by FBNetV5's own
    ``write_keep_probs`` from made-up probabilities (blocks of path 3 do not reach the classification head)."""
    import torch

    from nas.searchers.fbnetv5._driver import write_keep_probs

    space = nas.space("fbnetv5", tasks=["classification", "segmentation"])
    found = [space.sample(3), space.sample(4)]
    slots = space.slots()
    tasks = ["classification", "segmentation"]
    probs = torch.tensor([[0.1 + 0.8 * (i % 5) / 4 for i in range(len(slots))]] * 2)
    reach = torch.tensor([[int(s.path != 3 or t) for s in slots] for t in range(2)])
    search_state = SimpleNamespace(dists=SimpleNamespace(probs=probs), cost=SimpleNamespace(reach=reach),
                                   plan=SimpleNamespace(decisions=tuple(s.label for s in slots)))
    run_dir = fabricate(tmp_path_factory.mktemp("html") / "fbnetv5",
                        ["space=fbnetv5", "searcher=fbnetv5", "evaluator=cost",
                         "space.macro.tasks=[classification,segmentation]"],
                        [(found[0], {"role": "found", "task": "classification"}),
                         (found[1], {"role": "found", "task": "segmentation"})], {})
    write_keep_probs(run_dir, search_state, tasks, slots)
    write_html_report(run_dir, redraw=True)
    return run_dir, found


@pytest.fixture(scope="module")
def nasnet_run(tmp_path_factory) -> Path:
    """A NASNet run (small preset) of two sampled architectures, for its two cell drawings in the browser."""
    space = nas.space("nasnet", preset="small")
    run_dir = fabricate(tmp_path_factory.mktemp("html") / "nasnet",
                        ["space=nasnet", "space.preset=small", "searcher=random", "evaluator=cost"],
                        [(space.sample(5), {}), (space.sample(6), {})], {})
    write_html_report(run_dir, redraw=True)
    return run_dir


def test_nb201_page_has_config_one_row_per_trial_plots_and_the_cell(nb201_run) -> None:
    text, page = read_page(nb201_run)
    assert page.trials() == finished_trials(nb201_run) and len(page.trials()) == 12
    config = json.loads((nb201_run / "config.json").read_text())

    def leaves(value) -> int:
        return sum(leaves(v) for v in value.values()) if isinstance(value, dict) and value else 1

    shown = dict(page.cells["sortable config"])
    assert len(shown) == len(page.cells["sortable config"]) == leaves(config)
    assert shown["evaluator.table"] == json.dumps(config["evaluator"]["table"]) and shown["budget.trials"] == "12"
    assert shown["searcher.name"] == '"random"' and shown["space.resolved_macro.channels"] == "16"
    assert_self_contained(text, page)
    images = [a["src"] for tag, a in page.tags if tag == "img"]
    assert len(images) == 2  # progress and objective vs compute (tabular trials report MACs)
    assert all(base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n" for src in images)
    best = json.loads((nb201_run / "best.json").read_text())
    genotype = nas.Genotype.from_json(best["genotype"])
    edges = [genotype[label] for label in genotype.values]
    labels = page.svg_texts["NB201 cell"]
    assert sorted(t for t in labels if t not in ("0", "1", "2", "3", "input", "output")) == sorted(edges)
    assert [row for row in page.rows["sortable trials"] if row.get("class") == "best"] == \
        [{"data-trial": str(best["trial"]), "class": "best"}]
    assert REFRESH not in text and "Search finished: 12 trials finished." in text


def test_trial_cells_hold_the_journal_metrics(nb201_run) -> None:
    _, page = read_page(nb201_run)
    finished = {e["trial"]: e for e in read_events(nb201_run / "trials.jsonl") if e["event"] == "finished"}
    for trial, cells in zip(page.trials(), page.cells["sortable trials"]):
        assert float(cells[2]) == finished[trial]["metrics"]["valid_accuracy"]  # trial, state, objective, ...


def test_pareto_front_section(pareto_run) -> None:
    text, page = read_page(pareto_run)
    front = json.loads((pareto_run / "pareto.json").read_text())["front"]
    assert [int(r["data-trial"]) for r in page.rows["sortable pareto"]] == [f["trial"] for f in front]
    marked = [int(r["data-trial"]) for r in page.rows["sortable trials"] if "front" in r.get("class", "")]
    assert sorted(marked) == sorted(f["trial"] for f in front)
    assert page.trials() == finished_trials(pareto_run) and len(page.trials()) == 25
    assert "Pareto front (" in text and any(a.get("alt", "").startswith("Pareto front") for t, a in page.tags
                                            if t == "img")
    assert_self_contained(text, page)


def test_hytra_path_and_bossnas_ratings(bossnas_run) -> None:
    run_dir, found = bossnas_run
    write_html_report(run_dir)
    text, page = read_page(run_dir)
    titles = [t for t in page.svg_titles["HyTra path"] if t.startswith("layer")]
    assert [int(t.split(":")[1].split()[1].rstrip(",")) for t in titles] == [found[f"layer{i}"] for i in range(16)]
    assert len(page.cells["sortable ratings"]) == 16  # four blocks of four rated paths (one table class)
    chosen = [cells[2] for cells, row in zip(page.cells["sortable ratings"], page.rows["sortable ratings"])
              if row.get("class") == "best"]
    assert chosen == ["".join(str(found[f"layer{i}"]) for i in range(k, k + 4)) for k in range(0, 16, 4)]
    assert "BossNAS block ratings" in text and "collapse gates passed" in text
    assert page.trials() == [0, 1] and "role=found" in text
    assert_self_contained(text, page)


def test_failed_bossnas_gates_are_named_as_such(bossnas_run, tmp_path) -> None:
    run_dir = tmp_path / "bossnas"
    shutil.copytree(bossnas_run[0], run_dir)
    choice = json.loads((run_dir / "bossnas.json").read_text())
    (run_dir / "bossnas.json").write_text(json.dumps({**choice, "gates_passed": False}))
    write_html_report(run_dir)
    text, _ = read_page(run_dir)
    assert "collapse gates failed (see docs/searchers/bossnas.md)" in text and "collapse gates passed" not in text


def test_fbnetv5_blocks_per_found_task_and_keep_probabilities(fbnetv5_run) -> None:
    run_dir, found = fbnetv5_run
    text, page = read_page(run_dir)
    space = nas.space("fbnetv5", tasks=["classification", "segmentation"])
    assert text.count('aria-label="FBNetV5 blocks"') == 2  # the best trial and the other task's found one
    titles = page.svg_titles["FBNetV5 blocks"]
    assert len(titles) == 2 * len(space.slots())
    kept = [t.split(": ")[1].startswith("kept") for t in titles[:len(space.slots())]]
    best = found[1]  # valid_accuracy 61 > 60: trial 1 is the best and is drawn first
    assert kept == [bool(best[s.label]) for s in space.slots()]
    probs = page.cells["sortable keep-probs"]
    assert len(probs) == len(space.slots()) and any(cells[3] == "" for cells in probs)  # '-': path 3, one task
    assert "FBNetV5 keep probabilities" in text
    assert "<h3>Trial 1 (best trial; role=found, task=segmentation)</h3>" in text
    assert "<h3>Trial 0 (role=found, task=classification)</h3>" in text


def test_scaling_space_gets_a_stage_table(tmp_path) -> None:
    run_dir = tmp_path / "simplenet"
    summary = search(compose(["space=simplenet", "space.preset=small", "searcher=random", "evaluator=cost",
                              "objective=params:min", "budget.trials=3", f"run_dir={run_dir}"]), progress=False)
    text, page = read_page(run_dir)
    rows = page.cells["stage-table"]
    assert rows and sum(int(cells[3]) for cells in rows) == summary.best.metrics["params"]
    assert "<details class=stages open>" in text and page.trials() == finished_trials(run_dir)


def test_page_is_refreshed_while_the_search_runs(synthetic_nb201_table, tmp_path, monkeypatch) -> None:
    from nas.runner.html import live

    pages = []
    original = live.write_html_report

    def recording(run_dir, live=False, redraw=False):
        path = original(run_dir, live=live, redraw=redraw)
        pages.append((live, path.read_text()))
        return path

    monkeypatch.setattr(live, "write_html_report", recording)
    monkeypatch.setattr(live, "REFRESH_SECONDS", 0.0)  # and no wait for slow writes: a page after every trial
    monkeypatch.setattr(live, "OVERHEAD", 1.0)
    run_dir = tmp_path / "r"
    search(compose(["evaluator=tabular", f"evaluator.table={synthetic_nb201_table}", "budget.trials=3",
                    f"run_dir={run_dir}"]), progress=False)
    assert [p[0] for p in pages] == [True, True, True, True, False]  # start, each of 3 trials, final
    assert all(REFRESH in text and "Search in progress" in text for _, text in pages[:-1])
    assert [len(Page(text).trials()) for _, text in pages] == [0, 1, 2, 3, 3]
    assert REFRESH not in pages[-1][1] and REFRESH not in (run_dir / REPORT_FILE).read_text()
    assert not list(run_dir.glob(".*tmp"))


def test_a_failed_write_leaves_the_old_page(nb201_run, monkeypatch) -> None:
    """A write cut short (disk full) leaves the previous page whole: the new one goes to a temporary file that
    replaces the page only once complete."""
    before = (nb201_run / REPORT_FILE).read_text()
    real_write = Path.write_text

    def disk_full(self, data, *args, **kwargs):
        real_write(self, data[:100], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        write_html_report(nb201_run)
    monkeypatch.undo()
    assert (nb201_run / REPORT_FILE).read_text() == before and not list(nb201_run.glob(".*tmp"))


def test_nas_report_rebuilds_a_stopped_run(nb201_run, tmp_path, capsys) -> None:
    import shutil

    run_dir = tmp_path / "stopped"
    shutil.copytree(nb201_run, run_dir)
    for name in ("report.md", "report.html", "progress.png"):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run_dir / REPORT_FILE}"
    text, page = read_page(run_dir)
    assert "Search stopped before its end" in text and f"resume={run_dir}" in text and REFRESH not in text
    assert page.trials() == finished_trials(run_dir) and (run_dir / "progress.png").is_file()


def test_nas_report_open_hands_the_file_to_the_browser(nb201_run, monkeypatch, capsys) -> None:
    opened = []
    monkeypatch.setattr(webbrowser, "open", lambda url: opened.append(url) or True)
    assert main(["report", str(nb201_run), "--open"]) == 0
    assert opened == [(nb201_run / REPORT_FILE).resolve().as_uri()]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing", "not a run directory (no such directory)"),
    (lambda d: d, "not a run directory (no config.json)"),
    (lambda d: d / "run", "cannot read"),
])
def test_nas_report_bad_run_dir(nb201_run, tmp_path, capsys, make, message) -> None:
    import shutil

    shutil.copytree(nb201_run, tmp_path / "run")
    journal = tmp_path / "run" / "trials.jsonl"
    journal.write_text(journal.read_text().replace('"space": "nb201"', '"space": "hytra"'))
    (tmp_path / "run" / REPORT_FILE).unlink()
    assert main(["report", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / REPORT_FILE).exists()


def test_nas_report_usage(capsys) -> None:
    assert main(["report"]) == 2 and "usage: nas report <run_dir> [--open]" in capsys.readouterr().err
    assert main(["report", "x", "--bogus"]) == 2 and "unknown option '--bogus'" in capsys.readouterr().err


BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_pages_in_a_real_browser(nb201_run, pareto_run, bossnas_run, fbnetv5_run, nasnet_run) -> None:
    """Chromium loads each page from disk with no console error and no fetch, the trial table has one row per
    trial, clicking a header sorts by that column (again: the other way), and every image and SVG has a size."""
    browser = require_browser()
    sync_api = require_extra("playwright.sync_api", "dev")
    write_html_report(bossnas_run[0])
    runs = [nb201_run, pareto_run, bossnas_run[0], fbnetv5_run[0], nasnet_run]
    with tempfile.TemporaryDirectory() as profile, sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(profile, executable_path=str(browser),
                                                                args=BROWSER_ARGS, headless=True)
        try:
            for run_dir in runs:
                check_in_browser(context.new_page(), run_dir)
        finally:
            context.close()


def check_in_browser(page, run_dir: Path) -> None:
    errors, requests = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("request", lambda r: requests.append(r.url))
    url = (run_dir / REPORT_FILE).resolve().as_uri()
    page.goto(url)
    page.wait_for_load_state("load")
    assert errors == [], (run_dir.name, errors)
    assert all(r == url or r.startswith("data:") for r in requests), requests
    rows = page.locator("table.trials tbody tr")
    assert rows.count() == len(finished_trials(run_dir))
    column = [h.strip() for h in page.locator("table.trials thead th").all_inner_texts()].index("valid_accuracy")

    def values() -> list[float]:
        return [float(v) for v in page.locator(f"table.trials tbody tr td:nth-child({column + 1})")
                .evaluate_all("cells => cells.map(c => c.dataset.v)")]

    original = values()
    header = page.locator("table.trials thead th").nth(column)
    header.click()
    assert values() == sorted(original) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert values() == sorted(original, reverse=True) and header.get_attribute("aria-sort") == "descending"
    trial_ids = [int(t) for t in page.locator("table.trials tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.trial)")]
    assert sorted(trial_ids) == finished_trials(run_dir)  # rows moved whole
    graphics = page.locator("img, svg").all()
    assert graphics, run_dir.name
    for element in graphics:
        box = element.bounding_box()
        assert box is not None and box["width"] > 0 and box["height"] > 0, (run_dir.name, element)
    page.close()


def test_nasnet_cells_are_drawn_with_every_op_and_concat() -> None:
    from nas.runner.html.drawings import architecture
    from nas.spaces.nasnet.ops import OP_NAMES

    genotype = nas.published("nasnet-a-mobile")
    space = nas.space("nasnet", preset="mobile")
    page = Page(architecture(space, genotype))
    for kind, cell in zip(("normal", "reduce"), space.cells(genotype)):
        texts = page.svg_texts[f"NASNet {kind} cell"]
        assert sorted(t for t in texts if t in OP_NAMES) == sorted(op for b in cell.blocks for op in b.ops)
        combined = [t for t in texts if t[:1].isdigit()]
        assert combined == [f"{2 + k}{'+' if b.combine == 'add' else '|'}" for k, b in enumerate(cell.blocks)]
        output = [t for t in page.svg_titles[f"NASNet {kind} cell"] if t.startswith("output")]
        assert output == [f"output: concat of {list(cell.concat_indices())}"]


@pytest.mark.parametrize("name", sorted(SPACES.names()))
def test_every_space_gets_a_stage_table_matching_its_cost(name) -> None:
    from nas.runner.html.drawings import DRAWINGS, architecture

    space = nas.space(name)
    genotype = space.sample(0)
    page = Page(architecture(space, genotype))
    rows = page.cells["stage-table"]
    main = [cells for cells in rows if not cells[0].endswith("(aux)")]
    assert sum(int(cells[3]) for cells in main) == nas.cost(genotype)["params"]
    assert sum(int(cells[4]) for cells in main) == nas.cost(genotype)["macs"]
    assert bool(page.svg_texts or page.svg_titles) == (name in DRAWINGS)


def test_failed_and_running_trials(tmp_path) -> None:
    """A failed trial has its row (state and error shown, empty metrics sort last); a started trial counts as
    running on a live page and is not a row."""
    space = nas.space("nb201")
    run_dir = fabricate(tmp_path / "run", ["evaluator=cost"], [(space.sample(0), {})], {})
    failed, running = space.sample(1), space.sample(2)
    with Journal(run_dir / "trials.jsonl") as journal:
        journal.finished(Result(trial=1, genotype=failed, state=TrialState.FAILED, error="out of memory"))
        journal.append("started", trial=2, genotype=running.to_json(), fingerprint=running.fingerprint(), seed=2)
    write_html_report(run_dir, live=True)
    text, page = read_page(run_dir)
    assert page.trials() == [0, 1]
    assert '<td data-v="failed" title="out of memory">failed</td>' in text
    assert page.cells["sortable trials"][1][2] == ""  # no valid_accuracy
    assert "2 trials finished, 1 running" in text and REFRESH in text
